using System.Text.Json.Nodes;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>Truncation windows, padding variants, decode, added-token flags and loader errors, hand-computed from the HF (Rust) rules.</summary>
public class BertTokenizerBehaviorTests
{
    static BertTokenizer Tok => TokenizerConformanceTests.UncasedTokenizer;
    // bert-base-uncased ids of the single-letter words a..h.
    static readonly int[] Letters = [1037, 1038, 1039, 1040, 1041, 1042, 1043, 1044];
    const int Cls = 101, Sep = 102, Pad = 0;

    [Fact]
    public void LettersAreSingleTokens() => Assert.Equal(Letters, Tok.Encode("a b c d e f g h", new EncodeOptions { AddSpecialTokens = false }).Ids);

    [Fact]
    public void StrideProducesOverlappingOverflowWindows()
    {
        // budget 6-2 = 4, step 4-1 = 3: [0,4) [3,7) [6,8)
        var e = Tok.Encode("a b c d e f g h", new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 6, Stride = 1 });
        Assert.Equal([Cls, Letters[0], Letters[1], Letters[2], Letters[3], Sep], e.Ids);
        Assert.Equal(2, e.Overflowing.Count);
        Assert.Equal([Cls, Letters[3], Letters[4], Letters[5], Letters[6], Sep], e.Overflowing[0].Ids);
        Assert.Equal([Cls, Letters[6], Letters[7], Sep], e.Overflowing[1].Ids);
        Assert.Equal([null, 6, 7, null], e.Overflowing[1].WordIds);
        Assert.Equal(new TokenOffset(14, 15), e.Overflowing[1].Offsets[2]);
    }

    [Fact]
    public void WindowsSayWhereTheyStart_AndTheMainEncodingCountsTheCutTokens()
    {
        var o = new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 6, Stride = 1 };
        var e = Tok.Encode("a b c d e f g h", o);
        Assert.Equal([0, 3, 6], e.Overflowing.Prepend(e).Select(w => w.WindowStart));
        Assert.Equal(4, e.NumTruncatedTokens);   // 8 letters, 4 kept
        Assert.Equal(4, Tok.Encode("a b c d e f g h", o with { TruncationSide = TruncationSide.Left }).WindowStart);   // e f g h
        var fits = Tok.Encode("a b", o);
        Assert.Equal((0, 0), (fits.NumTruncatedTokens, fits.WindowStart));
        // A pair cut Python-style (one token at a time from the longer side): 8 + 2 pieces into 7 − 3 specials → 2 + 2.
        Assert.Equal(6, Tok.Encode("a b c d e f g h", "a b", new EncodeOptions { Truncation = TruncationStrategy.LongestFirstPython, MaxLength = 7 }).NumTruncatedTokens);
    }

    [Fact]
    public void LeftTruncationKeepsTheEnd()
    {
        var e = Tok.Encode("a b c d e f g h", new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 6, Stride = 1, TruncationSide = TruncationSide.Left });
        Assert.Equal([Cls, Letters[4], Letters[5], Letters[6], Letters[7], Sep], e.Ids);
        Assert.Equal([Cls, Letters[1], Letters[2], Letters[3], Letters[4], Sep], e.Overflowing[0].Ids);
        Assert.Equal([Cls, Letters[0], Letters[1], Sep], e.Overflowing[1].Ids);
    }

    [Fact]
    public void OnlySecondAndOnlyFirstCutOneSide()
    {
        var e = Tok.Encode("a b", "c d e f g h", new EncodeOptions { Truncation = TruncationStrategy.OnlySecond, MaxLength = 8 });
        Assert.Equal([Cls, Letters[0], Letters[1], Sep, Letters[2], Letters[3], Letters[4], Sep], e.Ids);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1], e.TypeIds);
        var f = Tok.Encode("a b c d e f", "g h", new EncodeOptions { Truncation = TruncationStrategy.OnlyFirst, MaxLength = 7 });
        Assert.Equal([Cls, Letters[0], Letters[1], Sep, Letters[6], Letters[7], Sep], f.Ids);
        Assert.Throws<TokenizationException>(() => Tok.Encode("a b", "c d e f g h", new EncodeOptions { Truncation = TruncationStrategy.OnlyFirst, MaxLength = 6 }));
        Assert.Throws<TokenizationException>(() => Tok.Encode("a b", new EncodeOptions { Truncation = TruncationStrategy.OnlySecond, MaxLength = 3 }));
    }

    [Fact]
    public void PairLongestFirstSplitsBudgetAsRust()
    {
        // (10,10) with budget 13 → (6,7): the first counts as the shorter on a tie.
        var ten = string.Join(' ', Enumerable.Repeat("a", 10));
        var e = Tok.Encode(ten, ten, new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 16 });
        Assert.Equal(6, e.SequenceIds.Count(s => s == 0));
        Assert.Equal(7, e.SequenceIds.Count(s => s == 1));
        // Pair overflow order (Rust Encoding::merge_with): A's overflow windows each with B.
        // windows A: [0,6) [6,10); B: [0,7) [7,10) → overflow (A1,B0), (A1,B1), (A0,B1).
        Assert.Equal([(4, 7), (4, 3), (6, 3)], e.Overflowing.Select(o => (o.SequenceIds.Count(s => s == 0), o.SequenceIds.Count(s => s == 1))));
    }

    /// <summary>tokenizers/src/utils/truncation.rs <c>truncate_encodings</c>, LongestFirst with a pair, transcribed as the oracle.</summary>
    static (int First, int Second) RustLongestFirst(int len1, int len2, int maxLength)
    {
        int n1 = len1, n2 = len2;
        bool swap = n1 > n2;
        if (swap) (n1, n2) = (n2, n1);
        n2 = n1 > maxLength ? n1 : Math.Max(n1, maxLength - n1);
        if (n1 + n2 > maxLength)
        {
            n1 = maxLength / 2;
            n2 = n1 + maxLength % 2;
        }
        if (swap) (n1, n2) = (n2, n1);
        return (Math.Min(n1, len1), Math.Min(n2, len2)); // Encoding::truncate keeps a shorter encoding whole
    }

    [Fact]
    public void PairLongestFirst_EveryMaxLengthParity_GivesTheOddTokenToTheLongerSequence()
    {
        // Issue 10 claimed HF gives the odd token to the first sequence; HF tokenizers 0.23 (truncation.rs and the
        // pair_trunc16 fixtures, e.g. (8,8) → (6,7), (12,8) → (7,6)) give it to the LONGER one, the second on a tie.
        // "First gets ceil" is transformers' slow-tokenizer rule, TruncationStrategy.LongestFirstPython.
        static string Words(int n) => string.Join(' ', Enumerable.Repeat("a", n));
        int bothCut = 0;
        for (int maxLength = 3; maxLength <= 22; maxLength++)
        {
            int budget = maxLength - 3;
            for (int nA = 0; nA <= 18; nA++)
                for (int nB = 0; nB <= 18; nB++)
                {
                    var e = Tok.Encode(Words(nA), Words(nB), new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength });
                    var kept = (e.SequenceIds.Count(s => s == 0), e.SequenceIds.Count(s => s == 1));
                    Assert.Equal(RustLongestFirst(nA, nB, budget), kept);
                    if (nA + nB > budget && Math.Min(nA, nB) > budget / 2)
                    {
                        bothCut++;
                        int ceil = budget - budget / 2, floor = budget / 2;
                        Assert.Equal(nA > nB ? (ceil, floor) : (floor, ceil), kept);
                    }
                }
        }
        Assert.True(bothCut > 500, $"only {bothCut} both-cut cases");
    }

    [Fact]
    public void PairLongestFirst_WithStride_WindowsEachSequenceWithItsOwnShare()
    {
        // Rust truncates each sequence to its own share with the same stride, then merge_with pairs the windows:
        // (windowsA × windowsB) − 1 overflowing encodings, each within max_length.
        static string Words(int n) => string.Join(' ', Enumerable.Repeat("a", n));
        static int Windows(int n, int keep, int stride) => keep >= n ? 1 : (n - keep + (keep - stride) - 1) / (keep - stride) + 1;
        foreach (var (nA, nB, maxLength, stride) in new[] { (10, 10, 16, 2), (12, 8, 16, 3), (9, 20, 17, 1), (20, 3, 16, 2), (7, 30, 15, 0) })
        {
            var e = Tok.Encode(Words(nA), Words(nB), new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength, Stride = stride });
            var (kA, kB) = RustLongestFirst(nA, nB, maxLength - 3);
            Assert.Equal((kA, kB), (e.SequenceIds.Count(s => s == 0), e.SequenceIds.Count(s => s == 1)));
            Assert.Equal(Windows(nA, kA, stride) * Windows(nB, kB, stride) - 1, e.Overflowing.Count);
            Assert.All(e.Overflowing, o => Assert.InRange(o.Length, 3, maxLength));
        }
        // A share no larger than the stride cannot advance: a clear error (Rust asserts and panics here).
        Assert.Throws<TokenizationException>(() => Tok.Encode(Words(10), Words(10),
            new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 16, Stride = 6 }));
    }

    [Fact]
    public void PythonLongestFirstRemovesOneAtATimeFromTheLonger()
    {
        var ten = string.Join(' ', Enumerable.Repeat("a", 10));
        var nine = string.Join(' ', Enumerable.Repeat("b", 9));
        var o = new EncodeOptions { Truncation = TruncationStrategy.LongestFirstPython, MaxLength = 16, Stride = 2 };
        // (10,10): remove from B on the tie, then alternate → (7,6); (10,9) → (7,6); (20,3) → (10,3).
        foreach (var (a, b, ka, kb) in new[] { (ten, ten, 7, 6), (ten, nine, 7, 6), (ten + " " + ten, "c c c", 10, 3) })
        {
            var e = Tok.Encode(a, b, o);
            Assert.Equal((ka, kb), (e.SequenceIds.Count(s => s == 0), e.SequenceIds.Count(s => s == 1)));
            Assert.Empty(e.Overflowing);
        }
    }

    [Fact]
    public void ViewsSeenBeforePaddingAreReplacedAfterIt()
    {
        var a = Tok.Encode("a b");
        var b = Tok.Encode("a b c d");
        Assert.Equal(4, a.Tokens.Count);
        Assert.Equal(4, a.WordIds.Count);
        Tok.Pad([a, b], new EncodeOptions { Padding = PaddingStrategy.Longest });
        Assert.Equal(["[CLS]", "a", "b", "[SEP]", "[PAD]", "[PAD]"], a.Tokens);
        Assert.Equal([null, 0, 1, null, null, null], a.WordIds);
        Assert.Same(a.WordIds, a.WordIds);
    }

    [Fact]
    public void LeftPaddingToMultipleOf()
    {
        var e = Tok.Encode("a b", new EncodeOptions { Padding = PaddingStrategy.Longest, PadToMultipleOf = 8, PaddingSide = PaddingSide.Left });
        Assert.Equal([Pad, Pad, Pad, Pad, Cls, Letters[0], Letters[1], Sep], e.Ids);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1], e.AttentionMask);
        Assert.Equal([1, 1, 1, 1, 1, 0, 0, 1], e.SpecialTokensMask);
        Assert.Equal([null, null, null, null, null, 0, 1, null], e.WordIds);
        Assert.Equal("[PAD]", e.Tokens[0]);
    }

    [Fact]
    public void MaxLengthDefaultsToModelMaxLength()
    {
        var tok = BertTokenizer.FromDirectory(SharedData.Fixture("bert-tiny-uncased-seqcls"));
        var e = tok.Encode(string.Join(' ', Enumerable.Repeat("a", 500)), new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, Padding = PaddingStrategy.MaxLength });
        Assert.Equal(128, e.Length);
        Assert.Throws<TokenizationException>(() => Tok.Encode("a", new EncodeOptions { Padding = PaddingStrategy.MaxLength }));
    }

    [Fact]
    public void BatchOnTwoThreadsEqualsSequential()
    {
        var texts = Enumerable.Range(0, 300).Select(i => $"text number {i} with some words, ünïcödé and 日本 {new string('x', i % 17)}").ToList();
        var one = Tok.EncodeBatch(texts, new EncodeOptions { Threads = 1, Padding = PaddingStrategy.Longest });
        var two = Tok.EncodeBatch(texts, new EncodeOptions { Threads = 2, Padding = PaddingStrategy.Longest });
        for (int i = 0; i < texts.Count; i++)
        {
            Assert.Equal(one[i].Ids, two[i].Ids);
            Assert.Equal(one[i].Offsets, two[i].Offsets);
            Assert.Equal(Tok.Encode(texts[i]).Ids, one[i].Ids.Where((_, k) => one[i].AttentionMask[k] == 1));
        }
    }

    [Fact]
    public void DecodeJoinsPiecesAndCleansUp()
    {
        var ids = Tok.Encode("Tokenization isn't hard, right? Yes.").Ids;
        Assert.Equal("tokenization isn ' t hard, right? yes.", Tok.Decode(ids));
        Assert.Equal("[CLS] tokenization isn ' t hard, right? yes. [SEP]", Tok.Decode(ids, skipSpecialTokens: false));
        Assert.Equal("tokenization isn ' t hard , right ? yes .", Tok.Decode(ids, cleanUpTokenizationSpaces: false));
        Assert.Equal("tokenization isn't hard, right? yes.", Tok.Decode(ids, cleanup: DecodeCleanup.WholeText));
        Assert.Equal("i do not", Tok.Decode(Tok.Encode("I do not").Ids, cleanup: DecodeCleanup.WholeText));
        Assert.Equal(["[CLS]", "token", "##ization"], Tok.ConvertIdsToTokens(ids.Take(3)));
        Assert.Equal(ids.Take(3), Tok.ConvertTokensToIds(["[CLS]", "token", "##ization"]));
        Assert.Equal(Tok.UnkTokenId, Tok.ConvertTokensToIds(["no-such-token"])[0]);
        Assert.Throws<TokenizationException>(() => Tok.Decode([999_999]));
    }

    [Fact]
    public void SpecialTokenIdsComeFromTemplateAndConfig()
    {
        Assert.Equal((101, 102, 103, 0, 100), (Tok.ClsTokenId, Tok.SepTokenId, Tok.MaskTokenId, Tok.PadTokenId, Tok.UnkTokenId));
        var fromDir = BertTokenizer.FromDirectory(SharedData.Fixture("bert-tiny-cased-tokcls"));
        Assert.Equal((101, 102, 103, 0, 100), (fromDir.ClsTokenId, fromDir.SepTokenId, fromDir.MaskTokenId, fromDir.PadTokenId, fromDir.UnkTokenId));
        Assert.Equal((2, 3), (Tok.NumSpecialTokensToAdd(false), Tok.NumSpecialTokensToAdd(true)));
        Assert.False(fromDir.LowerCase);
    }

    [Fact]
    public void WordHelpersMapTokensToCharacters()
    {
        var e = Tok.Encode("Hello unaffable world");
        Assert.Equal(new TokenOffset(6, 15), e.WordToChars(1));
        Assert.Equal(2, e.CharToToken(8));
        Assert.Null(e.CharToToken(5));
    }

    static string WriteVariant(Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(SharedData.DataFile("bert-base-uncased", "tokenizer.json")))!.AsObject();
        edit(json);
        var path = Path.Combine(Path.GetTempPath(), $"sharpformer-tok-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    [Fact]
    public void SingleWordAddedTokenDoesNotBreakWords()
    {
        var path = WriteVariant(j => j["added_tokens"]![4]!["single_word"] = true);
        try
        {
            var tok = BertTokenizer.FromTokenizerJson(path);
            Assert.Equal(["[CLS]", "x", "[", "mask", "]", "y", "[SEP]"], tok.Encode("x[MASK]y").Tokens);
            Assert.Equal(["[CLS]", "x", "[MASK]", "y", "[SEP]"], tok.Encode("x [MASK] y").Tokens);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void WithoutNormalizerThePreTokenizerStillSplitsOnUnicodeWhitespace()
    {
        var path = WriteVariant(j => j["normalizer"] = null);
        try
        {
            var tok = BertTokenizer.FromTokenizerJson(path);
            Assert.Equal(["[CLS]", "a", "b", "c", "d", "[UNK]", "[SEP]"], tok.Encode("a\vb\fc\u2028d Hello").Tokens);
            Assert.Equal("a\vb", tok.Normalize("a\vb"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void LStripRStripAddedTokenSpansItsWhitespace()
    {
        // Rust AddedVocabulary::find_matches: the split (and so the token offsets) includes the stripped spaces.
        var path = WriteVariant(j => { j["added_tokens"]![4]!["lstrip"] = true; j["added_tokens"]![4]!["rstrip"] = true; });
        try
        {
            var e = BertTokenizer.FromTokenizerJson(path).Encode("hello  [MASK]  world");
            Assert.Equal(["[CLS]", "hello", "[MASK]", "world", "[SEP]"], e.Tokens);
            Assert.Equal([default, new TokenOffset(0, 5), new TokenOffset(5, 15), new TokenOffset(15, 20), default], e.Offsets);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void AdditionalSpecialTokensFromConfigAreMatchedAndSkipped()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharpformer-tokdir-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(SharedData.DataFile("bert-base-uncased", "vocab.txt"), Path.Combine(dir, "vocab.txt"));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
                "{\"do_lower_case\": true, \"model_max_length\": 1000000000000000019884624838656, \"additional_special_tokens\": [\"<ent>\", \"[unused5]\"]}");
            var tok = BertTokenizer.FromDirectory(dir);
            Assert.Null(tok.ModelMaxLength);
            var e = tok.Encode("A<ent>b [unused5]");
            Assert.Equal(["[CLS]", "a", "<ent>", "b", "[unused5]", "[SEP]"], e.Tokens);
            Assert.Equal([101, 1037, 30522, 1038, 6, 102], e.Ids); // [unused5] is line 7 of the uncased vocab
            Assert.Equal(new TokenOffset(1, 6), e.Offsets[2]);
            Assert.Equal("a b", tok.Decode(e.Ids));
            Assert.Equal(30523, tok.VocabSize);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("model", "BPE")]
    [InlineData("normalizer", "Sequence")]
    [InlineData("pre_tokenizer", "Whitespace")]
    [InlineData("post_processor", "RobertaProcessing")]
    [InlineData("decoder", "ByteLevel")]
    public void UnsupportedComponentsNameTypeAndFile(string key, string type)
    {
        var path = WriteVariant(j => j[key]!["type"] = type);
        try
        {
            var ex = Assert.Throws<NotSupportedException>(() => BertTokenizer.FromTokenizerJson(path));
            Assert.Contains("not supported yet", ex.Message);
            Assert.Contains(type, ex.Message);
            Assert.Contains(path, ex.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void CorruptFilesRaiseTypedErrorsNamingTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpformer-tok-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{ \"model\": ");
        try { Assert.Contains(path, Assert.Throws<TokenizerFormatException>(() => BertTokenizer.FromTokenizerJson(path)).Message); }
        finally { File.Delete(path); }
        var vocab = Path.Combine(Path.GetTempPath(), $"sharpformer-vocab-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(vocab, ["[PAD]", "[UNK]", "hello"]);
        try { Assert.Contains("[CLS]", Assert.Throws<TokenizerFormatException>(() => BertTokenizer.FromVocabFile(vocab)).Message); }
        finally { File.Delete(vocab); }
    }
}
