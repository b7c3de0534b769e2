using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// Byte-level BPE behaviour beyond the fixture records: padding sides, truncation, special tokens, loading from a
/// model folder, both merge algorithms agreeing, work growing ~n log n on pathological input, and typed errors.
/// </summary>
public class ByteLevelBpeBehaviorTests
{
    static ByteLevelBpeTokenizer Tok => ByteLevelBpeConformanceTests.Tokenizer;

    // The work tests read a per-instance counter: they need an instance no test of another class (run in parallel by
    // xunit) encodes with at the same time, or its work lands in the difference being measured.
    static readonly Lazy<ByteLevelBpeTokenizer> OwnTok = new(() =>
        ByteLevelBpeTokenizer.FromTokenizerJson(SharedData.Fixture("tokenizer-bytelevel-bpe", "tokenizer.json")));

    [Fact]
    public void HelloWorldEncodesAsHfDoes()
    {
        var e = Tok.Encode("Hello world");
        Assert.Equal([40, 482, 79, 737], e.Ids);
        Assert.Equal(["H", "ell", "o", "Ġworld"], e.Tokens);
        Assert.Equal([new TokenOffset(0, 1), new(1, 4), new(4, 5), new(5, 11)], e.Offsets);
    }

    [Fact]
    public void LeftAndRightPaddingUseThePadTokenAndMaskIt()
    {
        var tok = Tok.WithPadToken("<|endoftext|>");
        var hi = Tok.Encode("Hi").Ids.ToArray();
        var hello = Tok.Encode("Hello world").Ids.ToArray();
        int pad = hello.Length - hi.Length;
        Assert.True(pad > 0);
        var left = tok.EncodeBatch(["Hello world", "Hi"], new EncodeOptions { Padding = PaddingStrategy.Longest, PaddingSide = PaddingSide.Left });
        Assert.Equal(hello, left[0].Ids);
        Assert.Equal([.. Enumerable.Repeat(0, pad), .. hi], left[1].Ids);
        Assert.Equal([.. Enumerable.Repeat(0, pad), .. Enumerable.Repeat(1, hi.Length)], left[1].AttentionMask);
        Assert.Equal(new TokenOffset(0, 0), left[1].Offsets[0]);
        Assert.Null(left[1].WordIds[0]);
        var right = tok.EncodeBatch(["Hello world", "Hi"], new EncodeOptions { Padding = PaddingStrategy.MaxLength, MaxLength = 8 });
        Assert.Equal([.. hi, .. Enumerable.Repeat(0, 8 - hi.Length)], right[1].Ids);
        Assert.Equal(8, right[0].Length);
        Assert.Equal(0, tok.PadTokenId);
    }

    [Fact]
    public void PaddingWithoutAPadTokenIsATypedErrorNamingTheTokenizer()
    {
        var ex = Assert.Throws<TokenizationException>(() => Tok.EncodeBatch(["a", "bb"], new EncodeOptions { Padding = PaddingStrategy.Longest }));
        Assert.Contains("no pad token", ex.Message);
        Assert.Contains("tokenizer.json", ex.Message);
    }

