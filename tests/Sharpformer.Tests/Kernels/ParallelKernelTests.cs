using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Large inputs take the multi-threaded paths; their results must be bit-identical to the same kernel run on small
/// pieces (which stays single-threaded), because every element/row is computed by the same code wherever it lands.
/// The large calls ask for two threads explicitly, and the forks they make are observed, so they do run split.
/// </summary>
[Collection(nameof(Sharpformer.Tests.Tensors.ThreadCountCollection))]
public class ParallelKernelTests
{
    const int Threads = 2;

    static float[] Values(int n, int seed, double spread = 4)
    {
        var rng = new Random(seed); var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * spread);
        return x;
    }

    // The cut into chunks depends on the count and chunk size only; every item is visited once whatever the thread count.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public void ChunksCoverTheRangeOnceAndDoNotDependOnTheThreadCount(int threads)
    {
        var seen = new System.Collections.Concurrent.ConcurrentBag<(int Chunk, int Lo, int Hi)>();
        int chunks = Parallelism.ForChunks(1003, 100, threads, (c, lo, hi) => seen.Add((c, lo, hi)));
        Assert.Equal(11, chunks);
        Assert.Equal(Enumerable.Range(0, 11).Select(c => (c, c * 100, Math.Min(1003, c * 100 + 100))), seen.OrderBy(x => x.Chunk));
    }

    // A worker that stalls (descheduled on a shared VM) must not hold back chunks it has not started: here the first
    // chunk blocks until every other chunk is done, which only finishes if the other worker takes them all.
    [Fact]
    public void AStalledWorkerDoesNotHoldBackTheOtherChunks()
    {
        const int count = 64;
        int others = 0;
        using var othersDone = new ManualResetEventSlim();
        bool released = false;
        Parallelism.ForChunks(count, 1, 2, (c, _, _) =>
        {
            if (c == 0) { released = othersDone.Wait(TimeSpan.FromSeconds(60)); return; }
            if (Interlocked.Increment(ref others) == count - 1) othersDone.Set();
        });
        Assert.True(released, $"only {others} of {count - 1} chunks ran while chunk 0 was stalled");
    }

    [Fact]
    public void ElementwiseKernelsMatchPiecewiseResults()
    {
        int n = 200_003;
        var x = Values(n, 1); var dy = Values(n, 2, 1);
        var big = new float[n]; var pieces = new float[n];
        foreach (var (name, run) in new (string, Action<float[], float[], int>)[]
        {
            ("GeluErf", (a, o, t) => Activations.GeluErf(a, o, t)),
            ("GeluTanh", (a, o, t) => Activations.GeluTanh(a, o, t)),
        })
        {
            var forks = new List<int>();
            using (Parallelism.ObserveForks(forks.Add)) run(x, big, Threads);
            Assert.Equal([Threads], forks);
            for (int i = 0; i < n; i += 1000) { int len = Math.Min(1000, n - i); var o = new float[len]; run(x[i..(i + len)], o, Threads); o.CopyTo(pieces, i); }
            Assert.True(big.AsSpan().SequenceEqual(pieces), name);
        }
        Activations.GeluErfBackward(x, dy, big, Threads);
        for (int i = 0; i < n; i += 1000)
        {
            int len = Math.Min(1000, n - i); var o = new float[len];
            Activations.GeluErfBackward(x.AsSpan(i, len), dy.AsSpan(i, len), o); o.CopyTo(pieces, i);
        }
        // exp comes from TensorPrimitives, whose code for a short span differs from its full-vector code by a few ulp.
        for (int i = 0; i < n; i++)
            Assert.True(Math.Abs(big[i] - pieces[i]) <= 2e-7 * Math.Abs(dy[i]) * (1 + Math.Abs(x[i])), $"GeluErfBackward [{i}] {big[i]} vs {pieces[i]}");
    }

    [Fact]
    public void SoftmaxLayerNormAndBiasGeluMatchRowByRow()
    {
        int rows = 600, cols = 300, rowsPerMask = 50;
        var x = Values(rows * cols, 3); var mask = Values(rows / rowsPerMask * cols, 4, 2);
        var y = new float[x.Length];
        var forks = new List<int>();
        using var observe = Parallelism.ObserveForks(forks.Add);
        Softmax.Forward(x, y, rows, cols, mask, rowsPerMask, Threads);
        var dy = Values(x.Length, 5, 1); var dx = new float[x.Length];
        Softmax.Backward(y, dy, dx, rows, cols, Threads);
        var g = Values(cols, 6, 1); var b = Values(cols, 7, 1);
        var ln = new float[x.Length]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNorm.Forward(x, g, b, ln, rows, cols, 1e-5f, mean, rstd, Threads);
        var fused = (float[])x.Clone(); var pre = new float[x.Length];
        Elementwise.AddBiasGeluErf(fused, b, rows, cols, pre, Threads);
        Assert.Equal([Threads, Threads, Threads, Threads], forks);
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * cols, cols);
            var one = new float[cols];
            Softmax.Forward(row, one, 1, cols, mask.AsSpan(r / rowsPerMask * cols, cols));
            Assert.True(one.AsSpan().SequenceEqual(y.AsSpan(r * cols, cols)), $"softmax row {r}");
            var back = new float[cols];
            Softmax.Backward(y.AsSpan(r * cols, cols), dy.AsSpan(r * cols, cols), back, 1, cols);
            Assert.True(back.AsSpan().SequenceEqual(dx.AsSpan(r * cols, cols)), $"softmax backward row {r}");
            var m1 = new float[1]; var s1 = new float[1];
            LayerNorm.Forward(row, g, b, one, 1, cols, 1e-5f, m1, s1);
            Assert.True(one.AsSpan().SequenceEqual(ln.AsSpan(r * cols, cols)) && m1[0] == mean[r] && s1[0] == rstd[r], $"layer norm row {r}");
            var f = row.ToArray();
            Elementwise.AddBiasGeluErf(f, b, 1, cols);
            Assert.True(f.AsSpan().SequenceEqual(fused.AsSpan(r * cols, cols)), $"bias+gelu row {r}");
        }
    }

    [Fact]
    public void ForRunsEveryPartOnceAndMarksNestedRegions()
    {
        var hits = new int[7];
        var nested = new bool[7];
        Parallelism.For(7, w => { Interlocked.Increment(ref hits[w]); nested[w] = Parallelism.IsInsideParallelRegion && Parallelism.WorkersFor(1L << 30, 1, Threads) == 1; });
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.All(nested, Assert.True);
        Assert.False(Parallelism.IsInsideParallelRegion);
    }
}
