using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Sharpformer.Kernels;

/// <summary>
/// Where queries, keys, values and the context live: row-major [batch, length, ·] buffers in which head h occupies the
/// columns [h·dim, (h+1)·dim) of each row, rows <c>*Stride</c> apart (so Q, K and V can be column blocks of one fused
/// [batch, length, 3·heads·dim] projection, as the seed model and GPT-2's c_attn produce them).
/// </summary>
/// <param name="Batch">B</param>
/// <param name="Heads">H</param>
/// <param name="QueryLength">Sq</param>
/// <param name="KeyLength">Sk (≠ Sq for cross-attention)</param>
/// <param name="HeadDim">D, the query/key width per head</param>
/// <param name="ValueDim">Dv, the value/context width per head</param>
/// <param name="QueryStride">elements between consecutive query rows (H·D when packed alone)</param>
/// <param name="KeyStride">elements between consecutive key rows</param>
/// <param name="ValueStride">elements between consecutive value rows</param>
/// <param name="ContextStride">elements between consecutive context rows (H·Dv when packed alone)</param>
public readonly record struct AttentionLayout(int Batch, int Heads, int QueryLength, int KeyLength, int HeadDim, int ValueDim,
    int QueryStride, int KeyStride, int ValueStride, int ContextStride)
{
    /// <summary>Separate contiguous [B, S, H·D] buffers.</summary>
    public static AttentionLayout Dense(int batch, int heads, int queryLength, int keyLength, int headDim, int valueDim) =>
        new(batch, heads, queryLength, keyLength, headDim, valueDim, heads * headDim, heads * headDim, heads * valueDim, heads * valueDim);

    internal long QueryOffset(int b, int h) => (long)b * QueryLength * QueryStride + h * HeadDim;
    internal long KeyOffset(int b, int h) => (long)b * KeyLength * KeyStride + h * HeadDim;
    internal long ValueOffset(int b, int h) => (long)b * KeyLength * ValueStride + h * ValueDim;
    internal long ContextOffset(int b, int h) => (long)b * QueryLength * ContextStride + h * ValueDim;
}

/// <summary>Where 1/√d enters attention scores (only matters when √d is not a power of two).</summary>
public enum AttentionScaling
{
    /// <summary>(1/√d)·(q·k), the factor riding on the score product (the seed model, Keras).</summary>
    ScaleScores,
    /// <summary>(q·k)/√d, as HF's BERT.</summary>
    DivideScores,
    /// <summary>(q/√d)·k, as HF's DistilBERT.</summary>
    ScaleQueries,
}

/// <summary>
/// How the scores are formed and masked: s = Scale·(q·k) — or (q·k)/Divisor when Divisor &gt; 0 (BERT's order, kept
/// apart because it rounds differently unless √d is a power of two) — plus the key mask, restricted to keys j ≤ i + Sk − Sq
/// when Causal; dropout with rate DropoutRate on the probabilities, its mask regenerated from DropoutSeed. The mask of
/// (batch row b, head h) is entries [((DropoutFirstRow + b)·H + h)·Sq·Sk, …) of the seed's mask: a batch that is a slice of a
/// larger one starting at row DropoutFirstRow (a data-parallel rank's) draws the same masks as the larger batch.
/// </summary>
public readonly record struct AttentionOptions(float Scale, float Divisor = 0f, bool Causal = false, float DropoutRate = 0f, ulong DropoutSeed = 0,
    long DropoutFirstRow = 0)
{
    /// <summary>
    /// Options for head width d with 1/√d applied where <paramref name="scaling"/> says. As a product factor 1/√d is exact
    /// when √d is a power of two (d = 16, 64, 256), so every order gives the same bits and the factor rides on the score
    /// product; otherwise the reference's order is followed. ScaleQueries then returns Scale = 1 and
    /// <c>ScaleQueriesFirst</c> = true: the caller divides the queries by √d.
    /// </summary>
    public static (AttentionOptions Options, bool ScaleQueriesFirst) For(int headDim, AttentionScaling scaling)
    {
        float sqrtD = MathF.Sqrt(headDim);
        var o = new AttentionOptions(1f / sqrtD);
        if (float.IsPow2(sqrtD) || float.IsPow2(1f / sqrtD) || scaling == AttentionScaling.ScaleScores) return (o, false);
        return scaling == AttentionScaling.DivideScores ? (o with { Scale = 1f, Divisor = sqrtD }, false) : (o with { Scale = 1f }, true);
    }

    internal float GradientScale => Divisor > 0f ? 1f / Divisor : Scale;
}

