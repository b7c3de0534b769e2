using System.Numerics;
using System.Runtime.InteropServices;
using Sharpformer.Nn;

namespace Sharpformer.Optim;

/// <summary>Where Adam adds ε.</summary>
public enum AdamFlavor
{
    /// <summary>torch.optim.Adam: p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).</summary>
    Torch,
    /// <summary>Keras (≥ 2.11) Adam: m += (g − m)(1−β₁), v += (g² − v)(1−β₂), p −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε) — ε outside the bias correction.</summary>
    Keras,
}

/// <summary>Which AdamW.</summary>
public enum AdamWFlavor
{
    /// <summary>torch.optim.AdamW: p ← p·(1 − lr·wd), then the torch Adam update.</summary>
    Torch,
    /// <summary>transformers.AdamW (HF Trainer's "adamw_hf" in 4.30): torch moments, ε outside the bias correction, then p ← p − lr·wd·p after the update.</summary>
    HuggingFace,
}

/// <summary>
/// The step shared by <see cref="Adam"/> and <see cref="AdamW"/>: moments m, v with bias correction, and weight decay either
/// added to the gradient (L2, torch's Adam) or decoupled, p ← p·(1 − lr·λ) before (torch's AdamW) or after (HF's AdamW) the update.
/// </summary>
public abstract class AdamBase : Optimizer
{
    /// <summary>Where weight decay enters the step.</summary>
    private protected enum AdamDecay { L2, DecoupledBefore, DecoupledAfter }

    readonly AdamMoments _moments; readonly bool _torchDenominator; readonly AdamDecay _decay;

    private protected AdamBase(IEnumerable<ParamGroup> groups, double learningRate, double beta1, double beta2, double epsilon, float weightDecay,
        AdamMoments moments, bool torchDenominator, AdamDecay decay)
        : base(groups, learningRate, weightDecay, 2)
    {
        Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon;
        _moments = moments; _torchDenominator = torchDenominator; _decay = decay;
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }

