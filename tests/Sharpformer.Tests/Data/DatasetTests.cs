using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public class TrainingRandomTests
{
    [Fact]
    public void SplitMix64MatchesTheReferenceSequence()
    {
        // Reference outputs of Vigna's splitmix64.c for seed 0 (the test-side recipe shared with the scikit-learn scripts).
        var r = new SplitMix64(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, r.NextUInt64());
        Assert.Equal(0x6E789E6AA1B965F4UL, r.NextUInt64());
        Assert.Equal(0x06C45D188009454FUL, r.NextUInt64());
    }

    [Fact]
    public void BoundedIntegersAreInRangeAndRoughlyUniform()
    {
        var r = new TrainingRandom(1);
        var counts = new int[7];
        for (int i = 0; i < 70000; i++) counts[r.Next(7)]++;
        Assert.All(counts, c => Assert.InRange(c, 9600, 10400)); // ±4 %, > 10 σ of a fair die
    }
}

public class DatasetTests
{
    static Dataset<int> Numbers(int n) => Dataset.From(Enumerable.Range(0, n));

    [Fact]
    public void ShuffleIsADeterministicPermutation()
    {
        var a = Numbers(100).Shuffle(7);
        Assert.Equal(a.ToArray(), Numbers(100).Shuffle(7).ToArray());
        Assert.NotEqual(a.ToArray(), Numbers(100).Shuffle(8).ToArray());
        Assert.Equal(Enumerable.Range(0, 100), a.Order());
        Assert.NotEqual(Enumerable.Range(0, 100), a);
    }

    [Fact]
    public void ShuffleFollowsFisherYatesWithTrainingRandom()
    {
        // Hand-run of the documented algorithm: for i = n−1..1, j = Next(i+1), swap.
        var rng = new TrainingRandom(3);
        var expected = new[] { 0, 1, 2, 3, 4 };
        for (int i = 4; i > 0; i--) { int j = rng.Next(i + 1); (expected[i], expected[j]) = (expected[j], expected[i]); }
        Assert.Equal(expected, Numbers(5).Shuffle(3).ToArray());
    }

    [Fact]
    public void MapFilterTakeSkip()
    {
        var d = Numbers(10).Map(x => x * 10).Filter(x => x % 20 == 0).Skip(1).Take(3);
        Assert.Equal([20, 40, 60], d.ToArray());
    }

    [Fact]
    public void TrainTestSplitIsDisjointAndSized()
    {
        var (train, test) = Numbers(103).TrainTestSplit(0.2, 1);
        Assert.Equal(21, test.Count); // round(20.6)
        Assert.Equal(82, train.Count);
        Assert.Empty(train.Intersect(test));
        Assert.Equal(test.ToArray(), Numbers(103).TrainTestSplit(0.2, 1).Test.ToArray());
    }

    [Fact]
    public void StratifiedSplitKeepsClassProportions()
    {
        // 60 of class 0, 30 of class 1, 10 of class 2.
        var items = Dataset.From(Enumerable.Range(0, 100).Select(i => (Id: i, Label: i < 60 ? 0 : i < 90 ? 1 : 2)));
        var (train, test) = items.TrainTestSplit(0.3, 5, x => x.Label);
        Assert.Equal([18, 9, 3], Enumerable.Range(0, 3).Select(c => test.Count(x => x.Label == c)).ToArray());
        Assert.Equal([42, 21, 7], Enumerable.Range(0, 3).Select(c => train.Count(x => x.Label == c)).ToArray());
        Assert.Equal(100, train.Concat(test).Select(x => x.Id).Distinct().Count());
    }

    [Fact]
    public void BatchesCoverEveryItemOnce()
    {
        var batches = Numbers(23).Batches(5);
        Assert.Equal([5, 5, 5, 5, 3], batches.Select(b => b.Count).ToArray());
        Assert.Equal(Enumerable.Range(0, 23), batches.SelectMany(b => b));
        Assert.Equal(4, Numbers(23).Batches(5, dropLast: true).Count);
        var shuffled = Numbers(23).Batches(5, shuffleSeed: 9);
        Assert.Equal(Enumerable.Range(0, 23), shuffled.SelectMany(b => b).Order());
    }

    [Fact]
    public void LengthBucketingReducesPadding()
    {
        var rng = new TrainingRandom(2);
        var texts = Dataset.From(Enumerable.Range(0, 400).Select(_ => new string('x', 1 + rng.Next(100))));
        static long Padded(IReadOnlyList<IReadOnlyList<string>> batches) => batches.Sum(b => (long)b.Max(t => t.Length) * b.Count);
        var plain = texts.Batches(16, shuffleSeed: 1);
        var bucketed = texts.Batches(16, shuffleSeed: 1, lengthOf: t => t.Length, bucketFactor: 25);
        Assert.Equal(texts.Order(), bucketed.SelectMany(b => b).Order());
        long real = texts.Sum(t => (long)t.Length);
        Assert.True(Padded(bucketed) - real < (Padded(plain) - real) / 5, $"bucketed padding {Padded(bucketed) - real} vs plain {Padded(plain) - real}");
        // Inside a chunk of 16·25 = all 400 items, batches are sorted by length; their order is then shuffled.
        Assert.All(bucketed, b => Assert.True(b.Max(t => t.Length) - b.Min(t => t.Length) <= 15));
        Assert.NotEqual(bucketed.Select(b => b[0].Length).ToArray(), bucketed.Select(b => b[0].Length).OrderDescending().ToArray());
    }
}