/// <summary>
/// Fused multi-head scaled dot-product attention over flat buffers, flash-style: each (sample, head) computes its Sq×Sk
/// scores in a per-worker scratch that stays in cache and keeps only every row's max and 1/sum; the backward recomputes
/// the probabilities from Q, K and those (bit-identical to the forward's), so nothing of size Sq×Sk is stored.
/// </summary>
/// <remarks>
/// P = softmax(s + mask), context = (P ⊙ dropout mask)·V per head. The key mask is additive, [B, Sk]: 0 keeps, a large
/// negative value (≤ <see cref="PaddingMask"/>: HF's float32 min, Keras' −1e9) drops. Trailing padding keys are skipped
/// altogether when a row has a real key: their probability is exactly 0 either way (exp underflows), so the result does
/// not change and padded batches cost what their longest sequence costs. A row with no key to attend to (all masked)
/// spreads its attention evenly, as the additive mask does in the references.
/// The forward leaves e = exp(s − max) unnormalised and applies 1/sum to the Sq×Dv context rows instead of the Sq×Sk scores.
/// (sample, head) items are handed out dynamically to the workers; each item runs single-threaded, so results do not
/// depend on the thread count or on scheduling. Reference twin: a double-precision naive attention in the tests.
/// </remarks>
public static class Attention
{
    /// <summary>Additive mask values at or below this mark padding keys.</summary>
    public const float PaddingMask = -1e9f;

