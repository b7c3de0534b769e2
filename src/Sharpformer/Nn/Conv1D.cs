using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// GPT-2's <c>Conv1D</c> (transformers pytorch_utils.py): a linear layer whose weight is stored <b>[in, out]</b> and applied as
/// y = x·W + b — the transpose of <see cref="Linear"/>. Kept in its own layer so the checkpoint layout is loaded and saved as is
/// (no transposed copies in the model) and the GEMM reads W without transposing.
/// </summary>
public sealed class Conv1D : Module, IPackableLinear
{
    /// <summary>Weight [in, out] from <paramref name="vb"/> (filled by <paramref name="weightInit"/> when the builder lacks it), bias [out] zeros.</summary>
    public Conv1D(VarBuilder vb, int inFeatures, int outFeatures, WeightInit weightInit)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Conv1D({inFeatures}, {outFeatures}): sizes must be positive.");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", vb.Get("weight", [inFeatures, outFeatures], weightInit));
        Bias = RegisterParameter("bias", vb.Get("bias", [outFeatures], WeightInit.Zeros));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    /// <summary>[in, out].</summary>
    public Parameter Weight { get; }
    /// <summary>[out].</summary>
    public Parameter Bias { get; }

    /// <summary>The int8 weights of a quantized layer (packed from Wᵀ [out, in]; Models/DynamicQuantization.cs sets them), which
    /// <see cref="Forward"/> multiplies by; <see cref="Weight"/> then keeps its shape and name but no fp32 values. Null for fp32.</summary>
    public Kernels.Int8PackedWeights? Int8Weight { get; private set; }

    /// <summary>The bf16 weights of a layer converted for bf16 inference (Models/Bf16Inference.cs), as <see cref="Int8Weight"/>. Null for fp32.</summary>
    public Kernels.Bf16PackedWeights? Bf16Weight { get; private set; }

    ReadOnlyMemory<float> IPackableLinear.WeightOutIn() => PackedLinearForward.View(Weight.Value.Transpose(0, 1));

    void IPackableLinear.UsePacked(Kernels.Int8PackedWeights? int8, Kernels.Bf16PackedWeights? bf16)
    {
        Int8Weight = int8; Bf16Weight = bf16;
        PackedLinearForward.Release(Weight, int8);
    }

    /// <summary>x [..., in] → x·W + b [..., out].</summary>
    /// <exception cref="NotSupportedException">In training mode when the layer runs on int8 or bf16 weights (inference only).</exception>
    public Tensor Forward(Tensor x)
    {
        if (PackedLinearForward.TryForward(this, x, Bias.Value, Training) is { } packed) return Forwarded(packed);
        var shape = x.ShapeArray;
        if (shape[^1] != InFeatures) throw ShapeMismatchException.For("Conv1D", x.Shape, Weight.Value.Shape, $"the last dimension must be in_features = {InFeatures}");
        // Mixed precision (ExecutionOptions.Bf16) multiplies in Functional.Linear, which takes [out, in]: the transposed copy of
        // W it makes costs one pass over the weight against three bf16 GEMMs over the batch. fp32 keeps x·W + b as it was.
        var y = ExecutionScope.Bf16
            ? Functional.Linear(x.Reshape(-1, InFeatures), Weight.Value.Transpose(0, 1), Bias.Value)
            : x.Reshape(-1, InFeatures).MatMul(Weight.Value).Add(Bias.Value);
        shape[^1] = OutFeatures;
        return Forwarded(y.Reshape(shape));
    }
}
