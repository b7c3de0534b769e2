using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>
/// GPT-2's <c>Conv1D</c> (transformers pytorch_utils.py): a linear layer whose weight is stored <b>[in, out]</b> and applied as
/// y = x·W + b — the transpose of <see cref="Linear"/>. Kept in its own layer so the checkpoint layout is loaded and saved as is
/// (no transposed copies in the model) and the GEMM reads W without transposing.
/// </summary>
public sealed class Conv1D : Module
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

    /// <summary>x [..., in] → x·W + b [..., out].</summary>
    public Tensor Forward(Tensor x)
    {
        var shape = x.ShapeArray;
        if (shape[^1] != InFeatures) throw ShapeMismatchException.For("Conv1D", x.Shape, Weight.Value.Shape, $"the last dimension must be in_features = {InFeatures}");
        var y = x.Reshape(-1, InFeatures).MatMul(Weight.Value).Add(Bias.Value);
        shape[^1] = OutFeatures;
        return Forwarded(y.Reshape(shape));
    }
}
