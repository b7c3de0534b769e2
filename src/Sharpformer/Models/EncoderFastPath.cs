using System.Numerics.Tensors;
using Sharpformer.Kernels;

namespace Sharpformer.Models;

/// <summary>A dense layer's weights as live views into its parameters: Weight is [Out, In] (torch layout), Bias [Out] or empty.</summary>
/// <remarks>Int8 (Bf16), when set, is the int8 (bf16) copy the fast path multiplies by instead (a dynamically quantized or
/// bf16-converted model; Weight then holds the same values in fp32).</remarks>
internal readonly record struct DenseWeights(ReadOnlyMemory<float> Weight, ReadOnlyMemory<float> Bias, int Out, int In, Int8PackedWeights? Int8 = null,
    Bf16PackedWeights? Bf16 = null);

/// <summary>A LayerNorm's affine weights and epsilon.</summary>
internal readonly record struct NormWeights(ReadOnlyMemory<float> Weight, ReadOnlyMemory<float> Bias, float Eps);

/// <summary>One post-norm encoder layer (BERT's BertLayer and DistilBERT's TransformerBlock have the same dataflow).</summary>
internal sealed record EncoderLayerWeights(
    DenseWeights Query, DenseWeights Key, DenseWeights Value, DenseWeights AttentionOutput, NormWeights AttentionNorm,
    DenseWeights Intermediate, DenseWeights Output, NormWeights OutputNorm);

/// <summary>The activation between the two feed-forward layers, as HF's ACT2FN names it.</summary>
public enum HiddenActivation
{
    /// <summary>"gelu": exact x·Φ(x) with erf.</summary>
    Gelu,
    /// <summary>"gelu_new" / "gelu_pytorch_tanh": tanh approximation.</summary>
    GeluTanh,
    /// <summary>"relu".</summary>
    Relu,
}

/// <summary>
/// Reusable activation buffers for the inference fast path, sized for one chunk of sequences (not the whole batch).
/// One instance serves one forward at a time; buffers grow to the largest chunk seen and are then reused, so a long
/// inference run does not pile large arrays up for the GC.
/// </summary>
internal sealed class EncoderWorkspace
{
    /// <summary>Tokens per chunk: large enough for full-speed GEMMs, small enough that every activation buffer stays a few MiB.</summary>
    public const int ChunkTokens = 512;

    public float[] Temp = [];
    public float[] Context = [];
    public float[] Work = [];
    public float[] Mask = [];

    public void Ensure(int chunkTokens, int hidden, int intermediate, int heads, int seq, int batchTokens)
    {
        Grow(ref Temp, (long)chunkTokens * hidden);
        Grow(ref Context, (long)chunkTokens * hidden);
        Grow(ref Work, Math.Max(3L * chunkTokens * hidden, (long)chunkTokens * intermediate));
        Grow(ref Mask, batchTokens);
    }

    /// <summary>Whole sequences per chunk (attention needs every row of a sequence at once).</summary>
    public static int ChunkSequences(int batch, int seq) => Math.Clamp(ChunkTokens / seq, 1, batch);

    static void Grow(ref float[] a, long n)
    {
        if (n > Array.MaxLength) throw new NotSupportedException($"An activation buffer of {n} floats exceeds .NET's array limit; use a smaller batch or sequence length.");
        if (a.Length < n) { a = []; a = new float[n]; }
    }
}

/// <summary>Writes the embeddings output of token rows [row0, row0 + rows) into output [rows, H], using temp as scratch.</summary>
internal delegate void EmbedRows(int row0, int rows, Span<float> temp, Span<float> output, int threads);

/// <summary>The shape of an encoder for the fast path.</summary>
internal readonly record struct EncoderShape(int Hidden, int Intermediate, int Heads, HiddenActivation Activation, AttentionScaling Scaling);

