using System.Security.Cryptography;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>Keras TextVectorization semantics: standardization, frequency order with descending-byte tie-break, OOV, padding, save/load.</summary>
public class TextVectorizerTests
{
    static readonly string[] Tiny = ["The cat sat.", "the dog, the CAT!", "Dog's bed; a bed"];

    [Fact]
    public void TinyCorpusVocabularyByCountThenDescendingBytes()
    {
        // standardized: "the cat sat" / "the dog the cat" / "dogs bed a bed" → the 3; cat 2, bed 2; sat, dogs, dog, a 1.
        var tv = new TextVectorizer();
        tv.Adapt(Tiny);
        Assert.Equal(["", "[UNK]", "the", "cat", "bed", "sat", "dogs", "dog", "a"], tv.Vocabulary);
        var capped = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 6));
        capped.Adapt(Tiny);
        Assert.Equal(["", "[UNK]", "the", "cat", "bed", "sat"], capped.Vocabulary);
        Assert.Equal([1, 3, 1, 1, 1, 1, 4], capped.Vectorize("A cat, a DOG and a bed"));
    }

    [Fact]
    public void TiesCompareUtf8BytesNotUtf16Units()
    {
        // U+FF21 is EF BC A1 in UTF-8 but 0xFF21 in UTF-16; U+1F600 is F0 9F 98 80 but 0xD83D… — the orders disagree.
        var tv = new TextVectorizer();
        tv.Adapt(["\uFF21 😀"]);
        Assert.Equal(["", "[UNK]", "😀", "\uFF21"], tv.Vocabulary);
    }

    [Fact]
    public void StandardizationIsAsciiLowercaseAndKerasPunctuation()
    {
        Assert.Equal("Éclair Über dont  ab", TextVectorizer.StandardizeText("Éclair Über don't - a\\b"));
        Assert.Equal(["Éclair", "Über", "dont", "ab"], TextVectorizer.TokenizeText("Éclair\tÜber\ndon't - a\\b"));
        Assert.Equal("", TextVectorizer.StandardizeText("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"));
    }

    [Fact]
    public void OutputSequenceLengthPadsAndTruncates()
    {
        var tv = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 6, OutputSequenceLength: 4));
        tv.Adapt(Tiny);
        Assert.Equal([1, 3, 1, 1], tv.Vectorize("A cat, a DOG and a bed"));
        Assert.Equal([2, 0, 0, 0], tv.Vectorize("THE"));
        Assert.Equal([0, 0, 0, 0], tv.Vectorize(""));
        var free = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 6));
        free.Adapt(Tiny);
        var batch = free.VectorizeBatch(["the cat", "sat", "bed the cat sat"]);
        Assert.Equal([[2, 3, 0, 0], [5, 0, 0, 0], [4, 2, 3, 5]], batch);
    }

    [Fact]
    public void EncodeGivesTheVectorizedIdsWithOffsets_AndTruncatesToMaxLength()
    {
        var tv = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 6));
        tv.Adapt(Tiny);
        const string text = "A cat, a DOG and a bed";
        var e = tv.Encode(text, null, EncodeOptions.Default);
        Assert.Equal(tv.Vectorize(text), e.Ids);
        Assert.Equal(["[UNK]", "cat", "[UNK]", "[UNK]", "[UNK]", "[UNK]", "bed"], e.Tokens);
        Assert.Equal("cat", text[e.Offsets[1].Start..e.Offsets[1].End]);
        Assert.Equal([1, 1, 1, 1, 1, 1, 1], e.AttentionMask);
        var cut = tv.Encode(text, null, new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 3 });
        Assert.Equal([1, 3, 1], cut.Ids);
        Assert.Equal(4, cut.NumTruncatedTokens);
        Assert.Equal("cat bed", tv.Decode([0, 3, 1, 4]));
        Assert.Throws<NotSupportedException>(() => tv.Encode(text, "a pair", EncodeOptions.Default));
    }

    [Fact]
    public void SaveLoadRoundTrip()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharpformer-tv-{Guid.NewGuid():N}");
        try
        {
            var tv = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 6, OutputSequenceLength: 5));
            tv.Adapt(Tiny);
            tv.Save(dir);
            Assert.Equal("\n[UNK]\nthe\ncat\nbed\nsat\n", File.ReadAllText(Path.Combine(dir, "vocabulary.txt")));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
            var back = TextVectorizer.Load(dir);
            Assert.Equal(tv.Vocabulary, back.Vocabulary);
            Assert.Equal(tv.Options, back.Options);
            Assert.Equal(tv.Vectorize("the bed of the cat"), back.Vectorize("the bed of the cat"));
            File.WriteAllText(Path.Combine(dir, "vocabulary.txt"), "\nthe\n");
            var ex = Assert.Throws<TokenizerFormatException>(() => TextVectorizer.Load(dir));
            Assert.Contains("vocabulary.txt", ex.Message);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void AgNewsAdaptIsDeterministicAndMatchesKerasRules()
    {
        var texts = ReadLabelTextCsv(SharedData.DataFile("ag_news", "train_subset.csv"));
        Assert.Equal(14_551, texts.Count);
        var a = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 20_000));
        a.Adapt(texts);
        var b = new TextVectorizer(new TextVectorizerOptions(MaxTokens: 20_000));
        b.Adapt(Enumerable.Reverse(texts));
        Assert.Equal(a.Vocabulary, b.Vocabulary);
        // Reference: an independent Python implementation of the Keras rules (ASCII lower, DEFAULT_STRIP_REGEX,
        // whitespace split, np.lexsort((tokens, counts))[::-1]) over the same file: 35,711 distinct tokens.
        Assert.Equal(["", "[UNK]", "the", "to", "a", "of", "in", "and", "on", "for", "39s", "that", "with", "at"], a.Vocabulary.Take(14));
        Assert.Equal(["wayproduct", "wayadopting", "waxes"], a.Vocabulary.TakeLast(3));
        var sha = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", a.Vocabulary))));
        Assert.Equal("82492deead048ba01d934295858705dfdcc434a39d441bbf68be6f147bf26176", sha);
        Assert.Equal([265, 219, 3440, 10490, 35, 2663, 3693, 66, 3440, 2531, 7, 15, 127, 162, 1, 10490, 33, 836, 67, 2663], a.Vectorize(texts[0]).Take(20));
    }

    /// <summary>Header "label,text"; text quoted RFC-4180 style.</summary>
    static List<string> ReadLabelTextCsv(string path)
    {
        var texts = new List<string>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            int comma = line.IndexOf(',');
            var field = line[(comma + 1)..];
            texts.Add(field.StartsWith('"') ? field[1..^1].Replace("\"\"", "\"") : field);
        }
        return texts;
    }
}
