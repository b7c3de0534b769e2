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
        QuantizeLayers(EncoderLinears(model));
        model.Eval();
    }

    /// <summary>
    /// Quantizes GPT-2's block projections (<c>c_attn</c>, <c>attn.c_proj</c>, <c>c_fc</c>, <c>mlp.c_proj</c>, their fp32 weights
    /// dropped) and gives the tied LM head its own int8 copy of <c>wte</c> (<see cref="Gpt2LMHeadModel.LmHead"/>); the embedding
    /// gather keeps the exact fp32 table, the key/value cache, LayerNorms, attention and GELU stay fp32. Eval mode.
    /// </summary>
    public static void Quantize(Gpt2LMHeadModel model)
    {
        QuantizeLayers(DecoderLinears(model));
        model.Eval();
    }

    /// <summary>The one quantizer: packs every layer's [out, in] weight to int8 (already quantized layers are skipped).</summary>
    internal static void QuantizeLayers(IEnumerable<IPackableLinear> layers)
    {
        foreach (var lin in layers)
        {
            if (lin.Int8Weight != null) continue;
            if (lin.Bf16Weight != null) throw new InvalidOperationException("This model was converted to bf16; quantize the fp32 model instead.");
            lin.UsePacked(Int8PackedWeights.Quantize(lin.WeightOutIn().Span, lin.OutFeatures, lin.InFeatures), null);
        }
    }

    /// <summary>True when the model's encoder linear layers run in int8.</summary>
    public static bool IsQuantized(PretrainedModel model) => EncoderLinears(model).Any(l => l.Int8Weight != null);

    /// <summary>True when the GPT-2 model's projections run in int8.</summary>
    public static bool IsQuantized(Gpt2LMHeadModel model) => DecoderLinears(model).Any(l => l.Int8Weight != null);

    /// <summary>The linear layers of the encoder layer stack, by their HF names (with the model's prefix).</summary>
    internal static IEnumerable<Linear> EncoderLinears(PretrainedModel model) =>
        model.BaseModel.Stack.NamedModules().Select(m => m.Module).OfType<Linear>();

    /// <summary>GPT-2's Conv1D projections of every block, then the tied LM head.</summary>
    internal static IEnumerable<IPackableLinear> DecoderLinears(Gpt2LMHeadModel model) =>
        model.Transformer.H.NamedModules().Select(m => m.Module).OfType<Conv1D>().Cast<IPackableLinear>().Append(model.LmHead);

    /// <summary>The quantization_config written to config.json.</summary>
    /// <param name="modules">Which layers: "encoder_linear" (BERT family) or "decoder_linear_and_lm_head" (GPT-2).</param>
    internal static JsonObject ConfigEntry(string modules = "encoder_linear") => new()
    {
        ["quant_method"] = Method, ["bits"] = 8, ["weights"] = "int8_symmetric_per_channel",
        ["activations"] = "uint8_asymmetric_per_row_dynamic", ["modules"] = modules,
    };

    /// <summary><paramref name="config"/> with the quantization_config entry for <paramref name="modules"/> added (what a quantized model saves).</summary>
    internal static ModelConfig WithConfigEntry(ModelConfig config, string modules = "encoder_linear")
    {
        var extra = (JsonObject)config.ExtraProperties.DeepClone();
        extra[ConfigKey] = ConfigEntry(modules);
        return config with { ExtraProperties = extra };
    }

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

    /// <summary>What save_pretrained writes for one quantized weight: the values as I8 [out, in] plus their F32 scales [out]; with
    /// <paramref name="inOutLayout"/> (GPT-2's Conv1D) the values as I8 [in, out] and the scales as [1, out], so each tensor keeps
    /// its fp32 shape and w = weight_scale · weight broadcasts as numpy/torch would.</summary>
    internal static IEnumerable<CheckpointTensor> CheckpointTensors(string name, Int8PackedWeights p, bool inOutLayout = false)
    {
        var q = p.Unpack();
        if (!inOutLayout)
            return [CheckpointTensor.FromBytes(name, DType.I8, MemoryMarshal.AsBytes(q.AsSpan()), p.Out, p.In),
                CheckpointTensor.FromFloat32(name + ScaleSuffix, p.Scales, p.Out)];
        var t = new sbyte[q.Length];
        for (int n = 0; n < p.Out; n++)
            for (int k = 0; k < p.In; k++) t[k * p.Out + n] = q[n * p.In + k];
        return [CheckpointTensor.FromBytes(name, DType.I8, MemoryMarshal.AsBytes(t.AsSpan()), p.In, p.Out),
            CheckpointTensor.FromFloat32(name + ScaleSuffix, p.Scales, 1, p.Out)];
    }

    /// <summary>A view of a quantized checkpoint in which each I8 weight reads as its dequantized fp32 values and the scales are hidden;
    /// a <see cref="VarBuilder"/> building int8 layers (<see cref="WeightLoadOptions.QuantizeInt8"/>) gets the stored int8 values themselves.</summary>
    internal static IWeightSource Dequantizing(StateDict sd) => new DequantizingSource(sd);

    /// <summary>After loading a GPT-2 checkpoint through <see cref="Dequantizing"/>: every Conv1D whose stored weight is I8 [in, out]
    /// gets its packed int8 copy, and the LM head its copy of <c>lm_head.weight</c> when stored as I8.</summary>
    internal static void AttachFromCheckpoint(Module model, Nn.TiedOutputProjection? lmHead, StateDict sd, string prefix)
    {
        foreach (var (name, m) in model.NamedModules())
            if (m is Conv1D conv)
            {
                string key = name + ".weight";
                Attach(conv, sd, key, prefix + "." + key, key.StartsWith(prefix + ".", StringComparison.Ordinal) ? key[(prefix.Length + 1)..] : key);
            }
        if (lmHead != null) Attach(lmHead, sd, "lm_head.weight");
    }

    static void Attach(IPackableLinear lin, StateDict sd, params string[] candidates)
    {
        string? stored = candidates.FirstOrDefault(sd.ContainsKey);
        if (stored == null || sd[stored].DType != DType.I8) return;
        var t = sd[stored];
        var scales = Scales(sd, stored);
        var bytes = new byte[t.ByteLength];
        t.CopyBytesTo(bytes);
        var q = MemoryMarshal.Cast<byte, sbyte>(bytes);
        CheckInt8Shape(sd, stored, lin.OutFeatures, lin.InFeatures);
        if (ScalesPerColumn(sd, stored))
        {
            // [in, out] (Conv1D) → [out, in], the packer's layout.
            var qt = new sbyte[q.Length];
            int rows = t.Shape[0], cols = t.Shape[1];
            for (int k = 0; k < rows; k++)
                for (int n = 0; n < cols; n++) qt[n * rows + k] = q[k * cols + n];
            q = qt;
        }
        lin.UsePacked(Int8PackedWeights.FromQuantized(q, scales, lin.OutFeatures, lin.InFeatures), null);
    }

    static void CheckInt8Shape(StateDict sd, string key, int outFeatures, int inFeatures)
    {
        var shape = sd[key].Shape;
        if (shape.Count != 2 || shape[0] * shape[1] != outFeatures * inFeatures)
            throw new CheckpointFormatException(sd.Path, $"int8 tensor '{key}' has shape [{string.Join(", ", shape)}]; the layer needs {outFeatures}×{inFeatures}");
    }

    // Scales [1, cols] belong to the columns of an [in, out] weight; scales [rows] to the rows of an [out, in] one.
    static bool ScalesPerColumn(StateDict sd, string weightKey) => sd[weightKey + ScaleSuffix].Shape.Count == 2;

    static float[] Scales(StateDict sd, string weightKey)
    {
        string key = weightKey + ScaleSuffix;
        if (!sd.TryGetValue(key, out var s))
            throw new CheckpointFormatException(sd.Path, $"int8 tensor '{weightKey}' has no '{key}' (its per-channel scales)");
        var q = sd[weightKey];
        bool perRow = q.Shape.Count == 2 && s.Shape.Count == 1 && s.Shape[0] == q.Shape[0];
        bool perColumn = q.Shape.Count == 2 && s.Shape.Count == 2 && s.Shape[0] == 1 && s.Shape[1] == q.Shape[1];
        if (!perRow && !perColumn)
            throw new CheckpointFormatException(sd.Path, $"'{key}' has shape [{string.Join(", ", s.Shape)}], expected [{(q.Shape.Count > 0 ? q.Shape[0] : 0)}] (an [out, in] weight) or [1, {(q.Shape.Count > 1 ? q.Shape[1] : 0)}] (an [in, out] one) for '{weightKey}' [{string.Join(", ", q.Shape)}]");
        return s.ToFloat32();
    }

    sealed class DequantizingSource(StateDict sd) : IWeightSource, IInt8WeightSource
    {
        /// <summary>An [out, in] I8 weight with per-row scales, packed from its stored bytes through a pooled buffer (no per-layer garbage).</summary>
        public Int8PackedWeights? TryInt8(string key, int outFeatures, int inFeatures)
        {
            if (!sd.TryGetValue(key, out var t) || t.DType != DType.I8) return null;
            CheckInt8Shape(sd, key, outFeatures, inFeatures);
            if (ScalesPerColumn(sd, key) || t.Shape[0] != outFeatures) return null;
            var scales = Scales(sd, key);
            int n = (int)t.ByteLength;
            var bytes = System.Buffers.ArrayPool<byte>.Shared.Rent(n);
            try
            {
                t.CopyBytesTo(bytes.AsSpan(0, n));
                return Int8PackedWeights.FromQuantized(MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan(0, n)), scales, outFeatures, inFeatures);
            }
            finally { System.Buffers.ArrayPool<byte>.Shared.Return(bytes); }
        }

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
            if (ScalesPerColumn(sd, key)) for (int i = 0; i < q.Length; i++) destination[i] = scales[i % cols] * q[i];
            else for (int i = 0; i < q.Length; i++) destination[i] = scales[i / cols] * q[i];
        }
    }
}
