using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// A <see cref="TensorScope"/> recycles a step's buffers without ever letting a held tensor show another step's values:
/// scoped steps give bit-identical losses and gradients to unscoped ones, kept outputs keep their values while later steps
/// reuse the pool, released tensors throw, and a warmed-up step allocates little.
/// </summary>
public class TensorScopeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const int Heads = 2, Classes = 3;
    record Sizes(int Batch, int Seq, int Dim, int Hidden);
    static readonly Sizes Small = new(4, 6, 16, 32);

    // A small transformer-like network touching every op with pooled or private saved buffers: Linear(+GELU), LayerNorm,
    // fused self-attention with a key mask, dropout, elementwise ops with broadcasting, views, softmax and cross-entropy.
    sealed class Net
    {
        public readonly Tensor Qkv, QkvB, Ln, LnB, W1, B1, W2, B2, Out, Scale;
        public Net(int seed, Sizes z)
        {
            var r = new Random(seed);
            int Dim = z.Dim, Hidden = z.Hidden;
            Tensor P(params int[] shape) { var t = Tensor.Uniform(r, -0.3f, 0.3f, shape); t.RequiresGrad = true; return t; }
            Qkv = P(3 * Dim, Dim); QkvB = P(3 * Dim); Ln = P(Dim); LnB = P(Dim); W1 = P(Hidden, Dim); B1 = P(Hidden);
            W2 = P(Dim, Hidden); B2 = P(Dim); Out = P(Classes, Dim); Scale = P(Dim);
        }

        public Tensor[] Parameters => [Qkv, QkvB, Ln, LnB, W1, B1, W2, B2, Out, Scale];

        public (Tensor Loss, Tensor Logits, Tensor Hidden) Forward(Tensor x, Tensor mask, int[] labels, Random dropout)
        {
            var qkv = Functional.Linear(x, Qkv, QkvB);
            var ctx = Functional.SelfAttention(qkv, Heads, mask, dropout: 0.1f, training: true, rng: dropout).Context;
            var h = Functional.LayerNorm(x + Functional.Dropout(ctx, 0.1f, true, dropout), Ln, LnB, 1e-5f);
            var f = Functional.Linear(Functional.LinearGelu(h, W1, B1), W2, B2);
            h = Functional.LayerNorm(h + f * Scale, Ln, LnB, 1e-5f);
            var pooled = h.Softmax(1).Mul(h).Sum(1);                       // [B, Dim]
            var logits = Functional.Linear(pooled, Out);
            return (Losses.CrossEntropy(logits, labels), logits, h);
        }
    }

    static (Tensor X, Tensor Mask, int[] Labels) Batch1(int step, Sizes z)
    {
        var r = new Random(100 + step);
        var x = Tensor.Uniform(r, -1f, 1f, z.Batch, z.Seq, z.Dim);
        var mask = Tensor.Zeros(z.Batch, z.Seq);
        for (int b = 0; b < z.Batch; b++) for (int s = z.Seq - b; s < z.Seq; s++) mask[b, s] = Functional.MaskedValue;
        return (x, mask, [.. Enumerable.Range(0, z.Batch).Select(i => (i + step) % Classes)]);
    }

    // Runs `steps` training steps (forward, backward; gradients accumulate) with or without a scope per step; returns each
    // step's loss and, from step 0, the logits and hidden state as held tensors (kept when scoped) with copies of their values.
    static (float[] Losses, float[][] Grads, Tensor Logits, Tensor Hidden, float[] LogitsThen, float[] HiddenThen) Run(int steps, TensorPool? pool)
    {
        var net = new Net(7, Small);
        var dropout = new Random(3);
        var losses = new float[steps];
        Tensor? logits0 = null, hidden0 = null; float[]? l0 = null, h0 = null;
        for (int step = 0; step < steps; step++)
        {
            var (x, mask, labels) = Batch1(step, Small);
            using var scope = pool?.Scope();
            var (loss, logits, hidden) = net.Forward(x, mask, labels, dropout);
            losses[step] = loss.Item();
            loss.Backward();
            if (step == 0)
            {
                logits0 = logits.Keep(); hidden0 = hidden.Keep();
                l0 = logits.ToArray(); h0 = hidden.ToArray();
            }
        }
        return (losses, [.. net.Parameters.Select(p => p.Grad!.ToArray())], logits0!, hidden0!, l0!, h0!);
    }

    [Fact]
    public void ScopedStepsGiveBitIdenticalLossesAndGradientsToUnscopedSteps()
    {
        var plain = Run(4, pool: null);
        var pooled = Run(4, new TensorPool());
        Assert.Equal(plain.Losses, pooled.Losses);
        for (int i = 0; i < plain.Grads.Length; i++) Assert.Equal(plain.Grads[i], pooled.Grads[i]);
    }

    [Fact]
    public void KeptOutputsKeepTheirValuesWhileLaterStepsReuseThePool()
    {
        var pool = new TensorPool();
        var r = Run(4, pool);
        Assert.True(pool.FreeBytes > 0, "the later steps should have drawn on recycled buffers");
        Assert.Equal(r.LogitsThen, r.Logits.ToArray());
        Assert.Equal(r.HiddenThen, r.Hidden.ToArray());
        Assert.Equal(r.HiddenThen.Take(Small.Dim), r.Hidden.Select(0, 0).Select(0, 0).ToArray());   // views of kept storage too
    }

    [Fact]
    public void TensorsHeldPastTheirScopeThrowInsteadOfShowingAnotherStepsValues()
    {
        var pool = new TensorPool();
        var external = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        Tensor y, view, fromExternal;
        using (pool.Scope())
        {
            y = external.Mul(2f);
            view = y.Transpose(0, 1);
            fromExternal = external.Reshape(3, 2);
            Assert.Equal(4f, view[1, 0]);
        }
        using (pool.Scope())
        {
            var z = external.Mul(-1f);   // the same size: takes y's old buffer
            Assert.Equal(-1f, z[0, 0]);
            Assert.True(y.IsReleased && view.IsReleased);
            var e = Assert.Throws<TensorReleasedException>(() => y.ToArray());
            Assert.Contains("Keep()", e.Message);
            Assert.Throws<TensorReleasedException>(() => view[0, 0]);
            Assert.Throws<TensorReleasedException>(() => y.Add(1f));
        }
        Assert.False(external.IsReleased || fromExternal.IsReleased);   // arrays the pool does not own are never touched
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], fromExternal.ToArray());
        Assert.Contains("(released)", y.ToString());
    }

    [Fact]
    public void GraphRecordedInAScopeIsFreedWhenTheScopeEnds()
    {
        var w = Tensor.FromArray([1f, 2f, 3f], 3);
        w.RequiresGrad = true;
        Tensor loss;
        using (new TensorPool().Scope()) loss = w.Mul(w).Sum();
        Assert.Throws<AutogradException>(() => loss.Backward());
        Assert.Null(w.Grad);
    }

    [Fact]
    public void ParameterGradientsAndParametersCreatedInAScopeSurviveIt()
    {
        var pool = new TensorPool();
        Tensor w, frozen;
        using (pool.Scope())
        {
            w = Tensor.Uniform(new Random(1), -1f, 1f, 4, 4);   // a rented buffer, but a managed leaf
            w.RequiresGrad = true;
            frozen = Tensor.Ones(4, 4);
            frozen.RequiresGrad = false;
            w.Mul(frozen).Sum().Backward();                      // w.Grad is allocated inside the scope
        }
        for (int i = 0; i < 3; i++)
            using (pool.Scope()) Tensor.Full(5f, 4, 4).Add(Tensor.Zeros(4, 4)).Sum();   // churn the same sizes
        Assert.All(w.Grad!.ToArray(), g => Assert.Equal(1f, g));
        Assert.All(frozen.ToArray(), v => Assert.Equal(1f, v));
        Assert.False(w.IsReleased);
    }

    [Fact]
    public void ZerosFromThePoolAreZeroed()
    {
        var pool = new TensorPool();
        using (pool.Scope()) Tensor.Full(7f, 64);
        using (pool.Scope()) Assert.All(Tensor.Zeros(64).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void PoolDropsBuffersOfSizesThatStopRecurring()
    {
        var pool = new TensorPool();
        using (pool.Scope()) Tensor.Zeros(1000);
        Assert.Equal(4000, pool.FreeBytes);
        using (pool.Scope()) Tensor.Zeros(10);    // the 1000-float buffer sits unused through a whole scope
        Assert.Equal(40, pool.FreeBytes);
        using (pool.Scope()) { Tensor.Zeros(10); Tensor.Zeros(10); }
        Assert.Equal(80, pool.FreeBytes);
    }

    [Fact]
    public void ScopesMustEndInReverseOrderOnTheirThread()
    {
        var pool = new TensorPool();
        var outer = pool.Scope();
        var inner = pool.Scope();
        Assert.Throws<InvalidOperationException>(outer.Dispose);
        inner.Dispose();
        outer.Dispose();
    }

    [Fact]
    public void WarmedUpScopedStepAllocatesUnderATenthOfAnUnscopedStep()
    {
        // Allocation counts are deterministic for a fixed graph (no timing). What remains per scoped step is the graph
        // itself (nodes, closures, shape arrays, tensor objects) and small per-op arrays (masks, column sums).
        long Measure(TensorPool? pool)
        {
            // big enough that activations, not the graph's bookkeeping, dominate, as in a real model
            var z = new Sizes(4, 32, 64, 256);
            var net = new Net(7, z);
            var dropout = new Random(3);
            var (x, mask, labels) = Batch1(0, z);
            void Step()
            {
                using var scope = pool?.Scope();
                net.Forward(x, mask, labels, dropout).Loss.Backward();
            }
            Step(); Step();
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 5; i++) Step();
            return (GC.GetAllocatedBytesForCurrentThread() - before) / 5;
        }
        long unscoped = Measure(null), scoped = Measure(new TensorPool());
        output.WriteLine($"bytes per step: unscoped {unscoped}, scoped {scoped}");
        Assert.True(scoped * 10 < unscoped, $"scoped step allocates {scoped} bytes, unscoped {unscoped}");
        Assert.True(scoped < 160 * 1024, $"scoped step allocates {scoped} bytes (bound 160 KiB)");
    }
}
