using System.Runtime.Intrinsics;
using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>Softmax family against double-precision twins, every row length 0–256.</summary>
public class SoftmaxTests
{
    static float[] Values(Random rng, int n, double spread)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * spread);
        return x;
    }

    static double[] RefSoftmax(float[] x, int off, int cols, float[]? mask, int moff)
    {
        var v = new double[cols];
        double max = double.NegativeInfinity;
        for (int j = 0; j < cols; j++) { v[j] = x[off + j] + (mask is null ? 0 : mask[moff + j]); max = Math.Max(max, v[j]); }
        if (double.IsNegativeInfinity(max)) return new double[cols];
        double sum = 0;
        for (int j = 0; j < cols; j++) { v[j] = Math.Exp(v[j] - max); sum += v[j]; }
        for (int j = 0; j < cols; j++) v[j] /= sum;
        return v;
    }

    [Fact]
    public void ForwardMatchesReferenceForEveryRowLength()
    {
        var rng = new Random(1);
        for (int cols = 0; cols <= 256; cols++)
        {
            int rows = 3;
            var x = Values(rng, rows * cols, 8); var y = new float[rows * cols];
            Softmax.Forward(x, y, rows, cols);
            for (int r = 0; r < rows; r++)
            {
                var want = RefSoftmax(x, r * cols, cols, null, 0);
                for (int j = 0; j < cols; j++)
                    Assert.True(Math.Abs(y[r * cols + j] - want[j]) <= 1e-6 * want[j] + 1e-9, $"cols={cols} [{r},{j}] {y[r * cols + j]} vs {want[j]}");
            }
        }
    }

    [Fact]
    public void MaskBroadcastsOverRowsPerMaskAndFullyMaskedRowsGiveZeros()
    {
        var rng = new Random(2);
        int batch = 2, heads = 3, queries = 5, keys = 37;
        int rows = batch * heads * queries;
        var x = Values(rng, rows * keys, 5);
        var mask = new float[batch * keys];
        for (int j = 30; j < keys; j++) mask[j] = float.MinValue;            // batch 0: padding at the end
        for (int j = 0; j < keys; j++) mask[keys + j] = float.NegativeInfinity; // batch 1: everything masked
        var y = (float[])x.Clone();
        Softmax.Forward(y, y, rows, keys, mask, heads * queries);          // in place
        for (int r = 0; r < rows; r++)
        {
            var want = RefSoftmax(x, r * keys, keys, mask, r / (heads * queries) * keys);
            for (int j = 0; j < keys; j++)
                Assert.True(Math.Abs(y[r * keys + j] - want[j]) <= 1e-6 * want[j] + 1e-9, $"row {r} col {j}: {y[r * keys + j]} vs {want[j]}");
        }
        Assert.All(y.AsSpan(batch / 2 * heads * queries * keys).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void BackwardMatchesJacobianProduct()
    {
        var rng = new Random(3);
        for (int cols = 0; cols <= 256; cols += 1)
        {
            int rows = 2;
            var x = Values(rng, rows * cols, 3); var y = new float[rows * cols];
            Softmax.Forward(x, y, rows, cols);
            var dy = Values(rng, rows * cols, 1); var dx = new float[rows * cols];
            Softmax.Backward(y, dy, dx, rows, cols);
            for (int r = 0; r < rows; r++)
            {
                double dot = 0; for (int j = 0; j < cols; j++) dot += (double)y[r * cols + j] * dy[r * cols + j];
                for (int j = 0; j < cols; j++)
                {
                    double want = y[r * cols + j] * (dy[r * cols + j] - dot);
                    Assert.True(Math.Abs(dx[r * cols + j] - want) <= 1e-6 * (Math.Abs(y[r * cols + j]) + 1e-7), $"cols={cols} {dx[r * cols + j]} vs {want}");
                }
            }
        }
    }

    [Fact]
    public void LogForwardAndBackwardMatch()
    {
        var rng = new Random(4);
        for (int cols = 0; cols <= 256; cols++)
        {
            int rows = 2;
            var x = Values(rng, rows * cols, 10); var y = (float[])x.Clone();
            Softmax.LogForward(y, y, rows, cols); // in place
            var dy = Values(rng, rows * cols, 1); var dx = new float[rows * cols];
            Softmax.LogBackward(y, dy, dx, rows, cols);
            for (int r = 0; r < rows; r++)
            {
                double max = double.NegativeInfinity, sum = 0, gsum = 0;
                for (int j = 0; j < cols; j++) max = Math.Max(max, x[r * cols + j]);
                for (int j = 0; j < cols; j++) { sum += Math.Exp(x[r * cols + j] - max); gsum += dy[r * cols + j]; }
                double lse = max + Math.Log(sum);
                for (int j = 0; j < cols; j++)
                {
                    double want = x[r * cols + j] - lse;
                    Assert.True(Math.Abs(y[r * cols + j] - want) <= 2e-6 * (Math.Abs(want) + 1), $"log cols={cols} {y[r * cols + j]} vs {want}");
                    double wantGrad = dy[r * cols + j] - Math.Exp(want) * gsum;
                    Assert.True(Math.Abs(dx[r * cols + j] - wantGrad) <= 2e-6 * (1 + Math.Abs(gsum)), $"logback cols={cols} {dx[r * cols + j]} vs {wantGrad}");
                }
            }
        }
    }

    [Fact]
    public void VectorExpIsWithinTwoUlpOnTheNonPositiveAxis()
    {
        const int N = 100_000;
        var x = new float[N + 16];
        for (int i = 0; i < N; i++) x[i] = -90f * i / N;
        x[N] = float.NegativeInfinity; x[N + 1] = -0f; x[N + 2] = -1e-30f; x[N + 3] = -87.2f; x[N + 4] = -87.4f;
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i += 16)
            Softmax.ExpNonPositive(System.Runtime.Intrinsics.Vector512.Create(x.AsSpan(i, 16))).CopyTo(y.AsSpan(i, 16));
        for (int i = 0; i < N + 5; i++)
        {
            double want = x[i] < -87.3f ? 0 : Math.Exp(x[i]);
            Assert.True(Math.Abs(y[i] - want) <= 2.4e-7 * want, $"exp({x[i]}) = {y[i]}, expected {want}");
        }
    }

    [Fact]
    public void BadShapesThrow()
    {
        Assert.Throws<ArgumentException>(() => Softmax.Forward(new float[10], new float[12], 3, 4));
        Assert.Throws<ArgumentException>(() => Softmax.Forward(new float[12], new float[12], 3, 4, new float[4], 2));
        Assert.Throws<ArgumentException>(() => Softmax.Backward(new float[12], new float[11], new float[12], 3, 4));
    }

    [Theory]
    [InlineData(16, 3)]
    [InlineData(40, 0)]
    [InlineData(40, 21)]
    [InlineData(40, 39)]
    public void NaNAnywhereInARowMakesThatRowNaNAndLeavesOthersAlone(int cols, int nanAt)
    {
        // As torch.softmax: a NaN score poisons its row only. Checks the vector max reduction and the scalar tail alike.
        var rng = new Random(cols * 100 + nanAt);
        var x = new float[2 * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        x[nanAt] = float.NaN;
        var y = new float[x.Length];
        Softmax.Forward(x, y, 2, cols);
        Assert.All(y[..cols], v => Assert.True(float.IsNaN(v)));
        Assert.Equal(1.0, y[cols..].Sum(v => (double)v), 5);
    }

    // Reference twin of CrossEntropyRows / CrossEntropyBackwardRows: logsumexp and softmax in double, row by row.
    static double RefLogSumExp(float[] x, int off, int cols)
    {
        double max = double.NegativeInfinity, sum = 0;
        for (int j = 0; j < cols; j++) max = Math.Max(max, x[off + j]);
        for (int j = 0; j < cols; j++) sum += Math.Exp(x[off + j] - max);
        return max + Math.Log(sum);
    }

    [Fact]
    public void CrossEntropyRowsMatchesDoubleLogSumExpAndLogForwardBitForBit()
    {
        // Lengths straddle the 1024-float chunk and the vector tails; log p = x − lse must be LogForward's very bits.
        var rng = new Random(11);
        foreach (int cols in new[] { 1, 7, 16, 33, 1023, 1024, 1025, 3000 })
        {
            const int rows = 5;
            var x = Values(rng, rows * cols, 12);
            var lse = new float[rows]; var logp = new float[rows * cols];
            Softmax.CrossEntropyRows(x, lse, rows, cols, threads: 2);
            Softmax.LogForward(x, logp, rows, cols);
            for (int r = 0; r < rows; r++)
            {
                double want = RefLogSumExp(x, r * cols, cols);
                Assert.True(Math.Abs(lse[r] - want) <= 1e-6 * Math.Max(1, Math.Abs(want)), $"cols {cols} row {r}: lse {lse[r]}, expected {want}");
                for (int j = 0; j < cols; j++) Assert.Equal(logp[r * cols + j], x[r * cols + j] - lse[r]);
            }
        }
    }

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(true, 0f)]
    [InlineData(false, 0.1f)]
    [InlineData(true, 0.1f)]
    public void CrossEntropyBackwardRowsMatchesDoubleSoftmaxMinusTargets(bool accumulate, float smoothing)
    {
        var rng = new Random(accumulate ? 5 : 6);
        foreach (int cols in new[] { 1, 15, 17, 1024, 2049 })
        {
            const int rows = 4;
            var x = Values(rng, rows * cols, 6);
            int[] targets = [cols - 1, -100, 0, cols / 2];
            var lse = new float[rows];
            Softmax.CrossEntropyRows(x, lse, rows, cols);
            float scale = 0.37f, uniform = smoothing / cols * scale, onTarget = (1 - smoothing) * scale;
            var before = Values(rng, rows * cols, 1);
            var dx = (float[])before.Clone();
            Softmax.CrossEntropyBackwardRows(x, lse, targets, -100, scale, uniform, onTarget, dx, accumulate, rows, cols, threads: 2);
            for (int r = 0; r < rows; r++)
            {
                double l = RefLogSumExp(x, r * cols, cols);
                for (int j = 0; j < cols; j++)
                {
                    int i = r * cols + j;
                    double g = targets[r] == -100 ? 0 : Math.Exp(x[i] - l) * scale - uniform - (j == targets[r] ? onTarget : 0);
                    double want = (accumulate ? before[i] : 0) + g;
                    Assert.True(Math.Abs(dx[i] - want) <= 1e-6, $"cols {cols} [{r},{j}]: {dx[i]}, expected {want}");
                }
            }
        }
    }
}
