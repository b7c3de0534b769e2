using System.Text;

namespace Sharpformer.Pipelines;

/// <summary>
/// Turning WordPiece tokens back into text the way transformers' slow BERT tokenizer does
/// (<c>convert_tokens_to_string</c>, <c>decode</c>, <c>clean_up_tokenization</c>).
/// </summary>
public static class BertText
{
    /// <summary>HF <c>BertTokenizer.convert_tokens_to_string</c>.</summary>
    /// <remarks><c>" ".join(tokens).replace(" ##", "").strip()</c>.</remarks>
    public static string ConvertTokensToString(IEnumerable<string> tokens) =>
        string.Join(' ', tokens).Replace(" ##", "", StringComparison.Ordinal).Trim(' ');

    /// <summary>HF <c>PreTrainedTokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces=True)</c> for BERT vocabularies.</summary>
    public static string Decode(IPipelineTokenizer tokenizer, IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && tokenizer.SpecialIds.Contains(id)) continue;
            tokens.Add(tokenizer.IdToToken(id));
        }
        return CleanUpTokenization(ConvertTokensToString(tokens));
    }

    /// <summary>HF <c>clean_up_tokenization</c>: removes the space tokenization put before punctuation and English contractions.</summary>
    public static string CleanUpTokenization(string text)
    {
        var sb = new StringBuilder(text);
        sb.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
          .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
        return sb.ToString();
    }

    /// <summary>Number of Unicode code points (Python <c>len</c> of a str).</summary>
    public static int CodePointLength(ReadOnlySpan<char> s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }
}
