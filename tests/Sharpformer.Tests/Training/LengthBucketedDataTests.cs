using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

public sealed class LengthBucketedDataTests
{
    static readonly string[] Words = Enumerable.Range(0, 103).Select(i => new string('a', 1 + i * 37 % 11)).ToArray();

    static LengthBucketedData<string, string[]> Data(int batchSize, int seed) =>
        new(Words, w => w.Length, batchSize, seed, rows => [.. rows]);

    [Fact]
    public void EveryExampleLandsInExactlyOneBatch_OfTheGivenSize_ExceptTheLast()
    {
        var data = Data(10, 4);
        Assert.Equal(11, data.Count);   // ⌈103 / 10⌉
        Assert.Equal(103, data.ExampleCount);
        var batches = Enumerable.Range(0, data.Count).Select(i => data.Collate([i])).ToList();
        Assert.All(batches.Take(10), b => Assert.Equal(10, b.Length));
        Assert.Equal(3, batches[^1].Length);
        Assert.Equal(Words.Order(), batches.SelectMany(b => b).Order());
    }

    [Fact]
    public void BatchesHoldSimilarLengths_InAscendingOrder()
    {
        var data = Data(10, 4);
        var batches = Enumerable.Range(0, data.Count).Select(i => data.Collate([i])).ToList();
        // Sorted by length and cut: no batch's shortest word is shorter than the previous batch's longest.
        for (int i = 1; i < batches.Count; i++)
            Assert.True(batches[i].Min(w => w.Length) >= batches[i - 1].Max(w => w.Length));
        // 11 lengths over 103 words: a batch spans at most two lengths.
        Assert.All(batches, b => Assert.True(b.Max(w => w.Length) - b.Min(w => w.Length) <= 1));
    }

    [Fact]
    public void SeveralIndicesJoinTheirBatches_InTheGivenOrder()
    {
        var data = Data(10, 4);
        Assert.Equal([.. data.Collate([5]), .. data.Collate([2])], data.Collate([5, 2]));
    }

    [Fact]
    public void TheGroupingIsSeeded()
    {
        // Equal lengths are ordered by a seeded permutation: indices of the same seed agree, another seed differs.
        var words = Enumerable.Range(0, 40).Select(i => $"w{i:00}").ToArray();
        LengthBucketedData<string, string[]> Make(int seed) => new(words, w => w.Length, 8, seed, rows => [.. rows]);
        Assert.Equal(Make(1).Collate([0]), Make(1).Collate([0]));
        Assert.NotEqual(Make(1).Collate([0]), Make(2).Collate([0]));
    }
}