    private protected override void Update(ParamGroup group, Chunked p, Chunked g, long step, float[]?[] slots)
    {
        double lr = group.LearningRateExact;
        float wd = group.WeightDecay, keep = (float)(1 - lr * wd);
        var m = Slot(slots, 0, p.Length); var v = Slot(slots, 1, p.Length);
        var k = new AdamScalars(_moments, _torchDenominator, lr, Beta1, Beta2, Epsilon, step);
        var decay = wd == 0f ? (AdamDecay?)null : _decay;
        ForChunks(p.Length, (lo, n) =>
        {
            var ps = p.Slice(lo, n);
            ReadOnlySpan<float> gs = g.Slice(lo, n);
            if (decay == AdamDecay.L2)
            {
                // torch Adam's L2 term: g ← g + wd·p
                var gd = new float[n];
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ps, wd, gs, gd);
                gs = gd;
            }
            if (decay == AdamDecay.DecoupledBefore) System.Numerics.Tensors.TensorPrimitives.Multiply(ps, keep, ps);
            AdamCore(ps, gs, m.AsSpan(lo, n), v.AsSpan(lo, n), k);
            if (decay == AdamDecay.DecoupledAfter) System.Numerics.Tensors.TensorPrimitives.Multiply(ps, keep, ps);
        });
    }

    /// <summary>How the moments are updated: torch's m·β₁ + (1−β₁)·g or Keras' m + (g − m)·(1−β₁).</summary>
    internal enum AdamMoments { Torch, Keras }

    /// <summary>The float scalars of one Adam update, each formed in double and rounded once.</summary>
    readonly struct AdamScalars
    {
        public readonly AdamMoments Moments;
        /// <summary>True: denominator √v/√(1−β₂ᵗ) + ε and update p + (−s)·(m/denom) (torch); false: √v + ε and p − (s·m)/denom.</summary>
        public readonly bool TorchDenominator;
        public readonly float B1, B2, OneMinusB1, OneMinusB2, Eps, StepSize, Bc2Sqrt;

        public AdamScalars(AdamMoments moments, bool torchDenominator, double lr, double beta1, double beta2, double eps, long step)
        {
            Moments = moments; TorchDenominator = torchDenominator;
            double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
            B1 = (float)beta1; B2 = (float)beta2; OneMinusB1 = (float)(1 - beta1); OneMinusB2 = (float)(1 - beta2); Eps = (float)eps;
            StepSize = torchDenominator ? (float)(lr / bc1) : (float)(lr * Math.Sqrt(bc2) / bc1);
            Bc2Sqrt = (float)Math.Sqrt(bc2);
        }
    }

    static void AdamCore(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamScalars k)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<float>.Count)
        {
            var vp = MemoryMarshal.Cast<float, Vector<float>>(p);
            var vg = MemoryMarshal.Cast<float, Vector<float>>(g);
            var vm = MemoryMarshal.Cast<float, Vector<float>>(m);
            var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
            var b1 = new Vector<float>(k.B1); var b2 = new Vector<float>(k.B2);
            var c1 = new Vector<float>(k.OneMinusB1); var c2 = new Vector<float>(k.OneMinusB2);
            var eps = new Vector<float>(k.Eps); var bc2Sqrt = new Vector<float>(k.Bc2Sqrt);
            var negStep = new Vector<float>(-k.StepSize); var stepSize = new Vector<float>(k.StepSize);
            bool torchMoments = k.Moments == AdamMoments.Torch;
            for (int j = 0; j < vp.Length; j++)
            {
                var gj = vg[j];
                Vector<float> mj, vj;
                if (torchMoments) { mj = vm[j] * b1 + c1 * gj; vj = vv[j] * b2 + c2 * gj * gj; }
                else { mj = vm[j] + (gj - vm[j]) * c1; vj = vv[j] + (gj * gj - vv[j]) * c2; }
                vm[j] = mj; vv[j] = vj;
                if (k.TorchDenominator) vp[j] += negStep * (mj / (Vector.SquareRoot(vj) / bc2Sqrt + eps));
                else vp[j] -= stepSize * mj / (Vector.SquareRoot(vj) + eps);
            }
            i = vp.Length * Vector<float>.Count;
        }
        for (; i < p.Length; i++)
        {
            float gi = g[i], mi, vi;
            if (k.Moments == AdamMoments.Torch) { mi = m[i] * k.B1 + k.OneMinusB1 * gi; vi = v[i] * k.B2 + k.OneMinusB2 * gi * gi; }
            else { mi = m[i] + (gi - m[i]) * k.OneMinusB1; vi = v[i] + (gi * gi - v[i]) * k.OneMinusB2; }
            m[i] = mi; v[i] = vi;
            if (k.TorchDenominator) p[i] += -k.StepSize * (mi / (MathF.Sqrt(vi) / k.Bc2Sqrt + k.Eps));
            else p[i] -= k.StepSize * mi / (MathF.Sqrt(vi) + k.Eps);
        }
    }
}

/// <summary>Adam (Kingma &amp; Ba) with optional L2 weight decay added to the gradient (torch's Adam weight_decay).</summary>
/// <remarks>
/// Torch flavour (torch.optim.Adam, single-tensor path): m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)·g·g;
/// p ← p − (lr/(1−β₁ᵗ))·(m / (√v/√(1−β₂ᵗ) + ε)).
/// Keras flavour (Keras ≥ 2.11 Adam): m ← m + (g − m)(1−β₁); v ← v + (g² − v)(1−β₂); p ← p − (α·m)/(√v + ε) with
/// α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ). Scalars are formed in double from the double hyper-parameters and rounded once to float;
/// the element-wise arithmetic is float32 in the reference's operation order, so results match it bit for bit on CPU.
/// Keras' default ε is 1e-7, torch's 1e-8.
/// </remarks>
public class Adam : AdamBase
{
    public Adam(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, float weightDecay = 0f, AdamFlavor flavor = AdamFlavor.Torch)
        : this(OneGroup(parameters), learningRate, beta1, beta2, epsilon, weightDecay, flavor) { }

