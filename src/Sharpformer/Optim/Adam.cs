using System.Numerics;
using System.Runtime.InteropServices;
using Sharpformer.Nn;

namespace Sharpformer.Optim;

/// <summary>Where Adam adds ε.</summary>
public enum AdamFlavor
{
    /// <summary>torch.optim.Adam: p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).</summary>
    Torch,
    /// <summary>Keras / HF transformers.AdamW: p −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε) — ε outside the bias correction.</summary>
    Keras,
}

/// <summary>Adam (Kingma &amp; Ba) with optional L2 weight decay added to the gradient (torch's Adam weight_decay).</summary>
/// <remarks>m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; then the update of <see cref="AdamFlavor"/>. Keras' default ε is 1e-7, torch's 1e-8.</remarks>
public class Adam : Optimizer
{
    public Adam(IEnumerable<Parameter> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0f, AdamFlavor flavor = AdamFlavor.Torch)
        : this(OneGroup(parameters), learningRate, beta1, beta2, epsilon, weightDecay, flavor) { }

    public Adam(IEnumerable<ParamGroup> groups, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0f, AdamFlavor flavor = AdamFlavor.Torch)
        : base(groups, learningRate, weightDecay, 2)
    {
        Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; Flavor = flavor;
    }

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Epsilon { get; }
    public AdamFlavor Flavor { get; }

    private protected override void Update(ParamGroup group, Chunked p, Chunked g, long step, float[]?[] slots)
    {
        var m = Slot(slots, 0, p.Length); var v = Slot(slots, 1, p.Length);
        float wd = group.WeightDecay, lr = group.LearningRate;
        ForChunks(p.Length, (lo, n) =>
        {
            ReadOnlySpan<float> gs = g.Slice(lo, n);
            if (wd != 0f)
            {
                // torch Adam's L2 term: g ← g + wd·p
                var gd = new float[n];
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(p.Slice(lo, n), wd, gs, gd);
                gs = gd;
            }
            AdamCore(p.Slice(lo, n), gs, m.AsSpan(lo, n), v.AsSpan(lo, n), step, lr, Beta1, Beta2, Epsilon, Flavor);
        });
    }

    internal static void AdamCore(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, long step, float lr,
        float b1, float b2, float eps, AdamFlavor flavor)
    {
        double bc1 = 1 - Math.Pow(b1, step), bc2 = 1 - Math.Pow(b2, step);
        // Torch: p −= (lr/bc1)·m / (√v·(1/√bc2) + ε);  Keras: p −= (lr·√bc2/bc1)·m / (√v + ε)
        float stepSize = flavor == AdamFlavor.Torch ? (float)(lr / bc1) : (float)(lr * Math.Sqrt(bc2) / bc1);
        float vScale = flavor == AdamFlavor.Torch ? (float)(1 / Math.Sqrt(bc2)) : 1f;
        float c1 = 1 - b1, c2 = 1 - b2;
        int i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<float>.Count)
        {
            var vp = MemoryMarshal.Cast<float, Vector<float>>(p);
            var vg = MemoryMarshal.Cast<float, Vector<float>>(g);
            var vm = MemoryMarshal.Cast<float, Vector<float>>(m);
            var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
            for (int j = 0; j < vp.Length; j++)
            {
                var gj = vg[j];
                var mj = vm[j] * b1 + gj * c1;
                var vj = vv[j] * b2 + gj * gj * c2;
                vm[j] = mj; vv[j] = vj;
                vp[j] -= stepSize * mj / (Vector.SquareRoot(vj) * vScale + new Vector<float>(eps));
            }
            i = vp.Length * Vector<float>.Count;
        }
        for (; i < p.Length; i++)
        {
            float gi = g[i];
            m[i] = m[i] * b1 + gi * c1;
            v[i] = v[i] * b2 + gi * gi * c2;
            p[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) * vScale + eps);
        }
    }
}

/// <summary>Which AdamW.</summary>
public enum AdamWFlavor
{
    /// <summary>torch.optim.AdamW: p ← p·(1 − lr·wd), then the torch Adam update.</summary>
    Torch,
    /// <summary>transformers.AdamW (HF Trainer's "adamw_hf" in 4.30): Keras-style ε, then p ← p − lr·wd·p after the update.</summary>
    HuggingFace,
}

/// <summary>Adam with decoupled weight decay (Loshchilov &amp; Hutter), default as torch.optim.AdamW (lr 1e-3, ε 1e-8, wd 0.01).</summary>
public sealed class AdamW : Optimizer
{
    public AdamW(IEnumerable<Parameter> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0.01f, AdamWFlavor flavor = AdamWFlavor.Torch)
        : this(OneGroup(parameters), learningRate, beta1, beta2, epsilon, weightDecay, flavor) { }

    public AdamW(IEnumerable<ParamGroup> groups, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0.01f, AdamWFlavor flavor = AdamWFlavor.Torch)
        : base(groups, learningRate, weightDecay, 2)
    {
        Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; Flavor = flavor;
    }

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Epsilon { get; }
    public AdamWFlavor Flavor { get; }

    private protected override void Update(ParamGroup group, Chunked p, Chunked g, long step, float[]?[] slots)
    {
        float lr = group.LearningRate, wd = group.WeightDecay;
        var m = Slot(slots, 0, p.Length); var v = Slot(slots, 1, p.Length);
        ForChunks(p.Length, (lo, n) =>
        {
            var ps = p.Slice(lo, n);
            if (Flavor == AdamWFlavor.Torch)
            {
                if (wd != 0f) System.Numerics.Tensors.TensorPrimitives.Multiply(ps, 1f - lr * wd, ps);
                Adam.AdamCore(ps, g.Slice(lo, n), m.AsSpan(lo, n), v.AsSpan(lo, n), step, lr, Beta1, Beta2, Epsilon, AdamFlavor.Torch);
            }
            else
            {
                Adam.AdamCore(ps, g.Slice(lo, n), m.AsSpan(lo, n), v.AsSpan(lo, n), step, lr, Beta1, Beta2, Epsilon, AdamFlavor.Keras);
                if (wd != 0f) System.Numerics.Tensors.TensorPrimitives.Multiply(ps, 1f - lr * wd, ps);
            }
        });
    }
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