public class CollatorTests
{
    [Fact]
    public void PadsToTheLongestWithMaskTypeIdsAndLabels()
    {
        var batch = new PaddingCollator(padId: 0).Collate([
            new EncodedExample([101, 7, 102], [0, 0, 0], Label: 2),
            new EncodedExample([101, 5, 6, 102, 9, 102], [0, 0, 0, 0, 1, 1], Label: 0),
        ]);
        Assert.Equal((2, 6), (batch.Batch, batch.Seq));
        Assert.Equal([101, 7, 102, 0, 0, 0, 101, 5, 6, 102, 9, 102], batch.InputIds);
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], batch.TypeIds);
        Assert.Equal([1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1], batch.AttentionMask);
        Assert.Equal([2, 0], batch.Labels!);
        Assert.Equal(9, batch.TokenCount);
    }

    [Fact]
    public void TokenLabelsArePaddedWithMinus100AndLengthRoundsUp()
    {
        var batch = new PaddingCollator(padId: 3, padToMultipleOf: 4).Collate([
            new EncodedExample([1, 2], TokenLabels: [-100, 5]),
            new EncodedExample([1, 2, 3, 4, 5], TokenLabels: [-100, 1, 2, 0, -100]),
        ]);
        Assert.Equal(8, batch.Seq);
        Assert.Equal([1, 2, 3, 3, 3, 3, 3, 3], batch.InputIds[..8]);
        Assert.Equal([-100, 5, -100, -100, -100, -100, -100, -100, -100, 1, 2, 0, -100, -100, -100, -100], batch.Labels!);
    }

    [Fact]
    public void EncodingsCollateAsTheirIdsAndTypeIds_AndAllEmptyRowsBecomeOnePaddingPosition()
    {
        var tok = Sharpformer.Tests.Tokenization.TokenizerConformanceTests.UncasedTokenizer;
        var encodings = tok.EncodeBatch([("a b", "c"), ("d", "e f g")]);
        var collator = new PaddingCollator(padId: 0);
        var fromEncodings = collator.Collate(encodings);
        var fromExamples = collator.Collate(encodings.Select(e => new EncodedExample(e.Ids, e.TypeIds)).ToList());
        Assert.Equal(fromExamples.InputIds, fromEncodings.InputIds);
        Assert.Equal(fromExamples.TypeIds, fromEncodings.TypeIds);
        Assert.Equal(fromExamples.AttentionMask, fromEncodings.AttentionMask);
        var input = fromEncodings.ToEncoderInput();
        Assert.Equal((2, 7), (input.BatchSize, input.SequenceLength));
        Assert.Equal([0, 0, 0, 0, 1, 1, 0, /* [CLS] d [SEP] | e f g [SEP] */ 0, 0, 0, 1, 1, 1, 1], input.TokenTypeIds!);
        Assert.Null(fromEncodings.ToEncoderInput(tokenTypeIds: false).TokenTypeIds);
        var empty = collator.Collate([Array.Empty<int>(), Array.Empty<int>()]);
        Assert.Equal((2, 1), (empty.Batch, empty.Seq));
        Assert.Equal([0, 0], empty.AttentionMask);
    }

    [Fact]
    public void InconsistentBatchesAreRejected()
    {
        var c = new PaddingCollator(maxLength: 4);
        Assert.Throws<ArgumentException>(() => c.Collate([new EncodedExample([1, 2, 3, 4, 5])]));
        Assert.Throws<ArgumentException>(() => c.Collate([new EncodedExample([1], Label: 1), new EncodedExample([2])]));
        Assert.Throws<ArgumentException>(() => c.Collate([new EncodedExample([1, 2], TokenLabels: [0])]));
        Assert.Throws<ArgumentException>(() => c.Collate(Array.Empty<EncodedExample>()));
    }
}

public class LabelAlignmentTests
{
    // Hugging Face course, chapter 7 (token classification): "EU rejects German call to boycott British lamb ." with
    // bert-base-cased: lamb → la ##mb; labels [3, 0, 7, 0, 0, 0, 7, 0, 0].
    static readonly int?[] WordIds = [null, 0, 1, 2, 3, 4, 5, 6, 7, 7, 8, null];
    static readonly int[] WordLabels = [3, 0, 7, 0, 0, 0, 7, 0, 0];

    [Fact]
    public void CourseExample() =>
        Assert.Equal([-100, 3, 0, 7, 0, 0, 0, 7, 0, 0, 0, -100],
            LabelAlignment.AlignLabelsWithTokens(WordIds, WordLabels, LabelSet.Conll2003Ner));

    [Fact]
    public void LaterPiecesOfABWordGetTheIVersionOrMinus100()
    {
        int?[] wordIds = [null, 0, 0, 0, 1, 1, null];
        int[] labels = [1, 0]; // B-PER, O
        Assert.Equal([-100, 1, 2, 2, 0, 0, -100], LabelAlignment.AlignLabelsWithTokens(wordIds, labels, LabelSet.Conll2003Ner));
        Assert.Equal([-100, 1, -100, -100, 0, -100, -100], LabelAlignment.AlignLabelsWithTokens(wordIds, labels, LabelSet.Conll2003Ner, labelAllPieces: false));
        Assert.Equal([-100, 1, 2, 2, 0, 0, -100], LabelAlignment.AlignLabelsWithTokens(wordIds, ["B-PER", "O"], LabelSet.Conll2003Ner));
    }

    [Fact]
    public void WordIdsOutOfRangeAreRejected() =>
        Assert.Throws<ArgumentException>(() => LabelAlignment.AlignLabelsWithTokens([0, 1], [0], LabelSet.Conll2003Ner));
}
