using System.Numerics.Tensors;
using Sharpformer.Kernels;

namespace Sharpformer.Models;

/// <summary>A dense layer's weights as live views into its parameters: Weight is [Out, In] (torch layout), Bias [Out] or empty.</summary>
internal readonly record struct DenseWeights(ReadOnlyMemory<float> Weight, ReadOnlyMemory<float> Bias, int Out, int In);

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

/// <summary>Where 1/√d is applied: BERT divides the scores, DistilBERT scales the queries first. Both are the same product
/// when √d is a power of two; they are kept apart so other head sizes round as the reference does.</summary>
internal enum AttentionScaling { DivideScores, ScaleQueries }

/// <summary>
/// Reusable activation buffers for the inference fast path. One instance serves one forward at a time;
/// buffers grow to the largest batch seen and are then reused, so a long inference run does not pile
/// large arrays up for the GC.
/// </summary>
internal sealed class EncoderWorkspace
{
    /// <summary>Rows (tokens) per chunk of the Q/K/V and feed-forward GEMMs: large enough for full-speed GEMMs, small
    /// enough that the [rows, 3·H] and [rows, intermediate] buffers stay a few MiB whatever the batch.</summary>
    public const int ChunkTokens = 1024;

    public float[] Hidden = [];
    public float[] Temp = [];
    public float[] Context = [];
    public float[] Work = [];
    public float[] Scores = [];
    public float[] Mask = [];

    public void Ensure(int tokens, int hidden, int intermediate, int heads, int seq, int batch)
    {
        int chunk = ChunkRows(batch, seq) * seq;
        Grow(ref Hidden, (long)tokens * hidden);
        Grow(ref Temp, (long)tokens * hidden);
        Grow(ref Context, (long)tokens * hidden);
        Grow(ref Work, Math.Max(3L * chunk * hidden, (long)chunk * intermediate));
        Grow(ref Scores, (long)heads * seq * seq);
        Grow(ref Mask, (long)batch * seq);
    }

    /// <summary>Whole sequences per chunk (attention needs a sequence's every row at once).</summary>
    public static int ChunkRows(int batch, int seq) => Math.Clamp(ChunkTokens / seq, 1, batch);

    static void Grow(ref float[] a, long n)
    {
        if (n > Array.MaxLength) throw new NotSupportedException($"An activation buffer of {n} floats exceeds .NET's array limit; use a smaller batch or sequence length.");
        if (a.Length < n) { a = []; a = new float[n]; }
    }
}

/// <summary>
/// Inference-only forward of a post-norm transformer encoder over flat buffers, calling the kernels directly.
/// Numerically the same model as the module path (same operation order: bias-prefilled GEMM like torch's addmm,
/// residual added before LayerNorm, the attention mask as float32-min so padded keys get probability exactly 0).
/// </summary>
internal static class EncoderFastPath
{
    /// <summary>y[rows, Out] = x[rows, In] · Wᵀ + b, the bias copied into y first and the GEMM accumulating onto it (torch addmm).</summary>
    public static void Dense(ReadOnlySpan<float> x, int rows, in DenseWeights w, Span<float> y, int threads)
    {
        var bias = w.Bias.Span;
        var outSpan = y.Slice(0, rows * w.Out);
        float beta = 0f;
        if (!bias.IsEmpty)
        {
            for (int r = 0; r < rows; r++) bias.CopyTo(outSpan.Slice(r * w.Out, w.Out));
            beta = 1f;
        }
        Gemm.Sgemm(false, true, rows, w.Out, w.In, 1f, x.Slice(0, rows * w.In), w.In, w.Weight.Span, w.In, beta, outSpan, w.Out, threads);
    }

