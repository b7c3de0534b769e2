using System.Text;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// The tokenizer's buffered normalizer (ASCII fast path + per-code-point slow path) against
/// <see cref="ReferenceNormalizer"/>, an obviously-correct char-by-char twin written from the BertNormalizer spec.
/// </summary>
public class NormalizerDifferentialTests
{
    /// <summary>BertNormalizer settings: (clean_text, handle_chinese_chars, strip_accents, lowercase).</summary>
    public readonly record struct Settings(bool Clean, bool Chinese, bool Strip, bool Lower)
    {
        public BertTokenizerOptions ToOptions() => new() { CleanText = Clean, TokenizeChineseChars = Chinese, StripAccents = Strip, LowerCase = Lower };
    }

    static readonly Settings[] AllSettings =
    [
        new(true, true, true, true),    // bert-base-uncased
        new(true, true, false, false),  // bert-base-cased
        new(true, true, false, true),   // lowercase, strip_accents=false
        new(false, false, true, false), // strip without lowercase, no clean_text, no CJK padding
    ];

    static readonly Lazy<BertTokenizer[]> Tokenizers = new(() =>
        [.. AllSettings.Select(s => BertTokenizer.FromVocabFile(SharedData.DataFile("bert-base-uncased", "vocab.txt"), s.ToOptions()))]);

    /// <summary>
    /// BertNormalizer (tokenizers/src/normalizers/bert.rs) one code point at a time into growable lists, with no buffer
    /// management and no fast path: clean_text, CJK padding, strip_accents (NFD, drop Mn), lowercase — in that order.
    /// Each output char records the UTF-16 span of the input code point it came from.
    /// </summary>
    internal static class ReferenceNormalizer
    {
        public static (string Text, int[] Starts, int[] Ends) Normalize(string text, Settings s)
        {
            var output = new StringBuilder();
            var starts = new List<int>();
            var ends = new List<int>();
            for (int i = 0; i < text.Length;)
            {
                int start = i, cp;
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    cp = char.ConvertToUtf32(text[i], text[i + 1]);
                    i += 2;
                }
                else
                {
                    cp = char.IsSurrogate(text[i]) ? 0xFFFD : text[i]; // a lone surrogate is U+FFFD in the UTF-8 Rust sees
                    i++;
                }

                var pieces = new List<int> { cp };
                if (s.Clean)
                {
                    if (cp == 0 || cp == 0xFFFD || UnicodeTables.IsOther(cp)) pieces.Clear();
                    else if (UnicodeTables.IsWhitespace(cp)) pieces[0] = ' ';
                }
                bool pad = pieces.Count > 0 && s.Chinese && UnicodeTables.IsChinese(cp);
                if (s.Strip && pieces.Count > 0)
                    pieces = [.. CodePoints(UnicodeTables.Decompose(pieces[0]) ?? char.ConvertFromUtf32(pieces[0])).Where(d => !UnicodeTables.IsNonSpacingMark(d))];
                var piece = new StringBuilder();
                foreach (var p in pieces)
                {
                    var lowered = new char[4];
                    piece.Append(s.Lower ? lowered.AsSpan(0, UnicodeTables.ToLower(p, lowered)) : char.ConvertFromUtf32(p));
                }
                if (pad) piece.Insert(0, ' ').Append(' ');
                foreach (var c in piece.ToString())
                {
                    output.Append(c);
                    starts.Add(start);
                    ends.Add(i);
                }
            }
            return (output.ToString(), [.. starts], [.. ends]);
        }