    public Adam(IEnumerable<ParamGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, float weightDecay = 0f, AdamFlavor flavor = AdamFlavor.Torch)
        : base(groups, learningRate, beta1, beta2, epsilon, weightDecay,
            flavor == AdamFlavor.Torch ? AdamMoments.Torch : AdamMoments.Keras, torchDenominator: flavor == AdamFlavor.Torch, AdamDecay.L2)
        => Flavor = flavor;

    public AdamFlavor Flavor { get; }
}

/// <summary>Adam with decoupled weight decay (Loshchilov &amp; Hutter), default as torch.optim.AdamW (lr 1e-3, ε 1e-8, wd 0.01).</summary>
/// <remarks>
/// Torch flavour (torch 1.13 single-tensor AdamW): p ← p·(1 − lr·λ); then the torch Adam update of <see cref="Adam"/>.
/// HuggingFace flavour: m, v as torch; p ← p − (lr·√(1−β₂ᵗ)/(1−β₁ᵗ))·(m/(√v + ε)); then p ← p·(1 − lr·λ).
/// The decay factor 1 − lr·λ is formed in double and rounded once, as torch's Python-float scalar.
/// </remarks>
public sealed class AdamW : AdamBase
{
    public AdamW(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, float weightDecay = 0.01f, AdamWFlavor flavor = AdamWFlavor.Torch)
        : this(OneGroup(parameters), learningRate, beta1, beta2, epsilon, weightDecay, flavor) { }

    public AdamW(IEnumerable<ParamGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, float weightDecay = 0.01f, AdamWFlavor flavor = AdamWFlavor.Torch)
        : base(groups, learningRate, beta1, beta2, epsilon, weightDecay, AdamMoments.Torch, torchDenominator: flavor == AdamWFlavor.Torch,
            flavor == AdamWFlavor.Torch ? AdamDecay.DecoupledBefore : AdamDecay.DecoupledAfter)
        => Flavor = flavor;

    public AdamWFlavor Flavor { get; }
}

/// <summary>Stochastic gradient descent with momentum, as torch.optim.SGD.</summary>
/// <remarks>g ← g + wd·p; b ← μb + (1−dampening)g (b = g at the first step); g ← nesterov ? g + μb : b; p ← p − lr·g.</remarks>
public sealed class Sgd : Optimizer
{
    public Sgd(IEnumerable<Parameter> parameters, float learningRate, float momentum = 0f, float dampening = 0f, float weightDecay = 0f, bool nesterov = false)
        : this(OneGroup(parameters), learningRate, momentum, dampening, weightDecay, nesterov) { }

    public Sgd(IEnumerable<ParamGroup> groups, float learningRate, float momentum = 0f, float dampening = 0f, float weightDecay = 0f, bool nesterov = false)
        : base(groups, learningRate, weightDecay, 1)
    {
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("Nesterov momentum requires momentum > 0 and dampening = 0.");
        Momentum = momentum; Dampening = dampening; Nesterov = nesterov;
    }

    public float Momentum { get; }
    public float Dampening { get; }
    public bool Nesterov { get; }

    private protected override void Update(ParamGroup group, Chunked p, Chunked g, long step, float[]?[] slots)
    {
        float lr = group.LearningRate, wd = group.WeightDecay, mu = Momentum;
        bool first = slots[0] == null;
        var buf = mu != 0f ? Slot(slots, 0, p.Length) : null;
        ForChunks(p.Length, (lo, n) =>
        {
            var ps = p.Slice(lo, n); var gs = g.Slice(lo, n);
            for (int i = 0; i < n; i++)
            {
                float gi = gs[i] + wd * ps[i];
                if (buf != null)
                {
                    ref float b = ref buf[lo + i];
                    b = first ? gi : mu * b + (1 - Dampening) * gi;
                    gi = Nesterov ? gi + mu * b : b;
                }
                ps[i] -= lr * gi;
            }
        });
    }
}
