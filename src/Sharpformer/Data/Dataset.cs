using System.Collections;

namespace Sharpformer.Data;

/// <summary>
/// An immutable in-memory list of examples with the usual dataset operations. Every operation returns a new
/// dataset; randomness comes only from explicit seeds (<see cref="TrainingRandom"/>).
/// </summary>
public sealed class Dataset<T> : IReadOnlyList<T>
{
    readonly T[] _items;

    public Dataset(IEnumerable<T> items) => _items = items.ToArray();
    Dataset(T[] items, bool _) => _items = items;

    public int Count => _items.Length;
    public T this[int index] => _items[index];
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)_items).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public Dataset<TOut> Map<TOut>(Func<T, TOut> f) => new(Array.ConvertAll(_items, x => f(x)), true);
    public Dataset<TOut> Map<TOut>(Func<T, int, TOut> f) => new(_items.Select(f).ToArray(), true);
    public Dataset<T> Filter(Func<T, bool> keep) => new(_items.Where(keep).ToArray(), true);
    public Dataset<T> Take(int count) => new(_items.Take(count).ToArray(), true);
    public Dataset<T> Skip(int count) => new(_items.Skip(count).ToArray(), true);
    public Dataset<T> Select(IEnumerable<int> indices) => new(indices.Select(i => _items[i]).ToArray(), true);

    static TrainingRandom Rng(ulong seed) => new(unchecked((long)seed));

    /// <summary>A permutation of the items by Fisher–Yates with <see cref="TrainingRandom"/>(seed).</summary>
    public Dataset<T> Shuffle(ulong seed)
    {
        var copy = (T[])_items.Clone();
        Rng(seed).FisherYates(copy.AsSpan());
        return new(copy, true);
    }

    /// <summary>
    /// Splits into train and test. The test part has round(testFraction · n) items (at least 1 and at most n − 1 when
    /// n ≥ 2) chosen from a seeded shuffle. With <paramref name="stratifyBy"/>, each class is shuffled and split
    /// separately (test count per class = round(testFraction · class size)) so class proportions are kept; both parts
    /// are then shuffled with the same seed.
    /// </summary>
    public (Dataset<T> Train, Dataset<T> Test) TrainTestSplit(double testFraction, ulong seed, Func<T, int>? stratifyBy = null)
    {
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "Test fraction must be strictly between 0 and 1.");
        if (Count < 2) throw new InvalidOperationException($"Cannot split a dataset of {Count} item(s); it needs at least 2.");
        var rng = Rng(seed);
        if (stratifyBy is null)
        {
            var idx = Enumerable.Range(0, Count).ToArray();
            rng.FisherYates(idx.AsSpan());
            int nTest = Math.Clamp((int)Math.Round(testFraction * Count, MidpointRounding.AwayFromZero), 1, Count - 1);
            return (Select(idx[nTest..]), Select(idx[..nTest]));
        }
        var train = new List<int>();
        var test = new List<int>();
        foreach (var group in Enumerable.Range(0, Count).GroupBy(i => stratifyBy(_items[i])).OrderBy(g => g.Key))
        {
            var idx = group.ToArray();
            rng.FisherYates(idx.AsSpan());
            int nTest = (int)Math.Round(testFraction * idx.Length, MidpointRounding.AwayFromZero);
            test.AddRange(idx[..nTest]);
            train.AddRange(idx[nTest..]);
        }
        var trainIdx = train.ToArray();
        var testIdx = test.ToArray();
        rng.FisherYates(trainIdx.AsSpan());
        rng.FisherYates(testIdx.AsSpan());
        return (Select(trainIdx), Select(testIdx));
    }

    /// <summary>
    /// Groups items into batches of <paramref name="batchSize"/> (the last may be smaller unless <paramref name="dropLast"/>).
    /// </summary>
    /// <param name="batchSize">Items per batch.</param>
    /// <param name="shuffleSeed">If given, items are shuffled first and the batch order is shuffled at the end.</param>
    /// <param name="lengthOf">If given, enables length bucketing: consecutive chunks of batchSize·<paramref name="bucketFactor"/>
    /// items are sorted by length (stable, descending) and cut into batches, so a batch holds similar lengths and pads little.</param>
    /// <param name="bucketFactor">k in batchSize·k (e.g. 50 as in Hugging Face's LengthGroupedSampler megabatches).</param>
    /// <param name="dropLast">Drop a final batch smaller than batchSize.</param>
    /// <remarks>
    /// Order: (1) seeded Fisher–Yates over items; (2) per chunk, stable sort by length descending; (3) cut batches;
    /// (4) seeded Fisher–Yates over batches (same generator continued). Without a seed the order is the dataset order.
    /// </remarks>
    public IReadOnlyList<IReadOnlyList<T>> Batches(int batchSize, ulong? shuffleSeed = null, Func<T, int>? lengthOf = null,
        int bucketFactor = 50, bool dropLast = false)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be positive.");
        if (bucketFactor <= 0) throw new ArgumentOutOfRangeException(nameof(bucketFactor), bucketFactor, "Bucket factor must be positive.");
        var order = Enumerable.Range(0, Count).ToArray();
        var rng = shuffleSeed is { } s ? Rng(s) : null;
        rng?.FisherYates(order.AsSpan());
        if (lengthOf is not null)
        {
            int chunk = checked(batchSize * bucketFactor);
            var lengths = Array.ConvertAll(_items, x => lengthOf(x));
            for (int start = 0; start < order.Length; start += chunk)
            {
                int len = Math.Min(chunk, order.Length - start);
                var part = order.AsSpan(start, len).ToArray().OrderByDescending(i => lengths[i]).ToArray();
                part.CopyTo(order.AsSpan(start, len));
            }
        }
        var batches = new List<IReadOnlyList<T>>();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int len = Math.Min(batchSize, order.Length - start);
            if (len < batchSize && dropLast) break;
            var batch = new T[len];
            for (int i = 0; i < len; i++) batch[i] = _items[order[start + i]];
            batches.Add(batch);
        }
        if (rng is not null)
        {
            var arr = batches.ToArray();
            rng.FisherYates(arr.AsSpan());
            return arr;
        }
        return batches;
    }
}

/// <summary>Factory helpers for <see cref="Dataset{T}"/>.</summary>
public static class Dataset
{
    public static Dataset<T> From<T>(IEnumerable<T> items) => new(items);
}