    public static void Activate(HiddenActivation act, Span<float> x)
    {
        switch (act)
        {
            case HiddenActivation.Gelu: Activations.GeluErf(x, x); break;
            case HiddenActivation.GeluTanh: Activations.GeluTanh(x, x); break;
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
    /// One encoder layer in place on <paramref name="hidden"/> [batch·seq, H]:
    /// h ← LN(h + Wo·Attn(h) + bo); h ← LN(h + W2·act(W1·h + b1) + b2). Attention probabilities are copied into
    /// <paramref name="probsOut"/> [batch, heads, seq, seq] when it is not empty.
    /// </summary>
    /// <remarks>
    /// Q/K/V and the feed-forward run over chunks of whole sequences so the large intermediates are never
    /// materialised for the whole batch. The residual and the output bias are written first and the GEMM accumulates
    /// onto them (one pass fewer than adding afterwards).
    /// </remarks>
    public static void Layer(EncoderLayerWeights w, int batch, int seq, int heads, ReadOnlySpan<float> mask,
        Span<float> hidden, EncoderWorkspace ws, Span<float> probsOut, HiddenActivation act, AttentionScaling scaling, int threads)
    {
        int h = w.Query.In, tokens = batch * seq, d = h / heads, inter = w.Intermediate.Out;
        int th = tokens * h;
        int chunkSeqs = EncoderWorkspace.ChunkRows(batch, seq);
        var context = ws.Context.AsSpan(0, th);
        var scores = ws.Scores.AsSpan(0, heads * seq * seq);
        float sqrtD = MathF.Sqrt(d);
        // When √d is a power of two, scaling the product by 1/√d is exact, so it can ride on the GEMM's alpha
        // and both BERT's (q·k)/√d and DistilBERT's (q/√d)·k give bit-identical scores.
        bool exactScale = float.IsPow2(sqrtD) || float.IsPow2(1f / sqrtD);
        float alpha = exactScale ? 1f / sqrtD : 1f;

        for (int b0 = 0; b0 < batch; b0 += chunkSeqs)
        {
            int nb = Math.Min(chunkSeqs, batch - b0), rows = nb * seq, r0 = b0 * seq;
            var x = hidden.Slice(r0 * h, rows * h);
            var work = ws.Work.AsSpan();
            var q = work.Slice(0, rows * h); var k = work.Slice(rows * h, rows * h); var v = work.Slice(2 * rows * h, rows * h);
            Dense(x, rows, w.Query, q, threads);
            Dense(x, rows, w.Key, k, threads);
            Dense(x, rows, w.Value, v, threads);
            if (!exactScale && scaling == AttentionScaling.ScaleQueries) TensorPrimitives.Divide(q, sqrtD, q);
            for (int bi = 0; bi < nb; bi++)
            {
                int b = b0 + bi, off = bi * seq * h;
                // scores[head] = Q_head · K_headᵀ; heads are column blocks of width d inside the [seq, H] rows.
                Gemm.SgemmBatched(false, true, seq, seq, d, alpha, q.Slice(off), h, d, k.Slice(off), h, d,
                    0f, scores, seq, (long)seq * seq, heads, threads);
                if (!exactScale && scaling == AttentionScaling.DivideScores) TensorPrimitives.Divide(scores, sqrtD, scores);
                Softmax.Forward(scores, scores, heads * seq, seq, mask.IsEmpty ? default : mask.Slice(b * seq, seq), heads * seq);
                if (!probsOut.IsEmpty) scores.CopyTo(probsOut.Slice(b * heads * seq * seq, heads * seq * seq));
                Gemm.SgemmBatched(false, false, seq, d, seq, 1f, scores, seq, (long)seq * seq, v.Slice(off), h, d,
                    0f, context.Slice((r0 + bi * seq) * h), h, d, heads, threads);
            }
        }

        var temp = ws.Temp.AsSpan(0, th);
        DenseResidual(context, tokens, w.AttentionOutput, hidden.Slice(0, th), temp, threads);
        LayerNorm.Forward(temp, w.AttentionNorm.Weight.Span, w.AttentionNorm.Bias.Span, hidden, tokens, h, w.AttentionNorm.Eps);

        for (int b0 = 0; b0 < batch; b0 += chunkSeqs)
        {
            int rows = Math.Min(chunkSeqs, batch - b0) * seq, r0 = b0 * seq;
            var mid = ws.Work.AsSpan(0, rows * inter);
            Dense(hidden.Slice(r0 * h, rows * h), rows, w.Intermediate, mid, threads);
            Activate(act, mid);
            DenseResidual(mid, rows, w.Output, hidden.Slice(r0 * h, rows * h), temp.Slice(r0 * h, rows * h), threads);
        }
        LayerNorm.Forward(temp, w.OutputNorm.Weight.Span, w.OutputNorm.Bias.Span, hidden, tokens, h, w.OutputNorm.Eps);
    }

    /// <summary>y = residual + b + x·Wᵀ: the residual and bias are written first, then the GEMM accumulates (beta = 1).</summary>
    static void DenseResidual(ReadOnlySpan<float> x, int rows, in DenseWeights w, ReadOnlySpan<float> residual, Span<float> y, int threads)
    {
        var bias = w.Bias.Span;
        for (int r = 0; r < rows; r++)
        {
            var dst = y.Slice(r * w.Out, w.Out);
            if (bias.IsEmpty) residual.Slice(r * w.Out, w.Out).CopyTo(dst);
            else TensorPrimitives.Add(residual.Slice(r * w.Out, w.Out), bias, dst);
        }
        Gemm.Sgemm(false, true, rows, w.Out, w.In, 1f, x.Slice(0, rows * w.In), w.In, w.Weight.Span, w.In, 1f, y.Slice(0, rows * w.Out), w.Out, threads);
    }
}
