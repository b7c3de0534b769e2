using Sharpformer.Kernels;

namespace Sharpformer.Models;

/// <summary>
/// bf16 inference of the encoder layers' linear layers (the same layers <see cref="DynamicQuantization"/> quantizes):
/// weights rounded once to bfloat16, activations rounded per call, products summed in fp32 (<see cref="Bf16Gemm"/>, on
/// AVX512_BF16 the emitted vdpbf16ps kernel). Embeddings, LayerNorms, softmax, GELU, attention and heads stay fp32.
/// Inference only and in memory: convert after loading (save_pretrained of a converted model writes the bf16 values as F32).
/// </summary>
public static class Bf16Inference
{
    /// <summary>Converts the encoder's linear layers of <paramref name="model"/> in place, layer by layer; their fp32 weights are
    /// dropped (<see cref="Nn.Linear.Bf16Weight"/>), so the model holds the bf16 copy only and both the module path and the
    /// fast path multiply by it. The model stays in eval mode.</summary>
    /// <exception cref="InvalidOperationException">The model is int8-quantized.</exception>
    public static void Convert(PretrainedModel model)
    {
        ConvertLayers(DynamicQuantization.EncoderLinears(model));
        model.Eval();
    }

    /// <summary>GPT-2 in bf16: the same layers <see cref="DynamicQuantization.Quantize(Gpt2LMHeadModel)"/> quantizes (block projections,
    /// and a bf16 copy of <c>wte</c> for the tied LM head; the embedding gather stays fp32). Eval mode.</summary>
    /// <exception cref="InvalidOperationException">The model is int8-quantized.</exception>
    public static void Convert(Gpt2LMHeadModel model)
    {
        ConvertLayers(DynamicQuantization.DecoderLinears(model));
        model.Eval();
    }

    static void ConvertLayers(IEnumerable<Nn.IPackableLinear> layers)
    {
        foreach (var lin in layers)
        {
            if (lin.Bf16Weight != null) continue;
            if (lin.Int8Weight != null) throw new InvalidOperationException("This model is int8-quantized; convert the fp32 model to bf16 instead.");
            lin.UsePacked(null, Bf16PackedWeights.FromFloat(lin.WeightOutIn().Span, lin.OutFeatures, lin.InFeatures));
        }
    }

    /// <summary>True when the model's encoder linear layers run in bf16.</summary>
    public static bool IsBf16(PretrainedModel model) => DynamicQuantization.EncoderLinears(model).Any(l => l.Bf16Weight != null);

    /// <summary>True when the GPT-2 model's projections run in bf16.</summary>
    public static bool IsBf16(Gpt2LMHeadModel model) => DynamicQuantization.DecoderLinears(model).Any(l => l.Bf16Weight != null);
}
