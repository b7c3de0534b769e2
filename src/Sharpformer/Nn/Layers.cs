using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// A linear map whose fp32 weight can be swapped for packed int8 or bf16 weights for inference — <see cref="Linear"/>, GPT-2's
/// <see cref="Conv1D"/> and the tied <see cref="TiedOutputProjection"/>. Models/DynamicQuantization.cs and Models/Bf16Inference.cs
/// pack every such layer through this one interface, whatever the layer's storage layout.
/// </summary>
internal interface IPackableLinear
{
    int InFeatures { get; }
    int OutFeatures { get; }
    Kernels.Int8PackedWeights? Int8Weight { get; }
    Kernels.Bf16PackedWeights? Bf16Weight { get; }
    /// <summary>A copy of the fp32 weight as [out, in], the packers' layout (a Conv1D transposes its [in, out]).</summary>
    /// <remarks>A view of the layer's own storage where it is already [out, in] (no copy: a copy per layer was ~125 MB of
    /// large-object garbage at bert-base's load, raising the quantized model's peak working set from 513 to 637 MiB).</remarks>
    ReadOnlyMemory<float> WeightOutIn();
    /// <summary>Makes the layer multiply by <paramref name="int8"/> or <paramref name="bf16"/>; a layer that owns its weight drops the fp32 values.</summary>
    void UsePacked(Kernels.Int8PackedWeights? int8, Kernels.Bf16PackedWeights? bf16);
}

/// <summary>The forward of a layer running on packed weights (shared by <see cref="Linear"/>, <see cref="Conv1D"/> and the tied head).</summary>
internal static class PackedLinearForward
{
    /// <summary>The tensor's values in row-major order: its own storage when contiguous, else a contiguous copy.</summary>
    internal static ReadOnlyMemory<float> View(Tensor t)
    {
        var c = t.Contiguous();
        return c.Data.AsMemory(c.Offset, c.Size);
    }

    /// <summary>x·Wᵀ + b through the packed weights, or null when the layer holds none (the caller runs fp32).</summary>
    /// <exception cref="NotSupportedException">In training mode: packed weights are for inference only.</exception>
    internal static Tensor? TryForward(IPackableLinear layer, Tensor x, Tensor? bias, bool training)
    {
        if (layer.Int8Weight == null && layer.Bf16Weight == null) return null;
        if (training)
            throw new NotSupportedException(layer.Int8Weight != null
                ? "This model is int8-quantized, which is for inference only; train the fp32 checkpoint and quantize it afterwards (sharpformer quantize)."
                : "This model's linear layers were converted to bf16 for inference; train the fp32 model and convert it afterwards.");
        return layer.Int8Weight is { } q ? Functional.QuantizedLinear(x, q, bias) : Functional.Bf16Linear(x, layer.Bf16Weight!, bias);
    }

    /// <summary>Sets the packed weights of a layer that owns <paramref name="weight"/> and releases its fp32 storage.</summary>
    internal static void Release(Parameter weight, Kernels.Int8PackedWeights? int8)
    {
        weight.Value.ReleaseStorage(int8 != null
            ? "the layer is int8-quantized and keeps only its int8 weights (Int8Weight; Dequantize() gives fp32 values)."
            : "the layer was converted to bf16 and keeps only its bf16 weights (Bf16Weight; ToFloat() gives fp32 values).");
    }
}

/// <summary>y = x·Wᵀ + b with W [out, in] as torch/HF ("weight", "bias").</summary>
public sealed class Linear : Module, IPackableLinear
{
    /// <summary>Weight [out, in] from <paramref name="vb"/> (filled by <paramref name="weightInit"/> when the builder lacks it), bias [out] zeros.</summary>
    public Linear(VarBuilder vb, int inFeatures, int outFeatures, WeightInit weightInit, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear({inFeatures}, {outFeatures}): sizes must be positive.");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        if (vb.BuildsInt8)
        {
            // Quantized as it is built (WeightLoadOptions.QuantizeInt8): the fp32 weight never lives in the model.
            var int8 = vb.GetInt8("weight", outFeatures, inFeatures, weightInit, out var placeholder);
            Weight = RegisterParameter("weight", placeholder);
            ((IPackableLinear)this).UsePacked(int8, null);
        }
        else Weight = RegisterParameter("weight", vb.Get("weight", [outFeatures, inFeatures], weightInit));
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

    ReadOnlyMemory<float> IPackableLinear.WeightOutIn() => PackedLinearForward.View(Weight.Value);

    void IPackableLinear.UsePacked(Kernels.Int8PackedWeights? int8, Kernels.Bf16PackedWeights? bf16)
    {
        Int8Weight = int8; Bf16Weight = bf16;
        PackedLinearForward.Release(Weight, int8);
    }

    /// <summary>x [..., in] → [..., out].</summary>
    /// <exception cref="NotSupportedException">In training mode when the layer is int8-quantized or bf16 (inference only).</exception>
    public Tensor Forward(Tensor x) =>
        Forwarded(PackedLinearForward.TryForward(this, x, Bias?.Value, Training) ?? Functional.Linear(x, Weight.Value, Bias?.Value));
}

/// <summary>
/// An output projection tied to an embedding table (GPT-2's <c>lm_head</c> = <c>wte</c>): logits = h·Eᵀ. Not a module — it owns
/// no parameter, so names and checkpoints are unchanged — but it can hold its own packed int8 / bf16 copy of the table for
/// inference while the embedding gather keeps reading the exact fp32 rows.
/// </summary>
public sealed class TiedOutputProjection : IPackableLinear
{
    public TiedOutputProjection(Embedding embedding) => Embedding = embedding;

    public Embedding Embedding { get; }
    public int InFeatures => Embedding.Dim;
    public int OutFeatures => Embedding.Num;
    /// <summary>The int8 copy of the table the projection multiplies by (the embedding keeps its fp32 values), or null.</summary>
    public Kernels.Int8PackedWeights? Int8Weight { get; private set; }
    /// <summary>The bf16 copy of the table the projection multiplies by, or null.</summary>
    public Kernels.Bf16PackedWeights? Bf16Weight { get; private set; }

    ReadOnlyMemory<float> IPackableLinear.WeightOutIn() => PackedLinearForward.View(Embedding.Weight.Value);

    void IPackableLinear.UsePacked(Kernels.Int8PackedWeights? int8, Kernels.Bf16PackedWeights? bf16) { Int8Weight = int8; Bf16Weight = bf16; }

    /// <summary>h [..., dim] → logits [..., num]; <paramref name="training"/> refuses packed weights.</summary>
    public Tensor Forward(Tensor h, bool training = false) =>
        PackedLinearForward.TryForward(this, h, null, training) ?? Functional.Linear(h, Embedding.Weight.Value);

    /// <summary>logits [rows, num] = h [rows, dim]·Eᵀ over flat buffers (the decode step's head: only the rows read).</summary>
    public void Logits(ReadOnlySpan<float> h, int rows, Span<float> logits, int threads)
    {
        if (Int8Weight is { } q) { logits.Slice(0, rows * OutFeatures).Clear(); Kernels.Int8Gemm.LinearAccumulate(h, rows, q, logits, threads); return; }
        if (Bf16Weight is { } b) { logits.Slice(0, rows * OutFeatures).Clear(); Kernels.Bf16Gemm.LinearAccumulate(h, rows, b, logits, threads); return; }
        var w = Embedding.Weight.Value;
        Kernels.Gemm.Sgemm(false, true, rows, OutFeatures, InFeatures, 1f, h, InFeatures, w.Data.AsSpan(w.Offset, w.Size), InFeatures, 0f, logits, OutFeatures, threads);
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