/// <summary>
/// Inference-only forward of a post-norm transformer encoder over flat buffers, calling the kernels directly.
/// Numerically the same model as the module path (same operation order: bias-prefilled GEMM like torch's addmm,
/// residual added before LayerNorm, the attention mask as float32-min so padded keys get probability exactly 0).
/// </summary>
internal static class EncoderFastPath
{
    /// <summary>y[rows, Out] = x[rows, In] · Wᵀ + b, the bias copied into y first and the GEMM accumulating onto it (torch addmm).</summary>
    /// <remarks>For an int8 layer, <paramref name="xq"/> is x already quantized (<see cref="QuantizeFor"/>; null: quantized here) and
    /// <paramref name="epilogue"/> what the GEMM applies to its output (the caller then skips that step).</remarks>
    public static void Dense(ReadOnlySpan<float> x, int rows, in DenseWeights w, Span<float> y, int threads, Int8Activations? xq = null,
        Int8Epilogue epilogue = Int8Epilogue.None)
    {
        var bias = w.Bias.Span;
        var outSpan = y.Slice(0, rows * w.Out);
        // int8 writes bias + product in its epilogue: no pre-fill pass over y (see Int8Gemm.Linear).
        if (w.Int8 is { } int8)
        {
            if (xq != null) Int8Gemm.Linear(xq, int8, bias, outSpan, epilogue, threads);
            else
            {
                using var own = Int8Activations.Quantize(x, rows, int8.In, threads);
                Int8Gemm.Linear(own, int8, bias, outSpan, epilogue, threads);
            }
            return;
        }
        if (epilogue != Int8Epilogue.None) throw new ArgumentException($"Epilogue {epilogue} is for int8 layers only.", nameof(epilogue));
        float beta = 0f;
        if (!bias.IsEmpty)
        {
            for (int r = 0; r < rows; r++) bias.CopyTo(outSpan.Slice(r * w.Out, w.Out));
            beta = 1f;
        }
        if (w.Int8 is not null || w.Bf16 is not null)
        {
            if (beta == 0f) outSpan.Clear();
            LowPrecisionAccumulate(x, rows, w, outSpan, threads);
            return;
        }
        Gemm.Sgemm(false, true, rows, w.Out, w.In, 1f, x.Slice(0, rows * w.In), w.In, w.Weight.Span, w.In, beta, outSpan, w.Out, threads);
    }

    /// <summary>x [rows, w.In] quantized once for the int8 layer(s) that read it, or null when <paramref name="w"/> is not int8.</summary>
    public static Int8Activations? QuantizeFor(in DenseWeights w, ReadOnlySpan<float> x, int rows, int threads) =>
        w.Int8 is null ? null : Int8Activations.Quantize(x, rows, w.In, threads);

    public static void Activate(HiddenActivation act, Span<float> x, int threads)
    {
        switch (act)
        {
            case HiddenActivation.Gelu: Activations.GeluErf(x, x, threads); break;
            case HiddenActivation.GeluTanh: Activations.GeluTanh(x, x, threads); break;
            case HiddenActivation.Relu: Activations.Relu(x, x); break;
            default: throw new NotSupportedException($"Activation {act} is not supported.");
        }
    }

    /// <summary>
    /// Additive attention mask [batch, seq]: 0 where attention_mask is 1, float32 min where it is 0 — HF's
    /// <c>(1 − mask)·finfo(float32).min</c>. Adding float32 min to any score of ordinary size rounds to float32 min,
    /// which is also what DistilBERT's <c>masked_fill(mask == 0, finfo.min)</c> gives, so one mask serves both.
    /// </summary>
    public static void BuildMask(ReadOnlySpan<int> attentionMask, Span<float> mask, int count)
    {
        if (attentionMask.IsEmpty) { mask.Slice(0, count).Clear(); return; }
        for (int i = 0; i < count; i++) mask[i] = (1 - attentionMask[i]) * float.MinValue;
    }