    /// <summary>
    /// context = softmax(scores + keyMask)·V. <paramref name="rowMax"/> and <paramref name="rowInvSum"/> ([B, H, Sq], or empty
    /// when no backward follows) receive each row's statistics for <see cref="Backward"/>; <paramref name="probabilities"/>
    /// ([B, H, Sq, Sk], or empty) receives P before dropout.
    /// </summary>
    public static unsafe void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> context,
        in AttentionLayout layout, in AttentionOptions options, ReadOnlySpan<float> keyMask,
        Span<float> rowMax, Span<float> rowInvSum, Span<float> probabilities, int threads = 0)
    {
        var L = layout; var o = options;
        Check(L, q.Length, k.Length, v.Length, context.Length, keyMask.Length, "context");
        int rows = L.Batch * L.Heads * L.QueryLength;
        if (!rowMax.IsEmpty && (rowMax.Length < rows || rowInvSum.Length < rows))
            throw new ArgumentException($"Attention: row statistics need {rows} entries each; got {rowMax.Length} and {rowInvSum.Length}.");
        long ss = (long)L.QueryLength * L.KeyLength;
        if (!probabilities.IsEmpty && probabilities.Length < L.Batch * L.Heads * ss)
            throw new ArgumentException($"Attention: probabilities need {L.Batch * L.Heads * ss} entries; got {probabilities.Length}.");
        if (rows == 0) return;
        var keyLen = KeyLengths(keyMask, L);
        bool stats = !rowMax.IsEmpty, probs = !probabilities.IsEmpty, drop = o.DropoutRate > 0f;
        int Sq = L.QueryLength, Sk = L.KeyLength, scoreSize = checked(Sq * Sk);
        int stride = scoreSize * (drop ? 2 : 1) + (stats ? 0 : 2 * Sq);
        fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v) fixed (float* pc = context) fixed (float* pm = keyMask)
        fixed (float* pmax = rowMax) fixed (float* pinv = rowInvSum) fixed (float* pp = probabilities)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, ac = (nint)pc, am = (nint)pm, amax = (nint)pmax, ainv = (nint)pinv, ap = (nint)pp;
            int qLen = q.Length, kLen = k.Length, vLen = v.Length, cLen = context.Length, mLen = keyMask.Length;
            ForEachHead(L.Batch * L.Heads, threads, stride, (bh, scratch) =>
            {
                int b = bh / L.Heads, h = bh % L.Heads, keys = keyLen[b];
                var p = scratch.Slice(0, scoreSize);
                var max = stats ? new Span<float>((float*)amax + (long)bh * Sq, Sq) : scratch.Slice(scoreSize * (drop ? 2 : 1), Sq);
                var inv = stats ? new Span<float>((float*)ainv + (long)bh * Sq, Sq) : scratch.Slice(scoreSize * (drop ? 2 : 1) + Sq, Sq);
                var mask = mLen == 0 ? default : new ReadOnlySpan<float>((float*)am + (long)b * Sk, Sk);
                var qs = new ReadOnlySpan<float>((float*)aq, qLen).Slice((int)L.QueryOffset(b, h));
                var ks = new ReadOnlySpan<float>((float*)ak, kLen).Slice((int)L.KeyOffset(b, h));
                var vs = new ReadOnlySpan<float>((float*)av, vLen).Slice((int)L.ValueOffset(b, h));
                var ctx = new Span<float>((float*)ac, cLen).Slice((int)L.ContextOffset(b, h));
                Probabilities(qs, ks, p, mask, L, o, keys, max, inv, replay: false);
                if (probs)
                {
                    var dst = new Span<float>((float*)ap + bh * ss, scoreSize);
                    for (int r = 0; r < Sq; r++) TensorPrimitives.Multiply(p.Slice(r * Sk, Sk), inv[r], dst.Slice(r * Sk, Sk));
                }
                if (keys == 0) { for (int r = 0; r < Sq; r++) ctx.Slice(r * L.ContextStride, L.ValueDim).Clear(); return; }
                if (drop)
                {
                    var m = scratch.Slice(scoreSize, scoreSize);
                    DropoutMask.FillRange(m, o.DropoutRate, o.DropoutSeed, (o.DropoutFirstRow * L.Heads + bh) * ss);
                    TensorPrimitives.Multiply(p, m, p);
                }
                Gemm.Sgemm(false, false, Sq, L.ValueDim, keys, 1f, p, Sk, vs, L.ValueStride, 0f, ctx, L.ContextStride, threads: 1);
                for (int r = 0; r < Sq; r++)
                {
                    var row = ctx.Slice(r * L.ContextStride, L.ValueDim);
                    TensorPrimitives.Multiply(row, inv[r], row);
                }
            });
        }
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/> from dContext, recomputing P from Q, K and the saved row statistics:
    /// dV = Pdᵀ·dC, dPd = dC·Vᵀ, dP = dPd ⊙ mask, dS = P ⊙ (dP − ⟨dP, P⟩), dQ = g·dS·K, dK = g·dSᵀ·Q (g = the score scale).
    /// dQ, dK, dV use the layout's strides (they may be column blocks of one buffer); an empty span skips that gradient,
    /// and beta = 1 accumulates instead of overwriting.
    /// </summary>
    public static unsafe void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dContext,
        in AttentionLayout layout, in AttentionOptions options, ReadOnlySpan<float> keyMask, ReadOnlySpan<float> rowMax, ReadOnlySpan<float> rowInvSum,
        Span<float> dq, float betaQ, Span<float> dk, float betaK, Span<float> dv, float betaV, int threads = 0)
    {
        var L = layout; var o = options;
        Check(L, q.Length, k.Length, v.Length, dContext.Length, keyMask.Length, "dContext");
        int rows = L.Batch * L.Heads * L.QueryLength;
        if (rowMax.Length < rows || rowInvSum.Length < rows)
            throw new ArgumentException($"Attention backward: row statistics need {rows} entries each; got {rowMax.Length} and {rowInvSum.Length}.");
        if (rows == 0) return;
        var keyLen = KeyLengths(keyMask, L);
        bool drop = o.DropoutRate > 0f, needQ = !dq.IsEmpty, needK = !dk.IsEmpty, needV = !dv.IsEmpty;
        int Sq = L.QueryLength, Sk = L.KeyLength, scoreSize = checked(Sq * Sk), trSize = Math.Max(L.HeadDim, L.ValueDim) * Sk;
        int stride = scoreSize * (drop ? 4 : 2) + trSize;
        float g = o.GradientScale;
        fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v) fixed (float* pdc = dContext) fixed (float* pm = keyMask)
        fixed (float* pmax = rowMax) fixed (float* pinv = rowInvSum) fixed (float* pdq = dq) fixed (float* pdk = dk) fixed (float* pdv = dv)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, adc = (nint)pdc, am = (nint)pm, amax = (nint)pmax, ainv = (nint)pinv;
            nint adq = (nint)pdq, adk = (nint)pdk, adv = (nint)pdv;
            int qLen = q.Length, kLen = k.Length, vLen = v.Length, cLen = dContext.Length, mLen = keyMask.Length, dqLen = dq.Length, dkLen = dk.Length, dvLen = dv.Length;
            ForEachHead(L.Batch * L.Heads, threads, stride, (bh, scratch) =>
            {
                int b = bh / L.Heads, h = bh % L.Heads, keys = keyLen[b];
                var p = scratch.Slice(0, scoreSize);
                var dp = scratch.Slice(scoreSize, scoreSize);
                var tr = scratch.Slice(2 * scoreSize, trSize);
                var mask = mLen == 0 ? default : new ReadOnlySpan<float>((float*)am + (long)b * Sk, Sk);
                var qs = new ReadOnlySpan<float>((float*)aq, qLen).Slice((int)L.QueryOffset(b, h));
                var ks = new ReadOnlySpan<float>((float*)ak, kLen).Slice((int)L.KeyOffset(b, h));
                var vs = new ReadOnlySpan<float>((float*)av, vLen).Slice((int)L.ValueOffset(b, h));
                var dc = new ReadOnlySpan<float>((float*)adc, cLen).Slice((int)L.ContextOffset(b, h));
                var dqs = needQ ? new Span<float>((float*)adq, dqLen).Slice((int)L.QueryOffset(b, h)) : default;
                var dks = needK ? new Span<float>((float*)adk, dkLen).Slice((int)L.KeyOffset(b, h)) : default;
                var dvs = needV ? new Span<float>((float*)adv, dvLen).Slice((int)L.ValueOffset(b, h)) : default;
                if (keys == 0)
                {
                    if (needQ && betaQ == 0f) for (int r = 0; r < Sq; r++) dqs.Slice(r * L.QueryStride, L.HeadDim).Clear();
                    ClearRows(dks, 0, Sk, L.KeyStride, L.HeadDim, betaK, needK);
                    ClearRows(dvs, 0, Sk, L.ValueStride, L.ValueDim, betaV, needV);
                    return;
                }
                // Read only (replay); Span because the forward writes through the same parameter.
                var max = new Span<float>((float*)amax + (long)bh * Sq, Sq);
                var inv = new Span<float>((float*)ainv + (long)bh * Sq, Sq);
                Probabilities(qs, ks, p, mask, L, o, keys, max, inv, replay: true);
                Span<float> m = default; ReadOnlySpan<float> pd = p;
                if (drop)
                {
                    long ss = (long)Sq * Sk;
                    m = scratch.Slice(2 * scoreSize + trSize, scoreSize);
                    DropoutMask.FillRange(m, o.DropoutRate, o.DropoutSeed, (o.DropoutFirstRow * L.Heads + bh) * ss);
                    var pdBuf = scratch.Slice(3 * scoreSize + trSize, scoreSize);
                    TensorPrimitives.Multiply(p, m, pdBuf);
                    pd = pdBuf;
                }
                // dV and dK are computed transposed (Dv×keys: small-m products, faster than transposing the Sq×Sk operand)
                // and written back row-wise.
                if (needV)
                {
                    Gemm.Sgemm(true, false, L.ValueDim, keys, Sq, 1f, dc, L.ContextStride, pd, Sk, 0f, tr, Sk, threads: 1);
                    TransposeInto(tr, L.ValueDim, keys, Sk, dvs, L.ValueStride, betaV);
                    ClearRows(dvs, keys, Sk, L.ValueStride, L.ValueDim, betaV, true);
                }
                if (!needQ && !needK) return;
                Gemm.Sgemm(false, true, Sq, keys, L.ValueDim, 1f, dc, L.ContextStride, vs, L.ValueStride, 0f, dp, Sk, threads: 1);
                if (drop) for (int r = 0; r < Sq; r++) TensorPrimitives.Multiply(dp.Slice(r * Sk, keys), m.Slice(r * Sk, keys), dp.Slice(r * Sk, keys));
                for (int r = 0; r < Sq; r++)
                {
                    int lim = RowLimit(r, keys, L, o);
                    if (lim > 0 && IsDeadRow(mask.IsEmpty ? default : mask.Slice(0, lim), o)) { dp.Slice(r * Sk, keys).Clear(); continue; }
                    Softmax.RowBackward(p.Slice(r * Sk, lim), dp.Slice(r * Sk, lim), dp.Slice(r * Sk, lim));
                    if (lim < keys) dp.Slice(r * Sk + lim, keys - lim).Clear();
                }
                if (needQ) Gemm.Sgemm(false, false, Sq, L.HeadDim, keys, g, dp, Sk, ks, L.KeyStride, betaQ, dqs, L.QueryStride, threads: 1);
                if (needK)
                {
                    Gemm.Sgemm(true, false, L.HeadDim, keys, Sq, g, qs, L.QueryStride, dp, Sk, 0f, tr, Sk, threads: 1);
                    TransposeInto(tr, L.HeadDim, keys, Sk, dks, L.KeyStride, betaK);
                    ClearRows(dks, keys, Sk, L.KeyStride, L.HeadDim, betaK, true);
                }
            });
        }
    }

    // Scores of one (sample, head) into p [Sq, Sk] (columns ≥ the row's key limit set to 0), softmax over each row's keys.
    // The forward (replay = false) leaves e = exp(s − max) unnormalised and stores max and 1/sum; replay rebuilds the
    // normalised P from them with the same per-element arithmetic.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Probabilities(ReadOnlySpan<float> q, ReadOnlySpan<float> k, Span<float> p, ReadOnlySpan<float> mask,
        in AttentionLayout L, in AttentionOptions o, int keys, Span<float> max, Span<float> inv, bool replay)
    {
        int Sq = L.QueryLength, Sk = L.KeyLength;
        if (keys > 0)
            Gemm.Sgemm(false, true, Sq, keys, L.HeadDim, o.Divisor > 0f ? 1f : o.Scale, q, L.QueryStride, k, L.KeyStride, 0f, p, Sk, threads: 1);
        for (int r = 0; r < Sq; r++)
        {
            int lim = RowLimit(r, keys, L, o);
            var row = p.Slice(r * Sk, lim);
            if (lim < Sk) p.Slice(r * Sk + lim, Sk - lim).Clear();
            if (lim == 0) { max[r] = 0f; inv[r] = 0f; continue; }
            var m = mask.IsEmpty ? default : mask.Slice(0, lim);
            if (IsDeadRow(m, o))
            {
                // Every key the causal mask allows is padding (a left-padded pad query). The references add the padding mask
                // (float32 min) on top of the causal one (also float32 min), so those scores saturate to min, future real keys
                // sit at min too and future pad keys reach −∞: the row is uniform over {j ≤ i} ∪ {real j > i}. Finite, and
                // the same values as transformers' GPT-2; constant in the scores, so its score gradient is 0.
                var full = p.Slice(r * Sk, keys);
                int count = 0;
                for (int j = 0; j < keys; j++) { bool on = j < lim || mask[j] > PaddingMask; full[j] = on ? 1f : 0f; count += on ? 1 : 0; }
                max[r] = 0f; inv[r] = 1f / count;
                if (replay) TensorPrimitives.Multiply(full, inv[r], full);
                continue;
            }
            if (o.Divisor > 0f) TensorPrimitives.Divide(row, o.Divisor, row);
            if (replay) Softmax.RowReplay(row, m, max[r], inv[r]);
            else Softmax.RowForward(row, row, m, out max[r], out inv[r], normalize: false);
        }
    }

    // A causal row whose allowed keys are all padding (see Probabilities).
    static bool IsDeadRow(ReadOnlySpan<float> allowedMask, in AttentionOptions o)
    {
        if (!o.Causal || allowedMask.IsEmpty) return false;
        foreach (var m in allowedMask) if (m > PaddingMask) return false;
        return true;
    }

    // Keys row r attends to: the first `keys` (trailing padding dropped), and under the causal mask those at or before
    // its own position (aligned to the end when Sq < Sk, as a decoder continuing a cached prefix).
    static int RowLimit(int r, int keys, in AttentionLayout L, in AttentionOptions o) =>
        o.Causal ? Math.Clamp(r + 1 + L.KeyLength - L.QueryLength, 0, keys) : keys;

    // Per sample: 1 + the last key whose mask is above PaddingMask, or all keys when none is (nothing to attend to: the
    // additive mask then spreads attention over every key, as the references do).
    static int[] KeyLengths(ReadOnlySpan<float> keyMask, in AttentionLayout L)
    {
        var len = new int[L.Batch];
        for (int b = 0; b < L.Batch; b++)
        {
            int n = L.KeyLength;
            if (!keyMask.IsEmpty)
            {
                var m = keyMask.Slice(b * n, n);
                int last = n - 1;
                while (last >= 0 && m[last] <= PaddingMask) last--;
                if (last >= 0) n = last + 1;
            }
            len[b] = n;
        }
        return len;
    }

    // dst[c, r] (+)= src[r, c] for an rows×cols block of src (row stride ldSrc) into dst (row stride ldDst).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TransposeInto(ReadOnlySpan<float> src, int rows, int cols, int ldSrc, Span<float> dst, int ldDst, float beta)
    {
        for (int c = 0; c < cols; c++)
        {
            var d = dst.Slice(c * ldDst, rows);
            if (beta == 0f) for (int r = 0; r < rows; r++) d[r] = src[r * ldSrc + c];
            else for (int r = 0; r < rows; r++) d[r] += src[r * ldSrc + c];
        }
    }

    static void ClearRows(Span<float> x, int from, int to, int ld, int width, float beta, bool need)
    {
        if (!need || beta != 0f) return;
        for (int t = from; t < to; t++) x.Slice(t * ld, width).Clear();
    }

    // (sample, head) items handed out dynamically (a descheduled thread on a shared machine takes fewer); body gets the
    // item and its worker's scratch. Each item's arithmetic is single-threaded, so results never depend on scheduling.
    static void ForEachHead(int count, int threads, int scratchPerWorker, SpanAction body)
    {
        int workers = Parallelism.IsInsideParallelRegion ? 1 : Math.Max(1, Math.Min(Parallelism.Resolve(threads), count));
        var pool = ArrayPool<float>.Shared;
        var scratch = pool.Rent(Math.Max(1, workers * scratchPerWorker));
        try
        {
            if (workers == 1) { for (int i = 0; i < count; i++) body(i, scratch.AsSpan(0, scratchPerWorker)); return; }
            int next = -1;
            Parallelism.For(workers, w =>
            {
                var s = scratch.AsSpan(w * scratchPerWorker, scratchPerWorker);
                int i;
                while ((i = Interlocked.Increment(ref next)) < count) body(i, s);
            });
        }
        finally { pool.Return(scratch); }
    }

    delegate void SpanAction(int item, Span<float> scratch);

    static void Check(in AttentionLayout L, int q, int k, int v, int c, int mask, string contextName)
    {
        if (L.Batch < 0 || L.Heads <= 0 || L.QueryLength < 0 || L.KeyLength < 0 || L.HeadDim <= 0 || L.ValueDim <= 0)
            throw new ArgumentException($"Attention: invalid layout {L}.");
        if (L.QueryStride < L.Heads * L.HeadDim || L.KeyStride < L.Heads * L.HeadDim || L.ValueStride < L.Heads * L.ValueDim || L.ContextStride < L.Heads * L.ValueDim)
            throw new ArgumentException($"Attention: a row stride is narrower than heads × dim in {L}.");
        static long Need(int batch, int len, int stride, int width) => batch == 0 || len == 0 ? 0 : ((long)batch * len - 1) * stride + width;
        if (q < Need(L.Batch, L.QueryLength, L.QueryStride, L.Heads * L.HeadDim)) throw new ArgumentException($"Attention: queries hold {q} values; {L} needs more.");
        if (k < Need(L.Batch, L.KeyLength, L.KeyStride, L.Heads * L.HeadDim)) throw new ArgumentException($"Attention: keys hold {k} values; {L} needs more.");
        if (v < Need(L.Batch, L.KeyLength, L.ValueStride, L.Heads * L.ValueDim)) throw new ArgumentException($"Attention: values hold {v} values; {L} needs more.");
        if (c < Need(L.Batch, L.QueryLength, L.ContextStride, L.Heads * L.ValueDim)) throw new ArgumentException($"Attention: {contextName} holds {c} values; {L} needs more.");
        if (mask != 0 && mask != L.Batch * L.KeyLength) throw new ArgumentException($"Attention: the key mask holds {mask} values; [{L.Batch}, {L.KeyLength}] expected.");
    }
}
