using System.Text;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// Any string encodes without exception, and in work linear in its length — shown by counting vocabulary lookups
/// and character visits (<see cref="BertTokenizer.WorkCounter"/>), never by timing.
/// </summary>
public class TokenizerRobustnessTests
{
    static BertTokenizer Tok => TokenizerConformanceTests.UncasedTokenizer;

    static long Work(string text) => WorkAndEncoding(text).Work;

    static (long Work, Sharpformer.Tokenization.Encoding Encoding) WorkAndEncoding(string text)
    {
        // A private instance (tests in this class run sequentially) so other test classes do not add to the counter.
        var tok = Private.Value;
        long before = tok.WorkCounter;
        var e = tok.Encode(text);
        return (tok.WorkCounter - before, e);
    }

    static readonly Lazy<BertTokenizer> Private = new(() => BertTokenizer.FromTokenizerJson(SharedData.DataFile("bert-base-uncased", "tokenizer.json")));

    [Fact]
    public void LoneSurrogatesAreDroppedLikeReplacementCharacters()
    {
        var e = Tok.Encode("a\uD800b \uDC00 x\uD83D");
        Assert.Equal(["[CLS]", "ab", "x", "[SEP]"], e.Tokens);
        Assert.Equal([default, new TokenOffset(0, 3), new TokenOffset(6, 7), default], e.Offsets);
        Assert.Equal(["[CLS]", "[SEP]"], Tok.Encode("\uDFFF\uD800").Tokens);
    }

    [Fact]
    public void EmptyAndControlOnlyTextsGiveOnlySpecialTokens()
    {
        Assert.Equal([101, 102], Tok.Encode("").Ids);
        Assert.Equal([101, 102], Tok.Encode("\u0001\u0002\u200B\u00AD\uFEFF\0\u0085\u000B\f").Ids);
        Assert.Equal([101, 102], Tok.Encode(" \t\n\r\u3000 ").Ids);
        Assert.Equal([101, 102, 102], Tok.Encode("", "").Ids);
        Assert.Equal([101, 102], Tok.EncodePretokenized([]).Ids);
    }

    [Fact]
    public void HundredThousandCharWordIsOneUnknownInConstantWorkPerChar()
    {
        var word = new string('a', 100_000);
        var e = Tok.Encode(word);
        Assert.Equal(["[CLS]", "[UNK]", "[SEP]"], e.Tokens);
        Assert.Equal(new TokenOffset(0, 100_000), e.Offsets[1]);
        // Normalization + pre-tokenization only: no lookups for an over-long word.
        Assert.InRange(Work(word), 100_000, 2 * 100_000 + 10);
        // 100 chars is still a word, 101 is [UNK] (counted in code points: 60 astral chars are 120 UTF-16 units).
        Assert.NotEqual(Tok.UnkTokenId, Tok.Encode(new string('a', 100)).Ids[1]);
        Assert.Equal(Tok.UnkTokenId, Tok.Encode(new string('a', 101)).Ids[1]);
        Assert.Equal(3, Tok.Encode(string.Concat(Enumerable.Repeat("𝐚", 60))).Length);
    }

    public static TheoryData<string, string> Pathological => new()
    {
        { "100-char words ending in an unknown char", new string('x', 99) + "\u2603 " },
        { "99-char words of a's", new string('a', 99) + " " },
        { "punctuation", "!?.,;:" },
        { "CJK", "日本語中文字符" },
        { "added-token look-alikes", "[[MASK][CLS[SE" },
        { "accents", "ÁÉÍÓÚáéíóú한국어 " },
        { "astral", "🤗😀𝐚𠀀" },
        { "lone surrogates", "\uD800\uDC00\uDC00\uD800x" },
        { "controls", "\0\u0001\u200B\u00AD" },
    };

    [Theory]
    [MemberData(nameof(Pathological))]
    public void WorkIsLinearInLength(string name, string unit)
    {
        int reps = 2_000 / unit.Length + 1;
        string small = string.Concat(Enumerable.Repeat(unit, reps)), large = string.Concat(Enumerable.Repeat(unit, reps * 10));
        long w1 = Work(small), w10 = Work(large);
        // c·n with c = 64 work units per UTF-16 char (a char is visited O(1) times plus ≤ max-token-length lookups),
        // and growing 10× (not 100×) when the input grows 10×.
        Assert.True(w10 <= 64L * large.Length, $"{name}: work {w10} for {large.Length} chars");
        Assert.True(w10 <= 10.5 * w1 + 1000, $"{name}: work {w1} → {w10} for 10× the text");
        Assert.True(w1 > 0, name);
    }

    [Fact]
    public void OneMegabyteTextEncodesLinearly()
    {
        var rng = new Random(1);
        var sb = new StringBuilder();
        while (sb.Length < 1_000_000)
        {
            int len = rng.Next(1, 30);
            for (int i = 0; i < len; i++) sb.Append((char)rng.Next(0x20, 0x3000));
            sb.Append(' ');
        }
        var text = sb.ToString();
        var (work, e) = WorkAndEncoding(text);
        Assert.True(e.Length > 10_000);
        Assert.True(e.Offsets.All(o => o.Start <= o.End && o.End <= text.Length));
        Assert.True(work <= 64L * text.Length, $"work {work} for {text.Length} chars");
    }

    [Fact]
    public void RandomUtf16NeverThrowsAndOffsetsStayInRange()
    {
        var rng = new Random(7);
        for (int t = 0; t < 300; t++)
        {
            var chars = new char[rng.Next(0, 200)];
            for (int i = 0; i < chars.Length; i++) chars[i] = (char)rng.Next(0, 0x10000);
            var s = new string(chars);
            var e = Tok.Encode(s, s, new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 32, Stride = 4 });
            foreach (var enc in e.Overflowing.Prepend(e))
            {
                Assert.True(enc.Length <= 32);
                Assert.All(enc.Offsets, o => Assert.InRange(o.End, o.Start, s.Length));
            }
            Tok.Decode(e.Ids);
        }
    }
}
