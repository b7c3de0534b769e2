using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

public class EmbeddingAndElementwiseTests
{
    [Fact]
    public void GatherCopiesRowsAndScatterAddAccumulatesSkippingPadding()
    {
        int rows = 7, dim = 5;
        var table = Enumerable.Range(0, rows * dim).Select(i => (float)i).ToArray();
        int[] ids = [3, 0, 3, 6, 2];
        var y = new float[ids.Length * dim];
        Embedding.Gather(table, rows, dim, ids, y);
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < dim; j++) Assert.Equal(ids[i] * dim + j, y[i * dim + j]);

        var dy = Enumerable.Range(0, ids.Length * dim).Select(i => 0.5f * i).ToArray();
        var dT = new float[rows * dim];
        dT[2 * dim] = 100f;
        Embedding.ScatterAdd(dy, ids, dT, rows, dim, skipId: 6);
        var want = new double[rows * dim];
        want[2 * dim] = 100;
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] != 6) for (int j = 0; j < dim; j++) want[ids[i] * dim + j] += dy[i * dim + j];
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], dT[i], 6);
    }

    [Fact]
    public void GatherAddAddsThePositionRowAndSumPeriodicRowsFoldsItsGradient()
    {
        // reference twins: plain loops in double
        int rows = 6, dim = 5, period = 3;
        var rng = new Random(4);
        var table = Enumerable.Range(0, rows * dim).Select(_ => (float)rng.NextDouble()).ToArray();
        var addend = Enumerable.Range(0, period * dim).Select(_ => (float)rng.NextDouble()).ToArray();
        int[] ids = [5, 0, 2, 2, 4, 1];
        var y = new float[ids.Length * dim];
        Embedding.GatherAdd(table, rows, dim, ids, addend, period, y);
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < dim; j++) Assert.Equal(table[ids[i] * dim + j] + addend[i % period * dim + j], y[i * dim + j]);

        var dy = Enumerable.Range(0, ids.Length * dim).Select(_ => (float)rng.NextDouble()).ToArray();
        var dA = Enumerable.Repeat(1f, period * dim).ToArray();
        Embedding.SumPeriodicRows(dy, ids.Length, period, dim, dA);
        for (int t = 0; t < period; t++)
            for (int j = 0; j < dim; j++)
            {
                double want = 1;
                for (int i = t; i < ids.Length; i += period) want += dy[i * dim + j];
                Assert.Equal(want, dA[t * dim + j], 5);
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.SumPeriodicRows(dy, 5, period, dim, dA));
        Assert.Throws<ArgumentException>(() => Embedding.GatherAdd(table, rows, dim, ids, new float[4], period, y));
    }

    [Fact]
    public void OutOfRangeIdsAndShortBuffersThrow()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Gather(new float[10], 5, 2, [1, 5], new float[4]));
        Assert.Contains("position 1", e.Message);
        Assert.Throws<ArgumentException>(() => Embedding.Gather(new float[9], 5, 2, [1], new float[2]));
        Assert.Throws<ArgumentException>(() => Embedding.Gather(new float[10], 5, 2, [1, 2], new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.ScatterAdd(new float[2], [-3], new float[10], 5, 2));
    }

    [Fact]
    public void AddBiasBiasGradientAndFusedBiasGelu()
    {
        var rng = new Random(5);
        for (int cols = 1; cols <= 70; cols += 3)
        {
            int rows = 4;
            var x = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
            var bias = Enumerable.Range(0, cols).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var added = (float[])x.Clone();
            Elementwise.AddBias(added, bias, rows, cols);
            for (int i = 0; i < x.Length; i++) Assert.Equal(x[i] + bias[i % cols], added[i]);

            var fused = (float[])x.Clone(); var pre = new float[rows * cols];
            Elementwise.AddBiasGeluErf(fused, bias, rows, cols, pre);
            Assert.Equal(added, pre);
            var gelu = new float[rows * cols];
            Activations.GeluErf(added, gelu);
            Assert.Equal(gelu, fused);

            var db = Enumerable.Repeat(1f, cols).ToArray();
            Elementwise.BiasGradient(x, db, rows, cols);
            for (int j = 0; j < cols; j++)
            {
                double want = 1; for (int r = 0; r < rows; r++) want += x[r * cols + j];
                Assert.True(Math.Abs(want - db[j]) <= 1e-5, $"bias grad [{j}] {db[j]} vs {want}");
            }
        }
    }
}
