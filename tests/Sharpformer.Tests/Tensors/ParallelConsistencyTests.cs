using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// Row-parallel elementwise ops give the same values (and gradients) on 1 and 2 threads, on shapes big enough to split;
/// each run checks that the ops really forked into as many workers as asked (and no more), so the comparison tests something.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public class ParallelConsistencyTests
{
    static (float[] Y, float[][] Grads) Run(int threads, Func<Tensor[], Tensor> f, Tensor[] inputs)
    {
        var forks = new List<int>();
        string? where = null;
        using (Parallelism.ObserveForks(w => { forks.Add(w); if (w != threads) where ??= Environment.StackTrace; }))
        using (ExecutionScope.Enter(threads))
        {
            foreach (var t in inputs) { t.RequiresGrad = true; t.ZeroGrad(); }
            var y = f(inputs);
            var w = Tensor.Uniform(new Random(1), -1, 1, y.ShapeArray);
            (y * w).Sum().Backward();
            Assert.True(where == null, where);
            Assert.Equal(threads, forks.DefaultIfEmpty(1).Max());
            return (y.ToArray(), inputs.Select(t => t.Grad!.ToArray()).ToArray());
        }
    }

    static void Same(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        var (y1, g1) = Run(1, f, inputs);
        var (y2, g2) = Run(2, f, inputs);
        Assert.Equal(y1, y2);
        for (int i = 0; i < g1.Length; i++)
            for (int j = 0; j < g1[i].Length; j++)
                Assert.True(Math.Abs(g1[i][j] - g2[i][j]) <= 1e-4f * (1 + Math.Abs(g1[i][j])), $"grad {i}[{j}]: {g1[i][j]} vs {g2[i][j]}");
    }

    // γ/β gradients are sums over rows: partial sums per chunk (a cut that ignores the thread count), added in chunk order.
    [Fact]
    public void LayerNormGradientsAreBitIdenticalOnOneTwoAndThreeThreads()
    {
        Tensor[] inputs = [R(3, 700, 256), R(4, 256), R(5, 256)];
        Tensor F(Tensor[] x) => Functional.LayerNorm(x[0], x[1], x[2], 1e-12f);
        var (y1, g1) = Run(1, F, inputs);
        foreach (int threads in new[] { 2, 3 })
        {
            var (y, g) = Run(threads, F, inputs);
            Assert.Equal(y1, y);
            for (int i = 0; i < g1.Length; i++) Assert.True(g1[i].AsSpan().SequenceEqual(g[i]), $"input {i} gradient differs on {threads} threads");
        }
    }

    static Tensor R(int seed, params int[] shape) => Tensor.Normal(new Random(seed), 0, 1, shape);

    [Fact] public void Softmax() => Same(x => x[0].Softmax(-1), R(1, 512, 130));
    [Fact] public void LogSoftmax() => Same(x => x[0].LogSoftmax(-1), R(1, 512, 130));
    [Fact] public void MaskedSoftmax() => Same(x => Functional.SoftmaxWithMask(x[0], Functional.AdditiveMask(Enumerable.Range(0, 4 * 64).Select(i => i % 7 == 0 ? 0 : 1).ToArray(), 4, 64)), R(2, 4, 4, 64, 64));
    // One sample: the two parts split inside its mask group (3 heads × 200 queries share one mask row).
    [Fact] public void MaskedSoftmaxSingleBatch() => Same(x => Functional.SoftmaxWithMask(x[0], Functional.AdditiveMask(Enumerable.Range(0, 200).Select(i => i % 3 == 0 ? 0 : 1).ToArray(), 1, 200)), R(2, 1, 3, 200, 200));
    [Fact] public void LayerNorm() => Same(x => Functional.LayerNorm(x[0], x[1], x[2], 1e-12f), R(3, 300, 256), R(4, 256), R(5, 256));
    [Fact] public void Gelu() => Same(x => x[0].Gelu(), R(6, 100_003));
    [Fact] public void Attention() => Same(x => Functional.Attention(x[0], x[1], x[2], 4, null, 0.1f, true, new Random(3)).Context, R(7, 4, 64, 64), R(8, 4, 64, 64), R(9, 4, 64, 64));

    [Fact]
    public void DropoutMaskIndependentOfThreadCount()
    {
        var x = Tensor.Ones(200_000);
        float[] a, b;
        using (ExecutionScope.Enter(1)) a = Functional.Dropout(x, 0.1f, true, new Random(9)).ToArray();
        var forks = new List<int>();
        using (Parallelism.ObserveForks(forks.Add))
        using (ExecutionScope.Enter(2)) b = Functional.Dropout(x, 0.1f, true, new Random(9)).ToArray();
        Assert.Equal([2], forks);
        Assert.Equal(a, b);
        Assert.InRange(a.Count(v => v == 0f), 19_300, 20_700);
    }

    [Fact]
    public void ShortKLinearWithBlockedBiasAndActivationIsBitIdenticalToGemmThenBias()
    {
        // k = 32 < Gemm.SmallMMinK: the product and its bias/activation run per row block; 1000 rows × 192 outputs span
        // several blocks and an uneven last one, on one thread and on two.
        int rows = 1000, inF = 32, outF = 192;
        var x = Tensor.Uniform(new Random(1), -1f, 1f, 2, rows / 2, inF);
        var w = Tensor.Uniform(new Random(2), -1f, 1f, outF, inF);
        var b = Tensor.Uniform(new Random(3), -1f, 1f, outF);
        var product = new float[rows * outF];
        Gemm.Sgemm(false, true, rows, outF, inF, 1f, x.ToArray(), inF, w.ToArray(), inF, 0f, product, outF, 1);
        var linear = (float[])product.Clone();
        Elementwise.AddBias(linear, b.ToArray(), rows, outF);
        var relu = linear.Select(v => Math.Max(v, 0f)).ToArray();
        var gelu = new float[linear.Length];
        Activations.GeluErf(linear, gelu);
        foreach (int threads in new[] { 1, 2 })
        {
            using var scope = ExecutionScope.Enter(new ExecutionOptions(threads));
            Assert.Equal(linear, Functional.Linear(x, w, b).ToArray());
            Assert.Equal(relu, Functional.LinearRelu(x, w, b).ToArray());
            Assert.Equal(gelu, Functional.LinearGelu(x, w, b).ToArray());
            Assert.Equal(product, Functional.Linear(x, w).ToArray());
        }
    }
}
