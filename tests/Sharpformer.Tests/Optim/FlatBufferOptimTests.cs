using Sharpformer.Nn;
using Sharpformer.Optim;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Optim;

/// <summary>
/// The optimizers over parameters whose value and gradient arrays the test holds, and
/// their element-wise arithmetic against slow scalar twins written in the reference libraries' operation order: equal bit for bit.
/// </summary>
public class FlatBufferOptimTests
{
    // 200 003 elements: several threaded chunks (≥ 64K each) and a tail that is not a multiple of the vector width.
    const int N = 200_003;

    static (float[] Value, float[] Grad) Buffers(int seed)
    {
        var rng = new Random(seed);
        var v = new float[N]; var g = new float[N];
        for (int i = 0; i < N; i++) { v[i] = (float)(rng.NextDouble() * 2 - 1); g[i] = (float)((rng.NextDouble() - 0.5) * 1e-2); }
        return (v, g);
    }

    static void NewGrad(float[] g, int seed)
    {
        var rng = new Random(seed);
        for (int i = 0; i < g.Length; i++) g[i] = (float)((rng.NextDouble() - 0.5) * 1e-2);
    }

    // A parameter over the test's own arrays (a leaf tensor keeps the array it is made from), its gradient attached.
    static Parameter FromBuffers(string name, float[] value, float[] grad, int[] shape)
    {
        var p = new Parameter(Tensor.FromArray(value, shape)) { Value = { Name = name } };
        p.Value.Grad = Tensor.FromArray(grad, shape);
        return p;
    }

