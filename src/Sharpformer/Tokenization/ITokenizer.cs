namespace Sharpformer.Tokenization;

/// <summary>
/// What turning text into model input needs from a tokenizer: encodings under the tokenizer's own rules (special tokens,
/// truncation, stride/overflow windows, padding), decoding, and vocabulary lookups. <see cref="BertTokenizer"/> (WordPiece)
/// and <see cref="TextVectorizer"/> (the seed model's words) implement it; pipelines and the CLI take it.
/// </summary>
public interface ITokenizer
{
    /// <summary>Encodes one text, or a pair when <paramref name="textPair"/> is given (HF <c>tokenizer(text, text_pair, …)</c>).</summary>
    Encoding Encode(string text, string? textPair, EncodeOptions options);
    /// <summary>Ids back to text (HF <c>decode</c>).</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true,
        DecodeCleanup cleanup = DecodeCleanup.PerToken);
    /// <summary>The id of a token string, or null when it is not in the vocabulary.</summary>
    int? TokenToId(string token);
    /// <summary>The token string of an id, or null when the id is outside the vocabulary.</summary>
    string? IdToToken(int id);
    int? PadTokenId { get; }
    int? MaskTokenId { get; }
    int UnkTokenId { get; }
    int VocabSize { get; }
}
