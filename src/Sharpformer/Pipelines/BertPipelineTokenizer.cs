using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary><see cref="IPipelineTokenizer"/> over Sharpformer's <see cref="BertTokenizer"/> (offsets already in UTF-16 of the original text).</summary>
public sealed class BertPipelineTokenizer : IPipelineTokenizer
{
    static readonly EncodeOptions NoSpecials = new() { AddSpecialTokens = false };
    readonly HashSet<int> _special = [];

    public BertPipelineTokenizer(BertTokenizer tokenizer)
    {
        Inner = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        ClsId = tokenizer.ClsTokenId ?? throw Missing("[CLS]");
        SepId = tokenizer.SepTokenId ?? throw Missing("[SEP]");
        PadId = tokenizer.PadTokenId ?? throw Missing("[PAD]");
        UnkId = tokenizer.UnkTokenId;
        MaskId = tokenizer.MaskTokenId ?? -1;
        foreach (var id in new[] { ClsId, SepId, PadId, UnkId, MaskId }) if (id >= 0) _special.Add(id);
    }

    /// <summary>Loads vocab.txt / tokenizer.json (+ tokenizer_config.json) from a model directory.</summary>
    public static BertPipelineTokenizer FromDirectory(string directory) => new(BertTokenizer.FromDirectory(directory));

    public BertTokenizer Inner { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int UnkId { get; }
    public int MaskId { get; }
    public IReadOnlySet<int> SpecialIds => _special;
    public int VocabSize => Inner.VocabSize;

    public TokenizedText Tokenize(string text)
    {
        var e = Inner.Encode(text, NoSpecials);
        int n = e.Length;
        var starts = new int[n]; var ends = new int[n]; var words = new int[n];
        for (int i = 0; i < n; i++)
        {
            starts[i] = e.Offsets[i].Start; ends[i] = e.Offsets[i].End; words[i] = e.WordIds[i] ?? -1;
        }
        return new TokenizedText(e.GetIdsArray(), [.. e.Tokens], starts, ends, words);
    }

    public string IdToToken(int id) => Inner.IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is outside the vocabulary of {VocabSize}.");

    public bool TryGetId(string token, out int id)
    {
        var found = Inner.TokenToId(token);
        id = found ?? -1;
        return found.HasValue;
    }

    static PipelineInputException Missing(string token) =>
        new($"the tokenizer's vocabulary has no {token} token; BERT-style pipelines need [CLS], [SEP] and [PAD].");
}