    // torch 1.13 _single_tensor_adamw in float32: scalars are Python floats (double), rounded once when applied.
    static void TorchAdamWReference(float[] p, float[] g, float[] m, float[] v, long t, double lr, double b1d, double b2d, double epsd, double wd)
    {
        float keep = (float)(1 - lr * (float)wd);
        for (int i = 0; i < p.Length; i++) p[i] *= keep;
        double bc1 = 1 - Math.Pow(b1d, t), bc2 = 1 - Math.Pow(b2d, t);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2);
        float b1 = (float)b1d, b2 = (float)b2d, c1 = (float)(1 - b1d), c2 = (float)(1 - b2d), eps = (float)epsd;
        for (int i = 0; i < p.Length; i++)
        {
            m[i] = m[i] * b1 + c1 * g[i];                 // exp_avg.mul_(β₁).add_(g, alpha=1−β₁)
            v[i] = v[i] * b2 + c2 * g[i] * g[i];          // exp_avg_sq.mul_(β₂).addcmul_(g, g, value=1−β₂)
            float denom = MathF.Sqrt(v[i]) / bc2Sqrt + eps;
            p[i] += -stepSize * (m[i] / denom);          // addcdiv_(m, denom, value=−step_size)
        }
    }

    // Keras 3 Adam.update_step in float32.
    static void KerasAdamReference(float[] p, float[] g, float[] m, float[] v, long t, double lr, double b1d, double b2d, double epsd)
    {
        float alpha = (float)(lr * Math.Sqrt(1 - Math.Pow(b2d, t)) / (1 - Math.Pow(b1d, t)));
        float c1 = (float)(1 - b1d), c2 = (float)(1 - b2d), eps = (float)epsd;
        for (int i = 0; i < p.Length; i++)
        {
            m[i] += (g[i] - m[i]) * c1;
            v[i] += (g[i] * g[i] - v[i]) * c2;
            p[i] -= alpha * m[i] / (MathF.Sqrt(v[i]) + eps);
        }
    }

    [Fact]
    public void TorchAdamWEqualsTheTorchOrderReferenceBitForBit()
    {
        var (value, grad) = Buffers(1);
        float[] refP = (float[])value.Clone(), refM = new float[N], refV = new float[N];
        var p = FromBuffers("w", value, grad, [N]);
        var opt = new AdamW([p], learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01f);
        for (int t = 1; t <= 3; t++)
        {
            if (t > 1) NewGrad(grad, 10 + t);
            double lr = 3e-3 * t / 3;   // a schedule changes the exact (double) learning rate between steps
            opt.Groups[0].LearningRateExact = lr;
            opt.Step();
            TorchAdamWReference(refP, grad, refM, refV, t, lr, 0.9, 0.999, 1e-8, 0.01f);
            Assert.Equal(refP, value);
        }
    }

    [Fact]
    public void KerasAdamEqualsTheKerasReferenceBitForBit()
    {
        var (value, grad) = Buffers(2);
        float[] refP = (float[])value.Clone(), refM = new float[N], refV = new float[N];
        var opt = new Adam([FromBuffers("w", value, grad, [N])], learningRate: 1e-3, epsilon: 1e-7, flavor: AdamFlavor.Keras);
        for (int t = 1; t <= 3; t++)
        {
            if (t > 1) NewGrad(grad, 20 + t);
            opt.Step();
            KerasAdamReference(refP, grad, refM, refV, t, 1e-3, 0.9, 0.999, 1e-7);
            Assert.Equal(refP, value);
        }
    }

    [Fact]
    public void ClipGradNormEqualsTheReferenceAndGlobalNormDoesNotClip()
    {
        var (_, g1) = Buffers(3); var (_, g2) = Buffers(4);
        var ps = new[] { FromBuffers("a", new float[N], g1, [N]), FromBuffers("b", new float[N], g2, [N]) };
        // reference: per-tensor float32 norms (as torch), their squares summed in double, coefficient formed in double
        double sq = 0;
        foreach (var g in new[] { g1, g2 })
        {
            double s = 0;
            foreach (float x in g) s += (double)x * x;
            float n = (float)Math.Sqrt(s);
            sq += (double)n * n;
        }
        float total = MathF.Sqrt((float)sq);
        Assert.Equal(total, GradClip.GlobalNorm(ps), 5);
        var before = (float[])g1.Clone();
        float reported = GradClip.ClipGradNorm(ps, 0.1);
        Assert.Equal(total, reported, 5);
        float coef = (float)(0.1 / (reported + 1e-6));
        for (int i = 0; i < N; i += 997) Assert.Equal(before[i] * coef, g1[i]);
        Assert.Equal(0.1, GradClip.GlobalNorm(ps), 5);
    }

    [Fact]
    public void HuggingFaceGroupingOverNamedParametersSkipsFrozenOnes()
    {
        Parameter P(string name) => FromBuffers(name, new float[2], new float[2], [2]);
        var frozen = P("encoder.frozen.weight"); frozen.Trainable = false;
        var groups = ParameterGroups.HuggingFaceWeightDecay(
        [
            ("dense.weight", P("dense.weight"), false), ("dense.bias", P("dense.bias"), false),
            ("LayerNorm.weight", P("LayerNorm.weight"), true), ("encoder.frozen.weight", frozen, false),
        ], 0.05f);
        Assert.Equal(2, groups.Count);
        Assert.Equal(["dense.weight"], groups[0].Parameters.Select(p => p.Value.Name!));
        Assert.Equal(["dense.bias", "LayerNorm.weight"], groups[1].Parameters.Select(p => p.Value.Name!));
        var opt = new AdamW(groups);
        Assert.Equal(0.05f, opt.Groups[0].WeightDecay);
        Assert.Equal(0f, opt.Groups[1].WeightDecay);
    }

    [Fact]
    public void StateRoundTripKeepsTheExactLearningRate()
    {
        var p = FromBuffers("w", [1f, 2f], [0.1f, -0.2f], [2]);
        var opt = new AdamW([p], learningRate: 1e-3);
        var sched = LrScheduler.LinearWithWarmup(opt, 2, 7);
        opt.Step(); sched.Step();
        Assert.Equal(1e-3 * 0.5, opt.Groups[0].LearningRateExact);
        var ms = new MemoryStream();
        opt.SaveState(ms);
        var p2 = FromBuffers("w", [1f, 2f], [0.1f, -0.2f], [2]);
        var opt2 = new AdamW([p2], learningRate: 1e-3);
        ms.Position = 0;
        opt2.LoadState(ms);
        Assert.Equal(opt.Groups[0].LearningRateExact, opt2.Groups[0].LearningRateExact);
        Assert.Equal(1e-3, opt2.Groups[0].InitialLearningRateExact);
        Assert.Equal(1, opt2.StepCount);
    }

    [Fact]
    public void ZeroGradientsClearsInPlaceAndTheNextBackwardAccumulatesIntoTheSameBuffer()
    {
        var p = new Parameter(Tensor.FromArray([1f, 2f, 3f], 3));
        p.Value.Mul(2f).Sum().Backward();
        var buffer = p.Grad!.Data;
        Sharpformer.Training.TrainingOptimizer.ZeroGradients([p]);
        Assert.Same(buffer, p.Grad!.Data);                 // kept, not dropped: the next step reuses it
        Assert.Equal([0f, 0f, 0f], p.Grad.ToArray());
        p.Value.Mul(p.Value).Sum().Backward();             // d/dw Σw² = 2w
        Assert.Same(buffer, p.Grad!.Data);
        Assert.Equal([2f, 4f, 6f], p.Grad.ToArray());
        new Sgd([p], learningRate: 0.5f).Step();
        Assert.Equal([0f, 0f, 0f], p.Value.ToArray());
    }
}