    [Fact]
    public void TruncationKeepsTheFirstTokensAndReturnsStridedOverflow()
    {
        const string text = "Card fraud unit nets 36,000 cards In its first two years";
        var full = Tok.Encode(text).Ids.ToArray();
        var e = Tok.Encode(text, new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 6, Stride = 2 });
        Assert.Equal(full[..6], e.Ids);
        Assert.Equal(full[4..10], e.Overflowing[0].Ids);
        var left = Tok.Encode(text, new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 6, TruncationSide = TruncationSide.Left });
        Assert.Equal(full[^6..], left.Ids);
    }

    [Fact]
    public void EndOfTextIsMatchedAnywhereAndSkippedOnDecodeWhenAsked()
    {
        var e = Tok.Encode("Hello<|endoftext|>world <|ENDOFTEXT|>");
        Assert.Equal(["H", "ell", "o", "<|endoftext|>"], e.Tokens.Take(4));
        Assert.Equal(1, e.Ids.Count(id => id == 0));
        Assert.Equal([0], [.. Enumerable.Range(0, e.Length).Where(i => Tok.IsSpecialTokenId(e.Ids[i])).Select(i => e.Ids[i])]);
        Assert.Equal("Helloworld <|ENDOFTEXT|>", Tok.Decode(e.Ids));
        Assert.Equal("Hello<|endoftext|>world <|ENDOFTEXT|>", Tok.Decode(e.Ids, skipSpecialTokens: false));
    }

    [Fact]
    public void DecodeOfAPartialCharacterGivesTheReplacementCharacter()
    {
        var e = Tok.Encode("é");
        Assert.Equal(2, e.Length); // Ã ©: two byte tokens spanning the one char
        Assert.Equal([new TokenOffset(0, 1), new(0, 1)], e.Offsets);
        Assert.Equal("\uFFFD", Tok.Decode([e.Ids[0]]));
    }

    [Fact]
    public void StreamingDecodeConcatenatesToTheFullDecodeOnEveryRecord()
    {
        foreach (var r in ByteLevelBpeConformanceTests.Records())
        {
            int[] ids = [.. r.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
            foreach (var skip in new[] { false, true })
            {
                var stream = Tok.CreateDecodeStream(skip);
                var parts = ids.Select(stream.Step).ToList();
                parts.Add(stream.Flush());
                Assert.Equal(Tok.Decode(ids, skip), string.Concat(parts));
                Assert.DoesNotContain(parts, p => p.Contains('\uFFFD') && !Tok.Decode(ids, skip).Contains('\uFFFD'));
            }
        }
        // A character split over tokens appears once complete, not as replacement characters.
        var emoji = Tok.Encode("😀").Ids.ToArray();
        var s = Tok.CreateDecodeStream();
        Assert.Equal(["", "", "", "😀"], emoji.Select(s.Step));
        Assert.Equal("\uFFFD", new Func<string>(() => { var t = Tok.CreateDecodeStream(); t.Step(emoji[0]); return t.Flush(); })());
    }

    [Fact]
    public void AsAnITokenizerItEncodesAndDecodesTheSame()
    {
        ITokenizer t = Tok;
        Assert.Equal(Tok.Encode("Hello", " world").Ids, t.Encode("Hello", " world", EncodeOptions.Default).Ids);
        Assert.Equal(Tok.Encode("Hi there").Ids, t.Encode("Hi there", null, EncodeOptions.Default).Ids);
        var ids = Tok.Encode("Hello , world .").Ids;
        Assert.Equal("Hello, world.", t.Decode(ids));   // transformers' default cleanup
        Assert.Equal("Hello , world .", t.Decode(ids, cleanUpTokenizationSpaces: false));
        Assert.Null(t.MaskTokenId);
        Assert.Equal(-1, t.UnkTokenId);
    }

    [Fact]
    public void PairsGetTypeIdOneAndPretokenizedWordsKeepTheirIndex()
    {
        var p = Tok.Encode("Hello", " world");
        Assert.Equal([0, 0, 0, 1], p.TypeIds);
        Assert.Equal([0, 0, 0, 1], p.SequenceIds.Select(s => s!.Value));
        var w = Tok.EncodePretokenized(["Hello", " world"]);
        Assert.Equal([0, 0, 0, 1], w.WordIds.Select(s => s!.Value));
        Assert.Equal(new TokenOffset(0, 6), w.Offsets[3]);
    }

    [Fact]
    public void AModelFolderGivesSpecialTokenRolesAndModelMaxLength()
    {
        var tok = ByteLevelBpeTokenizer.FromDirectory(SharedData.Fixture("gpt2-tiny"));
        Assert.Equal(64, tok.ModelMaxLength);
        Assert.Equal(0, tok.EosTokenId);
        Assert.Equal(0, tok.BosTokenId);
        Assert.Null(tok.PadToken);
        Assert.Equal(Tok.Encode("Café 😀 東").Ids, tok.Encode("Café 😀 東").Ids);
        Assert.IsType<ByteLevelBpeTokenizer>(Tokenizer.Load(SharedData.Fixture("gpt2-tiny")));
        Assert.IsType<ByteLevelBpeTokenizer>(Tokenizer.Load(SharedData.Fixture("gpt2-tiny", "vocab.json")));
        Assert.IsType<BertTokenizer>(Tokenizer.Load(SharedData.DataFile("bert-base-uncased")));
        Assert.IsType<BertTokenizer>(Tokenizer.Load(SharedData.DataFile("bert-base-uncased", "tokenizer.json")));
    }

    [Fact]
    public void HeapAndScanMergesAgreeOnEveryFixturePieceAndRandomBytes()
    {
        var rng = new Random(7);
        var pieces = ByteLevelBpeConformanceTests.Records().Select(r => r.GetProperty("text").GetString()!).ToList();
        var letters = "etaoinshrdlu Hello world 東京😀";
        for (int i = 0; i < 200; i++)
            pieces.Add(new string([.. Enumerable.Range(0, rng.Next(1, 300)).Select(_ => letters[rng.Next(letters.Length)])]));
        long w = 0;
        foreach (var p in pieces)
            Assert.Equal(Tok.MergePiece(p, ref w, heapThreshold: int.MaxValue), Tok.MergePiece(p, ref w, heapThreshold: 0));
    }

    [Theory]
    [InlineData("the")]   // one letter piece that merges all the way
    [InlineData("a")]     // a run of one letter
    [InlineData(" ")]     // a whitespace run
    [InlineData("!?")]    // a punctuation run
    [InlineData("é")]     // two-byte characters
    public void WorkGrowsLikeNLogNOnOneHugePiece(string unit)
    {
        long Work(int n)
        {
            var text = string.Concat(Enumerable.Repeat(unit, n / unit.Length)) + "x";
            var tok = OwnTok.Value;
            long before = tok.WorkCounter;
            tok.Encode(text);
            return tok.WorkCounter - before;
        }
        long w1 = Work(20_000), w2 = Work(40_000);
        // n log n doubles to ~2.14×; a quadratic merge would give 4×.
        Assert.InRange(w2 / (double)w1, 1.8, 2.4);
        Assert.True(w1 < 20_000L * 64, $"work {w1} for 20,000 chars");
    }

    [Fact]
    public void ManySmallPiecesCostLinearWork()
    {
        long Work(int n)
        {
            var text = string.Concat(Enumerable.Range(0, n).Select(i => $" w{i % 997}x{i % 13}"));
            var tok = OwnTok.Value;
            long before = tok.WorkCounter;
            tok.Encode(text);
            return tok.WorkCounter - before;
        }
        Work(500); // fill the cache
        long w1 = Work(5_000), w2 = Work(10_000);
        Assert.InRange(w2 / (double)w1, 1.8, 2.2);
    }
}