    /// <summary>
    /// The whole encoder over a batch: chunks of whole sequences go through every layer in turn, so the activation
    /// buffers are chunk-sized whatever the batch, and the hidden state lives in the returned array itself.
    /// </summary>
    /// <returns>The last hidden state [batch·seq, H]; hidden states (layers+1 arrays) and attention probabilities
    /// (one [batch, heads, seq, seq] array per layer) when <paramref name="options"/> asks for them.</returns>
    public static (float[] Last, float[][]? States, float[][]? Attentions) Run(EncoderInput input, ForwardOptions options,
        EncoderShape shape, IReadOnlyList<EncoderLayerWeights> layers, EmbedRows embed, EncoderWorkspace ws, int threads)
    {
        int batch = input.BatchSize, seq = input.SequenceLength, tokens = input.TokenCount, h = shape.Hidden, heads = shape.Heads;
        int chunkSeqs = EncoderWorkspace.ChunkSequences(batch, seq);
        ws.Ensure(chunkSeqs * seq, h, shape.Intermediate, heads, seq, tokens);
        var mask = ws.Mask.AsSpan(0, tokens);
        BuildMask(input.AttentionMask, mask, tokens);
        var last = new float[tokens * h];
        var states = options.OutputHiddenStates ? NewArrays(layers.Count + 1, tokens * h) : null;
        var attentions = options.OutputAttentions ? NewArrays(layers.Count, batch * heads * seq * seq) : null;
        int probsPerSeq = heads * seq * seq;
        var profile = options.Profile;
        long forwardStart = EncoderProfile.Start(profile);
        for (int b0 = 0; b0 < batch; b0 += chunkSeqs)
        {
            int nb = Math.Min(chunkSeqs, batch - b0), r0 = b0 * seq, rows = nb * seq;
            var hidden = last.AsSpan(r0 * h, rows * h);
            long t = EncoderProfile.Start(profile);
            embed(r0, rows, ws.Temp, hidden, threads);
            profile?.Lap(EncoderOp.Embedding, t);
            if (states != null) hidden.CopyTo(states[0].AsSpan(r0 * h));
            for (int l = 0; l < layers.Count; l++)
            {
                var probs = attentions == null ? default : attentions[l].AsSpan(b0 * probsPerSeq, nb * probsPerSeq);
                Layer(layers[l], nb, seq, heads, mask.Slice(r0, rows), hidden, ws, probs, shape.Activation, shape.Scaling, threads, profile);
                if (states != null) hidden.CopyTo(states[l + 1].AsSpan(r0 * h));
            }
        }
        profile?.EndForward(forwardStart);
        return (last, states, attentions);
    }

    static float[][] NewArrays(int count, int length)
    {
        var a = new float[count][];
        for (int i = 0; i < count; i++) a[i] = new float[length];
        return a;
    }

