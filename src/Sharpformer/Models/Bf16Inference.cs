using Sharpformer.Kernels;

namespace Sharpformer.Models;

/// <summary>
/// bf16 inference of the encoder layers' linear layers (the same layers <see cref="DynamicQuantization"/> quantizes):
/// weights rounded once to bfloat16, activations rounded per call, products summed in fp32 (<see cref="Bf16Gemm"/>, on
/// AVX512_BF16 the emitted vdpbf16ps kernel). Embeddings, LayerNorms, softmax, GELU, attention and heads stay fp32.
/// Inference only; nothing is written to disk — convert after loading.
/// </summary>
public static class Bf16Inference
{
    /// <summary>Converts the encoder's linear layers of <paramref name="model"/> in place; their fp32 weights become the
    /// bf16-rounded values, so the module path multiplies by the same weights as the fast path. The model stays in eval mode.</summary>
    /// <exception cref="InvalidOperationException">The model is int8-quantized.</exception>
    public static void Convert(PretrainedModel model)
    {
        foreach (var lin in DynamicQuantization.EncoderLinears(model))
        {
            if (lin.Bf16Weight != null) continue;
            if (lin.Int8Weight != null) throw new InvalidOperationException("This model is int8-quantized; convert the fp32 model to bf16 instead.");
            var w = lin.Weight.Value;
            var packed = Bf16PackedWeights.FromFloat(w.Contiguous().ToArray(), lin.OutFeatures, lin.InFeatures);
            packed.ToFloat().CopyTo(w.Data.AsSpan(w.Offset, w.Size));
            lin.Bf16Weight = packed;
        }
        model.Eval();
    }

    /// <summary>True when the model's encoder linear layers run in bf16.</summary>
    public static bool IsBf16(PretrainedModel model) => DynamicQuantization.EncoderLinears(model).Any(l => l.Bf16Weight != null);
}
