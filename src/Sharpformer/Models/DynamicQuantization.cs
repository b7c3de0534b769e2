using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Kernels;
using Sharpformer.Nn;

namespace Sharpformer.Models;

/// <summary>
/// int8 dynamic quantization of the encoder layers' linear layers (query/key/value/attention output/FFN; embeddings,
/// LayerNorms, pooler and heads stay fp32): weights symmetric per output channel, activations quantized per row at run
/// time, int32 accumulation (<see cref="Int8Gemm"/>). Softmax, LayerNorm, GELU and attention stay fp32. Inference only.
/// </summary>
/// <remarks>
/// Checkpoint layout (<c>sharpformer quantize</c>): in model.safetensors each quantized <c>P.weight</c> is stored as I8
/// [out, in] next to <c>P.weight_scale</c> F32 [out] (w ≈ weight_scale[n]·weight[n, k], the compressed-tensors naming),
/// and config.json gains <c>"quantization_config": {"quant_method": "sharpformer_int8_dynamic", "bits": 8,
/// "weights": "int8_symmetric_per_channel", "activations": "uint8_asymmetric_per_row_dynamic",
/// "modules": "encoder_linear"}</c>. Every other tensor stays as save_pretrained writes it.
/// </remarks>
public static class DynamicQuantization
{
    public const string ConfigKey = "quantization_config";
    public const string Method = "sharpformer_int8_dynamic";
    public const string ScaleSuffix = "_scale";

    /// <summary>Quantizes the encoder layers' linear layers of <paramref name="model"/> in place; their fp32 weights are
    /// dropped (<see cref="Linear.Int8Weight"/>), layer by layer, so the model ends up holding the int8 copy only and both
    /// the module path and the fast path multiply by it. The model stays in eval mode.</summary>
    public static void Quantize(PretrainedModel model)
    {
        foreach (var lin in EncoderLinears(model))
        {
            if (lin.Int8Weight != null) continue;
            if (lin.Bf16Weight != null) throw new InvalidOperationException("This model was converted to bf16; quantize the fp32 model instead.");
            var w = lin.Weight.Value.Contiguous();
            Attach(lin, Int8PackedWeights.Quantize(w.Data.AsSpan(w.Offset, w.Size), lin.OutFeatures, lin.InFeatures));
        }
        model.Eval();
    }

    /// <summary>True when the model's encoder linear layers run in int8.</summary>
    public static bool IsQuantized(PretrainedModel model) => EncoderLinears(model).Any(l => l.Int8Weight != null);

    /// <summary>The linear layers of the encoder layer stack, by their HF names (with the model's prefix).</summary>
    internal static IEnumerable<Linear> EncoderLinears(PretrainedModel model) =>
        model.BaseModel.Stack.NamedModules().Select(m => m.Module).OfType<Linear>();

    static void Attach(Linear lin, Int8PackedWeights packed)
    {
        lin.Int8Weight = packed;
        lin.Weight.Value.ReleaseStorage("the layer is int8-quantized and keeps only its int8 weights (Linear.Int8Weight; Dequantize() gives fp32 values).");
    }

    /// <summary>The quantization_config written to config.json.</summary>
    internal static JsonObject ConfigEntry() => new()
    {
        ["quant_method"] = Method, ["bits"] = 8, ["weights"] = "int8_symmetric_per_channel",
        ["activations"] = "uint8_asymmetric_per_row_dynamic", ["modules"] = "encoder_linear",
    };

    /// <summary>True when config.json says the checkpoint is quantized; throws for a quantization this library does not run.</summary>
    internal static bool IsQuantizedConfig(ModelConfig config)
    {
        if (!config.ExtraProperties.TryGetPropertyValue(ConfigKey, out var node) || node is null) return false;
        string? method = (node as JsonObject)?["quant_method"]?.GetValue<string>();
        if (method != Method)
            throw new ConfigException(config.SourcePath ?? "config.json", ConfigKey,
                $"quant_method \"{method}\" is not supported; only \"{Method}\" (written by sharpformer quantize) is.");
        return true;
    }

    /// <summary>What save_pretrained writes for one quantized weight: the values as I8 [out, in] plus their F32 scales.</summary>
    internal static IEnumerable<CheckpointTensor> CheckpointTensors(string name, Int8PackedWeights p) =>
    [
        CheckpointTensor.FromBytes(name, DType.I8, MemoryMarshal.AsBytes(p.Unpack().AsSpan()), p.Out, p.In),
        CheckpointTensor.FromFloat32(name + ScaleSuffix, p.Scales, p.Out),
    ];

    /// <summary>A view of a quantized checkpoint in which each I8 weight reads as its dequantized fp32 values and the scales are hidden.</summary>
    internal static IWeightSource Dequantizing(StateDict sd) => new DequantizingSource(sd);

    /// <summary>After loading through <see cref="Dequantizing"/>: gives every encoder linear layer whose stored weight is I8 its packed int8 copy.</summary>
    internal static void AttachFromCheckpoint(PretrainedModel model, StateDict sd)
    {
        string prefix = model.BaseModelPrefix + ".";
        foreach (var (name, m) in model.NamedModules())
        {
            if (m is not Linear lin || !EncoderLinears(model).Contains(lin)) continue;
            string key = name + ".weight";
            // A head model's names carry the base prefix; a bare encoder loaded from a head checkpoint's file lacks it, and the reverse.
            string? stored = new[] { key, prefix + key, key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key }
                .FirstOrDefault(sd.ContainsKey);
            if (stored == null || sd[stored].DType != DType.I8) continue;
            var q = sd[stored];
            var scales = Scales(sd, stored);
            var bytes = new byte[q.ByteLength];
            q.CopyBytesTo(bytes);
            Attach(lin, Int8PackedWeights.FromQuantized(MemoryMarshal.Cast<byte, sbyte>(bytes), scales, lin.OutFeatures, lin.InFeatures));
        }
    }

    static float[] Scales(StateDict sd, string weightKey)
    {
        string key = weightKey + ScaleSuffix;
        if (!sd.TryGetValue(key, out var s))
            throw new CheckpointFormatException(sd.Path, $"int8 tensor '{weightKey}' has no '{key}' (its per-channel scales)");
        var q = sd[weightKey];
        if (q.Shape.Count != 2 || s.Shape.Count != 1 || s.Shape[0] != q.Shape[0])
            throw new CheckpointFormatException(sd.Path, $"'{key}' has shape [{string.Join(", ", s.Shape)}], expected [{(q.Shape.Count > 0 ? q.Shape[0] : 0)}] for '{weightKey}' [{string.Join(", ", q.Shape)}]");
        return s.ToFloat32();
    }

    sealed class DequantizingSource(StateDict sd) : IWeightSource
    {
        public string Source => sd.Path;
        public IEnumerable<string> Keys => sd.Keys.Where(k => !(k.EndsWith(".weight" + ScaleSuffix, StringComparison.Ordinal) && sd.ContainsKey(k[..^ScaleSuffix.Length])));
        public IReadOnlyList<int>? ShapeOf(string key) => sd.TryGetValue(key, out var t) ? t.Shape : null;

        public void CopyTo(string key, Span<float> destination)
        {
            var t = sd[key];
            if (t.DType != DType.I8) { t.CopyTo(destination); return; }
            var scales = Scales(sd, key);
            var q = t.ToInt64();
            int cols = t.Shape[1];
            for (int i = 0; i < q.Length; i++) destination[i] = scales[i / cols] * q[i];
        }
    }
}