        static IEnumerable<int> CodePoints(string s)
        {
            for (int k = 0; k < s.Length; k += char.IsSurrogatePair(s, k) ? 2 : 1) yield return char.ConvertToUtf32(s, k);
        }
    }

    static void AssertSameAsReference(BertTokenizer tok, Settings s, string text, string label)
    {
        var expected = ReferenceNormalizer.Normalize(text, s);
        var actual = tok.NormalizeWithSpans(text);
        if (expected.Text != actual.Text)
        {
            int at = 0;
            while (at < Math.Min(expected.Text.Length, actual.Text.Length) && expected.Text[at] == actual.Text[at]) at++;
            Assert.Fail($"{label} ({s}, {text.Length} chars): normalized text differs at output index {at} " +
                        $"(expected length {expected.Text.Length}, got {actual.Text.Length}).");
        }
        Assert.True(expected.Starts.AsSpan().SequenceEqual(actual.Starts), $"{label} ({s}): span starts differ");
        Assert.True(expected.Ends.AsSpan().SequenceEqual(actual.Ends), $"{label} ({s}): span ends differ");
    }

    public static TheoryData<string, string[]> LongCjkThenAscii => new()
    {
        // Issue 10 repros: each CJK ideograph becomes 3 chars, so ≥ 33 of them used up the buffer's old 64-char slack.
        { string.Concat(Enumerable.Repeat("北", 40)) + string.Concat(Enumerable.Repeat(" hello", 200)),
          [.. Enumerable.Repeat("北", 40), .. Enumerable.Repeat("hello", 200)] },
        { string.Concat(Enumerable.Repeat("中文新闻", 10)) + string.Concat(Enumerable.Repeat(" Stocks rose today.", 60)),
          [.. Enumerable.Repeat<string[]>(["中", "文", "新", "[UNK]"], 10).SelectMany(x => x),
           .. Enumerable.Repeat<string[]>(["stocks", "rose", "today", "."], 60).SelectMany(x => x)] },
    };

    [Theory]
    [MemberData(nameof(LongCjkThenAscii))]
    public void Tokenize_LongCjkThenAscii_MatchesSlowPath(string text, string[] expectedTokens)
    {
        var tok = TokenizerConformanceTests.UncasedTokenizer;
        var e = tok.Encode(text);
        Assert.Equal(["[CLS]", .. expectedTokens, "[SEP]"], e.Tokens);
        Assert.Equal(text.Length, e.Offsets[^2].End);
        AssertSameAsReference(tok, AllSettings[0], text, "repro");
        // The same text behind an added token starts a later segment: the buffer logic is per segment.
        Assert.Equal(["[CLS]", "x", "[MASK]", .. expectedTokens, "[SEP]"], tok.Encode("x[MASK]" + text).Tokens);
    }

    [Fact]
    public void Normalize_CjkCompatibilityIdeograph_IsDecomposedWhenStrippingAccents()
    {
        // bert.rs pads CJK before strip_accents' NFD, so U+F900 (a compatibility ideograph) still becomes U+8C48.
        var uncased = TokenizerConformanceTests.UncasedTokenizer;
        Assert.Equal(" \u8C48 ", uncased.Normalize("\uF900"));
        Assert.Equal(" \uF900 ", TokenizerConformanceTests.CasedTokenizer.Normalize("\uF900"));
    }

    // Runs of one script at a time, so long expanding runs (CJK, decomposable letters) meet long ASCII runs.
    static readonly Func<Random, string>[] Scripts =
    [
        r => " hello World, it's 42.5%!"[r.Next(25)].ToString(),
        r => ((char)r.Next(0x20, 0x7F)).ToString(),
        r => ((char)r.Next(0, 0x20)).ToString(),                         // controls incl. \t \n \r \v \f NUL
        r => ((char)r.Next(0x4E00, 0xA000)).ToString(),                  // CJK unified
        r => ((char)r.Next(0xF900, 0xFB00)).ToString(),                  // CJK compatibility (decomposes)
        r => char.ConvertFromUtf32(r.Next(0x20000, 0x2A6E0)),            // astral CJK (4 chars each with padding)
        r => ((char)r.Next(0xC0, 0x250)).ToString(),                     // Latin with accents
        r => ((char)r.Next(0x370, 0x530)).ToString(),                    // Greek, Cyrillic, Armenian
        r => ((char)r.Next(0x300, 0x370)).ToString(),                    // combining marks (Mn)
        r => ((char)r.Next(0xAC00, 0xD7A4)).ToString(),                  // Hangul syllables (2–3 jamo)
        r => ((char)r.Next(0x3040, 0x3100)).ToString(),                  // kana
        r => ((char)r.Next(0x600, 0x700)).ToString(),                    // Arabic
        r => char.ConvertFromUtf32(r.Next(0x1D15E, 0x1D165)),            // musical symbols: longest astral decompositions
        r => char.ConvertFromUtf32(r.Next(0x1F300, 0x1FA00)),            // emoji
        r => new[] { "\u0130", "\u1E9E", "\uFFFD", "\u200B", "\u3000", "\u00A0", "\u2028", "\uFEFF", "\u00AD", "\u0085" }[r.Next(10)],
        r => ((char)r.Next(0xD800, 0xE000)).ToString(),                  // lone surrogates
        r => ((char)r.Next(0, 0x10000)).ToString(),                      // anything in the BMP
    ];

    static string RandomText(Random rng, int length)
    {
        var sb = new StringBuilder(length + 8);
        while (sb.Length < length)
        {
            var script = Scripts[rng.Next(Scripts.Length)];
            int run = rng.Next(1, rng.Next(2, 600));
            for (int k = 0; k < run && sb.Length < length; k++) sb.Append(script(rng));
        }
        return sb.ToString();
    }

    [Fact]
    public void Normalize_RandomMixedScripts_MatchesSlowPath()
    {
        var rng = new Random(20240610);
        var lengths = Enumerable.Range(0, 30).Select(i => rng.Next(0, 4000)).Concat([0, 1, 63, 64, 65, 511, 512, 513, 10_000, 33_333, 100_000]);
        var tokenizers = Tokenizers.Value;
        foreach (var length in lengths)
        {
            var text = RandomText(rng, length);
            for (int s = 0; s < AllSettings.Length; s++) AssertSameAsReference(tokenizers[s], AllSettings[s], text, $"random text of {length} chars");
            var e = tokenizers[0].Encode(text);
            Assert.All(e.Offsets, o => Assert.InRange(o.End, o.Start, text.Length));
        }
    }

    [Fact]
    public void Normalize_AnySingleCodePoint_StaysWithinExpansionBound()
    {
        // Uncased (decomposition + lowercase + CJK padding) and lowercase-only (İ → i + U+0307) reach every expansion.
        BertTokenizer[] tokenizers = [Tokenizers.Value[0], Tokenizers.Value[2]];
        int max = 0;
        for (int cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            var text = char.ConvertFromUtf32(cp);
            foreach (var tok in tokenizers) max = Math.Max(max, tok.Normalize(text).Length);
        }
        Assert.InRange(max, 6, BertTokenizer.MaxNormalizedCharsPerCodePoint);
    }
}
