using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>y = x·Wᵀ + b with W [out, in] as torch/HF ("weight", "bias").</summary>
public sealed class Linear : Module
{
    /// <summary>Weight [out, in] from <paramref name="vb"/> (filled by <paramref name="weightInit"/> when the builder lacks it), bias [out] zeros.</summary>
    public Linear(VarBuilder vb, int inFeatures, int outFeatures, WeightInit weightInit, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear({inFeatures}, {outFeatures}): sizes must be positive.");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", vb.Get("weight", [outFeatures, inFeatures], weightInit));
        if (bias) Bias = RegisterParameter("bias", vb.Get("bias", [outFeatures], WeightInit.Zeros));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <summary>
    /// The int8 weights of a dynamically quantized layer (Models/DynamicQuantization.cs sets them), which both the fast
    /// path and <see cref="Forward"/> multiply by; <see cref="Weight"/> then keeps its shape and name but no fp32 values
    /// (reading them throws), so the model holds one copy of the weights. Null for an fp32 layer.
    /// </summary>
    public Kernels.Int8PackedWeights? Int8Weight { get; internal set; }

    /// <summary>
    /// The bf16 weights of a layer converted for bf16 inference (Models/Bf16Inference.cs sets them); as with
    /// <see cref="Int8Weight"/>, both paths multiply by them and <see cref="Weight"/> keeps no fp32 values. Null for an fp32 layer.
    /// </summary>
    public Kernels.Bf16PackedWeights? Bf16Weight { get; internal set; }

    /// <summary>x [..., in] → [..., out].</summary>
    /// <exception cref="NotSupportedException">In training mode when the layer is int8-quantized (inference only).</exception>
    public Tensor Forward(Tensor x)
    {
        if (Int8Weight != null && Training)
            throw new NotSupportedException("This model is int8-quantized, which is for inference only; train the fp32 checkpoint and quantize it afterwards (sharpformer quantize).");
        if (Bf16Weight != null && Training)
            throw new NotSupportedException("This model's linear layers were converted to bf16 for inference; train the fp32 model and convert it afterwards.");
        var y = Int8Weight is { } q ? Functional.QuantizedLinear(x, q, Bias?.Value)
            : Bf16Weight is { } b ? Functional.Bf16Linear(x, b, Bias?.Value)
            : Functional.Linear(x, Weight.Value, Bias?.Value);
        return Forwarded(y);
    }
}

/// <summary>A lookup table [num, dim] ("weight"); row <see cref="PaddingIdx"/> gets no gradient.</summary>
public sealed class Embedding : Module
{
    /// <summary>Weight [num, dim] from <paramref name="vb"/>; a fresh table gets <paramref name="init"/> with the padding row zeroed (HF's _init_weights).</summary>
    public Embedding(VarBuilder vb, int num, int dim, WeightInit init, int? paddingIdx = null)
    {
        if (num <= 0 || dim <= 0) throw new ArgumentOutOfRangeException(nameof(num), $"Embedding({num}, {dim}): sizes must be positive.");
        if (paddingIdx is { } p && (p < 0 || p >= num)) throw new ArgumentOutOfRangeException(nameof(paddingIdx), p, $"padding index must be in [0, {num}).");
        Num = num; Dim = dim; PaddingIdx = paddingIdx;
        Weight = RegisterParameter("weight", vb.Get("weight", [num, dim], paddingIdx is int pad ? init.ZeroRow(pad, dim) : init));
    }

    public int Num { get; }
    public int Dim { get; }
    public int? PaddingIdx { get; }
    public Parameter Weight { get; }

    /// <summary>ids with shape <paramref name="idsShape"/> → [..idsShape, dim].</summary>
    public Tensor Forward(int[] ids, params int[] idsShape)
    {
        var y = Functional.Embedding(Weight.Value, ids, idsShape, PaddingIdx);
        return Forwarded(y);
    }
}

/// <summary>Layer normalisation over the last dimension ("weight" = γ, "bias" = β).</summary>
public sealed class LayerNorm : Module
{
    /// <summary>γ (ones) and β (zeros) from <paramref name="vb"/>.</summary>
    public LayerNorm(VarBuilder vb, int dim, float eps)
    {
        Eps = eps;
        Weight = RegisterParameter("weight", vb.Get("weight", [dim], WeightInit.Ones));
        Bias = RegisterParameter("bias", vb.Get("bias", [dim], WeightInit.Zeros));
    }

    public float Eps { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public Tensor Forward(Tensor x)
    {
        var y = Functional.LayerNorm(x, Weight.Value, Bias.Value, Eps);
        return Forwarded(y);
    }
}

/// <summary>Inverted dropout, active only in training mode; draws from <see cref="Rng"/> (reseed with Module.UseRandom).</summary>
public sealed class Dropout : Module, IStochastic
{
    public Dropout(float p, Random? rng = null)
    {
        if (p < 0f || p >= 1f) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        P = p; Rng = rng ?? new Random(0);
    }

    public float P { get; }
    public Random Rng { get; set; }

    public Tensor Forward(Tensor x) => Forwarded(Functional.Dropout(x, P, Training, Rng));

    /// <summary><paramref name="residual"/> + Dropout(<paramref name="x"/>) in one pass (<see cref="Functional.DropoutAdd"/>).</summary>
    public Tensor ForwardAdd(Tensor residual, Tensor x) => Forwarded(Functional.DropoutAdd(residual, x, P, Training, Rng));
}