    /// <summary>
    /// One encoder layer in place on <paramref name="hidden"/> [batch·seq, H] (a chunk of whole sequences):
    /// h ← LN(h + Wo·Attn(h) + bo); h ← LN(h + W2·act(W1·h + b1) + b2). Attention probabilities are copied into
    /// <paramref name="probsOut"/> [batch, heads, seq, seq] when it is not empty.
    /// </summary>
    /// <remarks>
    /// The residual and the output bias are written first and the GEMM accumulates onto them (one pass fewer than
    /// adding afterwards). Scaling as <see cref="AttentionOptions.For"/>. With a <paramref name="profile"/>, each step's
    /// wall time is charged to its <see cref="EncoderOp"/> (t = the lap's start).
    /// </remarks>
    public static void Layer(EncoderLayerWeights w, int batch, int seq, int heads, ReadOnlySpan<float> mask,
        Span<float> hidden, EncoderWorkspace ws, Span<float> probsOut, HiddenActivation act, AttentionScaling scaling, int threads,
        EncoderProfile? profile = null)
    {
        long t = EncoderProfile.Start(profile);
        int h = w.Query.In, rows = batch * seq, d = h / heads, inter = w.Intermediate.Out, th = rows * h;
        var context = ws.Context.AsSpan(0, th);
        var temp = ws.Temp.AsSpan(0, th);
        var work = ws.Work.AsSpan();
        var q = work.Slice(0, th); var k = work.Slice(th, th); var v = work.Slice(2 * th, th);
        // An int8 layer quantizes the hidden state once for query, key and value (it was quantized three times).
        using (var hq = QuantizeFor(w.Query, hidden, rows, threads))
        {
            if (profile != null && hq != null) t = profile.Lap(EncoderOp.Quantize, t);
            Dense(hidden, rows, w.Query, q, threads, hq);
            if (profile != null) t = profile.Lap(EncoderOp.QueryGemm, t);
            Dense(hidden, rows, w.Key, k, threads, hq);
            if (profile != null) t = profile.Lap(EncoderOp.KeyGemm, t);
            Dense(hidden, rows, w.Value, v, threads, hq);
            if (profile != null) t = profile.Lap(EncoderOp.ValueGemm, t);
        }
        // The attention op's kernel itself (what Functional.Attention runs), here without an autograd record.
        var (options, scaleQueries) = AttentionOptions.For(d, scaling);
        if (scaleQueries) TensorPrimitives.Divide(q, MathF.Sqrt(d), q);
        Attention.Forward(q, k, v, context, AttentionLayout.Dense(batch, heads, seq, seq, d, d), options, mask, default, default, probsOut, threads);
        if (profile != null) t = profile.Lap(EncoderOp.Attention, t);

        using (var cq = QuantizeFor(w.AttentionOutput, context, rows, threads))
        {
            if (profile != null && cq != null) t = profile.Lap(EncoderOp.Quantize, t);
            DenseResidual(context, rows, w.AttentionOutput, hidden, temp, threads, cq);
            if (profile != null) t = profile.Lap(EncoderOp.OutputGemm, t);
        }
        LayerNorm.Forward(temp, w.AttentionNorm.Weight.Span, w.AttentionNorm.Bias.Span, hidden, rows, h, w.AttentionNorm.Eps, threads: threads);
        if (profile != null) t = profile.Lap(EncoderOp.LayerNorm, t);

        var mid = work.Slice(0, rows * inter);
        using (var hq = QuantizeFor(w.Intermediate, hidden, rows, threads))
        {
            if (profile != null && hq != null) t = profile.Lap(EncoderOp.Quantize, t);
            // int8 applies exact GELU in the GEMM's epilogue, saving a pass over the [rows, intermediate] output.
            bool fused = hq != null && act == HiddenActivation.Gelu;
            Dense(hidden, rows, w.Intermediate, mid, threads, hq, fused ? Int8Epilogue.GeluErf : Int8Epilogue.None);
            if (profile != null) t = profile.Lap(EncoderOp.FfnInGemm, t);
            if (!fused) Activate(act, mid, threads);
            if (profile != null && !fused) t = profile.Lap(EncoderOp.Activation, t);
        }
        using (var mq = QuantizeFor(w.Output, mid, rows, threads))
        {
            if (profile != null && mq != null) t = profile.Lap(EncoderOp.Quantize, t);
            DenseResidual(mid, rows, w.Output, hidden, temp, threads, mq);
            if (profile != null) t = profile.Lap(EncoderOp.FfnOutGemm, t);
        }
        LayerNorm.Forward(temp, w.OutputNorm.Weight.Span, w.OutputNorm.Bias.Span, hidden, rows, h, w.OutputNorm.Eps, threads: threads);
        profile?.Lap(EncoderOp.LayerNorm, t);
    }

    /// <summary>y = residual + b + x·Wᵀ: the residual and bias are written first, then the GEMM accumulates (beta = 1).</summary>
    static void DenseResidual(ReadOnlySpan<float> x, int rows, in DenseWeights w, ReadOnlySpan<float> residual, Span<float> y, int threads,
        Int8Activations? xq)
    {
        var bias = w.Bias.Span;
        for (int r = 0; r < rows; r++)
        {
            var dst = y.Slice(r * w.Out, w.Out);
            if (bias.IsEmpty) residual.Slice(r * w.Out, w.Out).CopyTo(dst);
            else TensorPrimitives.Add(residual.Slice(r * w.Out, w.Out), bias, dst);
        }
        if (w.Int8 is { } int8 && xq != null) { Int8Gemm.LinearAccumulate(xq, int8, y, threads); return; }
        if (w.Int8 is not null || w.Bf16 is not null) { LowPrecisionAccumulate(x, rows, w, y, threads); return; }
        Gemm.Sgemm(false, true, rows, w.Out, w.In, 1f, x.Slice(0, rows * w.In), w.In, w.Weight.Span, w.In, 1f, y.Slice(0, rows * w.Out), w.Out, threads);
    }

    /// <summary>y += x·Wᵀ through the layer's int8 or bf16 copy.</summary>
    static void LowPrecisionAccumulate(ReadOnlySpan<float> x, int rows, in DenseWeights w, Span<float> y, int threads)
    {
        if (w.Int8 is { } q) Int8Gemm.LinearAccumulate(x, rows, q, y, threads);
        else Bf16Gemm.LinearAccumulate(x, rows, w.Bf16!, y, threads);
    }
}
