using Sharpformer.Kernels;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Tensors;

/// <summary>Result of <see cref="Functional.Attention"/>: the context and, on request, the attention probabilities.</summary>
/// <param name="Context">[batch, queries, heads·headDim], heads concatenated as HF/Keras lay them out.</param>
/// <param name="Probabilities">[batch, heads, queries, keys] softmax output before attention dropout (not differentiable), or null.</param>
public sealed record AttentionResult(Tensor Context, Tensor? Probabilities);

/// <summary>Neural-network functions over tensors, each with its backward rule.</summary>
public static class Functional
{
    /// <summary>The additive mask value HF uses for masked positions (torch.finfo(float32).min).</summary>
    public const float MaskedValue = float.MinValue;

    /// <summary>Softmax along <paramref name="dim"/>.</summary>
    /// <remarks>yᵢ = exp(xᵢ − max x) / Σⱼ exp(xⱼ − max x).</remarks>
    public static Tensor Softmax(Tensor x, int dim = -1) => SoftmaxCore(x, dim, log: false);

    /// <summary>Log-softmax along <paramref name="dim"/>: xᵢ − log Σⱼ exp xⱼ.</summary>
    public static Tensor LogSoftmax(Tensor x, int dim = -1) => SoftmaxCore(x, dim, log: true);

    static Tensor SoftmaxCore(Tensor x, int dim, bool log)
    {
        int d = Tensor.NormDim(dim, x.Rank, log ? "LogSoftmax" : "Softmax");
        if (d != x.Rank - 1) return SoftmaxCore(x.Transpose(d, -1), -1, log).Transpose(d, -1);
        var xc = x.Contiguous();
        int cols = x.Rank == 0 ? 1 : x.Dim(-1), rows = cols == 0 ? 0 : x.Size / cols;
        var y = Tensor.Empty(x.ShapeArray);
        float[] xa = xc.Data, ya = y.Data; int xo = xc.Offset;
        Par.For(rows, cols, (r0, n) =>
        {
            var src = xa.AsSpan(xo + r0 * cols, n * cols); var dst = ya.AsSpan(r0 * cols, n * cols);
            if (log) Kernels.Softmax.LogForward(src, dst, n, cols); else Kernels.Softmax.Forward(src, dst, n, cols);
        });
        if (!Tensor.NeedsGrad(xc)) return y;
        return Tensor.Record(y, log ? "LogSoftmax" : "Softmax", (g, s) => SoftmaxBackward(ya, g, s, rows, cols, log), xc);
    }

    /// <summary>
    /// softmax(scores + mask) over the last dimension in one pass. <paramref name="additiveMask"/> broadcasts to the scores
    /// (e.g. [B,1,1,S] against [B,H,S,S]); it holds 0 to keep and a large negative value to drop, and gets no gradient.
    /// </summary>
    public static Tensor SoftmaxWithMask(Tensor scores, Tensor? additiveMask)
    {
        if (additiveMask == null) return Softmax(scores, -1);
        var xc = scores.Contiguous();
        int cols = scores.Dim(-1), rows = cols == 0 ? 0 : scores.Size / cols;
        var (mask, rowsPerMask) = MaskLayout(additiveMask, xc.ShapeRef, "SoftmaxWithMask");
        var y = Tensor.Empty(scores.ShapeArray);
        MaskedSoftmaxForward(xc.Data, xc.Offset, y.Data, rows, cols, mask, rowsPerMask);
        if (!Tensor.NeedsGrad(xc)) return y;
        var ya = y.Data;
        return Tensor.Record(y, "SoftmaxWithMask", (g, s) => SoftmaxBackward(ya, g, s, rows, cols, log: false), xc);
    }

    // softmax(x + mask) row-parallel. A part may start inside a mask group (one mask row shared by rowsPerMask score rows),
    // so each part walks its rows in runs that stay within one group and hands the kernel that group's mask row alone.
    static void MaskedSoftmaxForward(float[] x, int xo, float[] y, int rows, int cols, float[] mask, int rowsPerMask)
    {
        Par.For(rows, cols, (r0, n) =>
        {
            for (int r = r0, end = r0 + n; r < end;)
            {
                int g = r / rowsPerMask, runEnd = Math.Min(end, (g + 1) * rowsPerMask), len = runEnd - r;
                Kernels.Softmax.Forward(x.AsSpan(xo + r * cols, len * cols), y.AsSpan(r * cols, len * cols), len, cols,
                    mask.AsSpan(g * cols, cols), len);
                r = runEnd;
            }
        });
    }

    static void SoftmaxBackward(float[] y, Tensor g, GradSink s, int rows, int cols, bool log)
    {
        s.Target(0, out float beta);
        var t = s.TargetTensor(0);
        float[] dx = beta == 0f ? t.Data : GC.AllocateUninitializedArray<float>(rows * cols);
        int dxo = beta == 0f ? t.Offset : 0;
        float[] ga = g.Data; int go = g.Offset;
        Par.For(rows, cols, (r0, n) =>
        {
            var yy = y.AsSpan(r0 * cols, n * cols); var gg = ga.AsSpan(go + r0 * cols, n * cols); var dd = dx.AsSpan(dxo + r0 * cols, n * cols);
            if (log) Kernels.Softmax.LogBackward(yy, gg, dd, n, cols); else Kernels.Softmax.Backward(yy, gg, dd, n, cols);
        });
        if (beta != 0f) { var d = t.AsSpan(); TP.Add(d, dx, d); }
    }

    /// <summary>
    /// A mask buffer for the softmax kernel: when the mask's leading dimensions match the scores' and the rest (but the last)
    /// are 1, one mask row serves rowsPerMask consecutive score rows; otherwise the mask is expanded.
    /// </summary>
    static (float[] Mask, int RowsPerMask) MaskLayout(Tensor mask, int[] scoreShape, string op)
    {
        int rank = scoreShape.Length;
        if (mask.Rank > rank) throw ShapeMismatchException.For(op, scoreShape, mask.Shape, "mask has more dimensions than the scores");
        var ms = new int[rank];
        for (int i = 0; i < rank; i++) ms[i] = i < rank - mask.Rank ? 1 : mask.ShapeRef[i - (rank - mask.Rank)];
        if (ms[rank - 1] == scoreShape[rank - 1])
        {
            int j = 0;
            while (j < rank - 1 && ms[j] == scoreShape[j]) j++;
            bool onesAfter = true;
            for (int i = j; i < rank - 1; i++) if (ms[i] != 1) { onesAfter = false; break; }
            if (onesAfter)
            {
                int rowsPerMask = 1;
                for (int i = j; i < rank - 1; i++) rowsPerMask *= scoreShape[i];
                var mc = mask.Detach().Contiguous();
                var arr = mc.Offset == 0 && mc.Data.Length == mc.Size ? mc.Data : mc.ToArray();
                return (arr, Math.Max(rowsPerMask, 1));
            }
        }
        return (mask.Detach().BroadcastTo(scoreShape).ToArray(), 1);
    }

    /// <summary>Layer normalisation over the last dimension (of size weight.Size), as torch.nn.functional.layer_norm.</summary>
    /// <remarks>y = (x − μ) / √(σ² + ε) · weight + bias with the biased variance; mean and 1/σ are cached for the backward.</remarks>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps)
    {
        int cols = weight.Size;
        if (x.Rank == 0 || x.Dim(-1) != cols || bias.Size != cols)
            throw ShapeMismatchException.For("LayerNorm", x.Shape, weight.Shape, $"the last dimension must equal the weight size {cols} (bias has {bias.Size})");
        var xc = x.Contiguous(); var wc = weight.Contiguous(); var bc = bias.Contiguous();
        int rows = x.Size / Math.Max(cols, 1);
        var y = Tensor.Empty(x.ShapeArray);
        bool grad = Tensor.NeedsGrad(xc) || Tensor.NeedsGrad(wc) || Tensor.NeedsGrad(bc);
        var mean = grad ? new float[rows] : null;
        var rstd = grad ? new float[rows] : null;
        float[] xa = xc.Data, ya = y.Data, wa = wc.Data, ba = bc.Data; int xo = xc.Offset, wo = wc.Offset, bo = bc.Offset;
        Par.For(rows, cols, (r0, n) => Kernels.LayerNorm.Forward(xa.AsSpan(xo + r0 * cols, n * cols), wa.AsSpan(wo, cols), ba.AsSpan(bo, cols),
            ya.AsSpan(r0 * cols, n * cols), n, cols, eps, mean == null ? default : mean.AsSpan(r0, n), rstd == null ? default : rstd.AsSpan(r0, n)));
        if (!grad) return y;
        return Tensor.Record(y, "LayerNorm", (g, s) =>
        {
            bool needG = s.Needs(1), needB = s.Needs(2), needX = s.Needs(0);
            float beta = 0f; float[]? dx = null; int dxo = 0;
            if (needX)
            {
                s.Target(0, out beta);
                var t = s.TargetTensor(0);
                if (beta == 0f) { dx = t.Data; dxo = t.Offset; } else dx = GC.AllocateUninitializedArray<float>(rows * cols);
            }
            float[]? dgSum = needG ? new float[cols] : null, dbSum = needB ? new float[cols] : null;
            var gate = new object();
            float[] ga = g.Data; int go = g.Offset;
            Par.For(rows, cols, (r0, n) =>
            {
                float[]? dgp = needG ? new float[cols] : null, dbp = needB ? new float[cols] : null;
                Kernels.LayerNorm.Backward(xa.AsSpan(xo + r0 * cols, n * cols), wa.AsSpan(wo, cols), mean.AsSpan(r0, n), rstd.AsSpan(r0, n),
                    ga.AsSpan(go + r0 * cols, n * cols), dx == null ? default : dx.AsSpan(dxo + r0 * cols, n * cols), dgp, dbp, n, cols);
                lock (gate)
                {
                    if (dgp != null) TP.Add(dgSum, dgp, dgSum);
                    if (dbp != null) TP.Add(dbSum, dbp, dbSum);
                }
            });
            if (needX && beta != 0f) { var d = s.TargetTensor(0).AsSpan(); TP.Add(d, dx, d); }
            if (needG) { var d = s.Target(1, out float b1); if (b1 == 0f) dgSum.CopyTo(d); else TP.Add(d, dgSum, d); }
            if (needB) { var d = s.Target(2, out float b2); if (b2 == 0f) dbSum.CopyTo(d); else TP.Add(d, dbSum, d); }
        }, xc, wc, bc);
    }

    /// <summary>y = x·Wᵀ + b for x [..., in], W [out, in] (torch/HF layout), b [out]: one GEMM with transB, then the bias.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, gelu: false);

    /// <summary>GELU(x·Wᵀ + b) (exact erf GELU, as BERT's intermediate layer) with the bias and activation fused into one pass after the GEMM.</summary>
    public static Tensor LinearGelu(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, gelu: true);

    static Tensor LinearCore(Tensor x, Tensor weight, Tensor? bias, bool gelu)
    {
        string op = gelu ? "LinearGelu" : "Linear";
        if (weight.Rank != 2 || x.Rank == 0 || x.Dim(-1) != weight.Dim(1))
            throw ShapeMismatchException.For(op, x.Shape, weight.Shape, "x's last dimension must equal weight's second dimension (weight is [out, in])");
        int outF = weight.Dim(0), inF = weight.Dim(1);
        if (bias != null && (bias.Rank != 1 || bias.Dim(0) != outF))
            throw ShapeMismatchException.For(op, weight.Shape, bias.Shape, $"bias must be [{outF}]");
        var xc = x.Contiguous(); var wc = weight.Contiguous(); var bc = bias?.Contiguous();
        bool grad = Tensor.NeedsGrad(xc) || Tensor.NeedsGrad(wc) || (bc != null && Tensor.NeedsGrad(bc));
        int rows = x.Size / Math.Max(inF, 1);
        var outShape = x.ShapeArray; outShape[^1] = outF;
        var y = Tensor.Empty(outShape);
        Gemm.Sgemm(false, true, rows, outF, inF, 1f, xc.ContiguousSpan(), Math.Max(inF, 1), wc.ContiguousSpan(), Math.Max(inF, 1), 0f, y.Data, Math.Max(outF, 1));
        float[] ya = y.Data;
        float[]? pre = gelu && grad ? GC.AllocateUninitializedArray<float>(y.Size) : null;   // x·Wᵀ + b, kept for the GELU backward
        if (gelu)
        {
            float[] ba = bc?.Data ?? new float[outF]; int bo = bc?.Offset ?? 0;
            Par.For(rows, outF, (r0, n) => Elementwise.AddBiasGeluErf(ya.AsSpan(r0 * outF, n * outF), ba.AsSpan(bo, outF), n, outF,
                pre == null ? default : pre.AsSpan(r0 * outF, n * outF)));
        }
        else if (bc != null)
        {
            float[] ba = bc.Data; int bo = bc.Offset;
            Par.For(rows, outF, (r0, n) => Elementwise.AddBias(ya.AsSpan(r0 * outF, n * outF), ba.AsSpan(bo, outF), n, outF));
        }
        if (!grad) return y;
        var xd = xc.Detach(); var wd = wc.Detach();
        return Tensor.Record(y, op, (g, s) =>
        {
            ReadOnlySpan<float> gs = g.ContiguousSpan();
            if (pre != null)
            {
                // dPre = dy · GELU'(pre), computed in place over the saved pre-activation
                float[] ga = g.Data; int go = g.Offset;
                Par.For(rows, outF, (r0, n) => Activations.GeluErfBackward(pre.AsSpan(r0 * outF, n * outF), ga.AsSpan(go + r0 * outF, n * outF), pre.AsSpan(r0 * outF, n * outF)));
                gs = pre;
            }
            if (s.Needs(0))   // dx[rows,in] = dy[rows,out]·W[out,in]
            {
                var dx = s.Target(0, out float beta);
                Gemm.Sgemm(false, false, rows, inF, outF, 1f, gs, Math.Max(outF, 1), wd.ContiguousSpan(), Math.Max(inF, 1), beta, dx, Math.Max(inF, 1));
            }
            if (s.Needs(1))   // dW[out,in] += dyᵀ·x
            {
                var dw = s.Target(1, out float beta);
                Gemm.Sgemm(true, false, outF, inF, rows, 1f, gs, Math.Max(outF, 1), xd.ContiguousSpan(), Math.Max(inF, 1), beta, dw, Math.Max(inF, 1));
            }
            if (s.Needs(2)) Elementwise.BiasGradient(gs, s.TargetZeroed(2), rows, outF);
        }, xc, wc, bc);
    }

    /// <summary>Rows of <paramref name="weight"/> [V, D] picked by <paramref name="ids"/>; the result has shape [..idsShape, D].</summary>
    public static Tensor Embedding(Tensor weight, int[] ids, params int[] idsShape) => Embedding(weight, ids, idsShape, null);

    /// <summary>Embedding lookup; the row <paramref name="paddingIdx"/> (if any) receives no gradient, as torch's padding_idx.</summary>
    public static Tensor Embedding(Tensor weight, int[] ids, int[] idsShape, int? paddingIdx)
    {
        if (weight.Rank != 2) throw new ShapeMismatchException($"Embedding: weight must be [rows, dim]; got {Tensor.FormatShape(weight.Shape)}.");
        if (idsShape.Length == 0) idsShape = [ids.Length];
        if (Tensor.CheckedSize(idsShape) != ids.Length)
            throw new ShapeMismatchException($"Embedding: {ids.Length} ids do not fill shape {Tensor.FormatShape(idsShape)}.");
        int rows = weight.Dim(0), dim = weight.Dim(1);
        var wc = weight.Contiguous();
        var y = Tensor.Empty([.. idsShape, dim]);
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows)
                throw new SharpformerException($"Embedding{(weight.Name != null ? $" '{weight.Name}'" : "")}: id {ids[i]} at position {i} is outside the table of {rows} rows. Check that the tokenizer's vocabulary matches the model config (vocab_size, max_position_embeddings, type_vocab_size).");
        Kernels.Embedding.Gather(wc.ContiguousSpan(), rows, dim, ids, y.Data);
        if (!Tensor.NeedsGrad(wc)) return y;
        var idsCopy = (int[])ids.Clone();
        int skip = paddingIdx ?? -1;
        return Tensor.Record(y, "Embedding", (g, s) =>
            Kernels.Embedding.ScatterAdd(g.ContiguousSpan(), idsCopy, s.TargetZeroed(0), rows, dim, skip), wc);
    }

    /// <summary>Inverted dropout: zero each element with probability p and scale the rest by 1/(1−p); identity when not training.</summary>
    /// <remarks>The backward keeps only the mask's seed and regenerates the mask (<see cref="FillDropoutMask"/>), so no mask is stored.</remarks>
    public static Tensor Dropout(Tensor x, float p, bool training, Random rng)
    {
        if (p < 0f || p > 1f) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1].");
        if (!training || p == 0f) return x;
        var xc = x.Contiguous();
        int n = x.Size;
        ulong seed = DropoutSeed(rng);
        var y = Tensor.Empty(x.ShapeArray);
        var mask = System.Buffers.ArrayPool<float>.Shared.Rent(n);
        try
        {
            FillDropoutMask(mask.AsSpan(0, n), p, seed);
            TP.Multiply(xc.ContiguousSpan(), mask.AsSpan(0, n), y.Data);
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(mask); }
        if (!Tensor.NeedsGrad(xc)) return y;
        return Tensor.Record(y, "Dropout", (g, s) =>
        {
            var dx = s.Target(0, out float beta);
            var m = System.Buffers.ArrayPool<float>.Shared.Rent(n);
            try
            {
                var ms = m.AsSpan(0, n);
                FillDropoutMask(ms, p, seed);
                if (beta == 0f) TP.Multiply(g.ContiguousSpan(), ms, dx);
                else TP.MultiplyAdd(g.ContiguousSpan(), ms, dx, dx);
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(m); }
        }, xc);
    }

    /// <summary>
    /// An inverted-dropout mask: each entry is 0 with probability p (to 2⁻²⁴) and 1/(1−p) otherwise. One seed is drawn from
    /// <paramref name="rng"/>; entries come from SplitMix64 over fixed 16K-element chunks, so the mask is the same for any
    /// thread count and is generated in parallel.
    /// </summary>
    internal static float[] DropoutMask(int n, float p, Random rng)
    {
        var mask = GC.AllocateUninitializedArray<float>(n);
        FillDropoutMask(mask, p, DropoutSeed(rng));
        return mask;
    }

    /// <summary>The one draw from <paramref name="rng"/> that determines a dropout mask (see <see cref="FillDropoutMask"/>).</summary>
    internal static ulong DropoutSeed(Random rng) =>
        ((ulong)(uint)rng.Next() << 32) ^ (ulong)(uint)rng.Next() ^ ((ulong)(uint)rng.Next() << 16);

    /// <summary>Writes the dropout mask of <paramref name="seed"/> into <paramref name="mask"/>; the same seed gives the same mask, so a backward can regenerate it instead of keeping it.</summary>
    internal static void FillDropoutMask(Span<float> mask, float p, ulong seed)
    {
        int n = mask.Length;
        float scale = p >= 1f ? 0f : 1f / (1f - p);
        ulong threshold = (ulong)Math.Round(p * 16777216.0);
        const int ChunkSize = 1 << 14;
        int chunks = (n + ChunkSize - 1) / ChunkSize;
        unsafe
        {
            fixed (float* pm = mask)
            {
                nint addr = (nint)pm;
                Par.For(chunks, ChunkSize, (c0, cn) =>
                {
                    var m = new Span<float>((float*)addr, n);
                    for (int c = c0; c < c0 + cn; c++)
                    {
                        ulong state = seed + (ulong)c * 0xD1B54A32D192ED03UL;
                        int end = Math.Min(n, (c + 1) * ChunkSize);
                        for (int i = c * ChunkSize; i < end; i += 2)
                        {
                            state += 0x9E3779B97F4A7C15UL;
                            ulong z = state;
                            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                            z ^= z >> 31;
                            m[i] = (z >> 40) >= threshold ? scale : 0f;
                            if (i + 1 < end) m[i + 1] = ((z >> 16) & 0xFFFFFF) >= threshold ? scale : 0f;
                        }
                    }
                });
            }
        }
    }

    /// <summary>
    /// Scaled dot-product multi-head attention, fused: softmax(Q·Kᵀ/√d + mask) (dropout) · V per head, computed straight from
    /// the [B, S, H·d] projection layout with strided batched GEMMs (no head transposes are materialised).
    /// </summary>
    /// <param name="q">[B, Sq, H·d]</param>
    /// <param name="k">[B, Sk, H·d]</param>
    /// <param name="v">[B, Sk, H·dv]</param>
    /// <param name="heads">H</param>
    /// <param name="additiveMask">broadcastable to [B, H, Sq, Sk] (usually [B, 1, 1, Sk]): 0 keeps, <see cref="MaskedValue"/> drops; or null.</param>
    /// <param name="dropout">attention-probability dropout rate, applied only when <paramref name="training"/>.</param>
    /// <param name="training">whether dropout is active.</param>
    /// <param name="rng">random source for dropout (may be null when not training or dropout is 0).</param>
    /// <param name="returnProbabilities">also return the [B, H, Sq, Sk] probabilities.</param>
    public static AttentionResult Attention(Tensor q, Tensor k, Tensor v, int heads, Tensor? additiveMask = null,
        float dropout = 0f, bool training = false, Random? rng = null, bool returnProbabilities = false)
    {
        if (q.Rank != 3 || k.Rank != 3 || v.Rank != 3) throw ShapeMismatchException.For("Attention", q.Shape, k.Shape, "query/key/value must be [batch, seq, heads·dim]");
        int B = q.Dim(0), Sq = q.Dim(1), Sk = k.Dim(1), HD = q.Dim(2), HDv = v.Dim(2);
        if (k.Dim(0) != B || v.Dim(0) != B || v.Dim(1) != Sk || k.Dim(2) != HD)
            throw ShapeMismatchException.For("Attention", k.Shape, v.Shape, $"keys/values must be [{B}, keys, ...] with key width {HD} (query {Tensor.FormatShape(q.Shape)})");
        if (heads <= 0 || HD % heads != 0 || HDv % heads != 0)
            throw new ShapeMismatchException($"Attention: widths {HD} (query) and {HDv} (value) must be divisible by heads={heads}.");
        int D = HD / heads, Dv = HDv / heads;
        float scale = 1f / MathF.Sqrt(D);
        var qc = q.Contiguous(); var kc = k.Contiguous(); var vc = v.Contiguous();
        int H = heads, ss = Sq * Sk;
        var P = GC.AllocateUninitializedArray<float>(B * H * ss);
        float[] qd = qc.Data, kd = kc.Data, vd = vc.Data;
        int qo = qc.Offset, ko = kc.Offset, vo = vc.Offset;
        for (int b = 0; b < B; b++)
            Gemm.SgemmBatched(false, true, Sq, Sk, D, scale, qd.AsSpan(qo + b * Sq * HD), HD, D, kd.AsSpan(ko + b * Sk * HD), HD, D,
                0f, P.AsSpan(b * H * ss), Sk, ss, H);
        if (additiveMask != null)
        {
            var (mask, rpm) = MaskLayout(additiveMask, [B, H, Sq, Sk], "Attention");
            MaskedSoftmaxForward(P, 0, P, B * H * Sq, Sk, mask, rpm);
        }
        else Par.For(B * H * Sq, Sk, (r0, n) => Kernels.Softmax.Forward(P.AsSpan(r0 * Sk, n * Sk), P.AsSpan(r0 * Sk, n * Sk), n, Sk));

        // With dropout, Pd = P ⊙ mask lives only while the context GEMM runs: the backward regenerates the mask from its seed
        // and rebuilds Pd in the buffer that then becomes dP, so the graph keeps one [B, H, Sq, Sk] buffer (P) per attention.
        bool drop = training && dropout > 0f;
        ulong dropSeed = 0;
        var pool = System.Buffers.ArrayPool<float>.Shared;
        float[] Pd = P;
        if (drop)
        {
            if (rng == null) throw new ArgumentNullException(nameof(rng), "Attention dropout in training needs a Random.");
            if (dropout >= 1f) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Attention dropout must be below 1.");
            dropSeed = DropoutSeed(rng);
            Pd = pool.Rent(P.Length);
            FillDropoutMask(Pd.AsSpan(0, P.Length), dropout, dropSeed);
            TP.Multiply(P, Pd.AsSpan(0, P.Length), Pd.AsSpan(0, P.Length));
        }
        var ctx = Tensor.Empty(B, Sq, HDv);
        try
        {
            for (int b = 0; b < B; b++)
                Gemm.SgemmBatched(false, false, Sq, Dv, Sk, 1f, Pd.AsSpan(b * H * ss), Sk, ss, vd.AsSpan(vo + b * Sk * HDv), HDv, Dv,
                    0f, ctx.Data.AsSpan(b * Sq * HDv), HDv, Dv, H);
        }
        finally { if (drop) pool.Return(Pd); }
        var probs = returnProbabilities ? new Tensor(P, [B, H, Sq, Sk]) : null;
        if (!(Tensor.NeedsGrad(qc) || Tensor.NeedsGrad(kc) || Tensor.NeedsGrad(vc))) return new AttentionResult(ctx, probs);

        var result = Tensor.Record(ctx, "Attention", (g, s) =>
        {
            var gd = g.Data; int go = g.Offset;
            int n = P.Length;
            var dPArr = pool.Rent(n);
            var maskArr = drop ? pool.Rent(n) : null;
            try
            {
                var dP = dPArr.AsSpan(0, n);
                if (s.Needs(2))   // dV = Pdᵀ·dCtx, with Pd rebuilt in the dP buffer first
                {
                    ReadOnlySpan<float> pd = P;
                    if (drop)
                    {
                        FillDropoutMask(maskArr.AsSpan(0, n), dropout, dropSeed);
                        TP.Multiply(P, maskArr.AsSpan(0, n), dP);
                        pd = dP;
                    }
                    var dv = s.Target(2, out float beta);
                    for (int b = 0; b < B; b++)
                        Gemm.SgemmBatched(true, false, Sk, Dv, Sq, 1f, pd.Slice(b * H * ss), Sk, ss, gd.AsSpan(go + b * Sq * HDv), HDv, Dv,
                            beta, dv.Slice(b * Sk * HDv), HDv, Dv, H);
                }
                else if (drop) FillDropoutMask(maskArr.AsSpan(0, n), dropout, dropSeed);
                for (int b = 0; b < B; b++)   // dPd = dCtx·Vᵀ
                    Gemm.SgemmBatched(false, true, Sq, Sk, Dv, 1f, gd.AsSpan(go + b * Sq * HDv), HDv, Dv, vd.AsSpan(vo + b * Sk * HDv), HDv, Dv,
                        0f, dP.Slice(b * H * ss), Sk, ss, H);
                if (drop) TP.Multiply(dP, maskArr.AsSpan(0, n), dP);
                Par.For(B * H * Sq, Sk, (r0, rn) =>   // dP now holds dScores
                    Kernels.Softmax.Backward(P.AsSpan(r0 * Sk, rn * Sk), dPArr.AsSpan(r0 * Sk, rn * Sk), dPArr.AsSpan(r0 * Sk, rn * Sk), rn, Sk));
                if (s.Needs(0))   // dQ = scale·dS·K
                {
                    var dq = s.Target(0, out float beta);
                    for (int b = 0; b < B; b++)
                        Gemm.SgemmBatched(false, false, Sq, D, Sk, scale, dP.Slice(b * H * ss), Sk, ss, kd.AsSpan(ko + b * Sk * HD), HD, D,
                            beta, dq.Slice(b * Sq * HD), HD, D, H);
                }
                if (s.Needs(1))   // dK = scale·dSᵀ·Q
                {
                    var dk = s.Target(1, out float beta);
                    for (int b = 0; b < B; b++)
                        Gemm.SgemmBatched(true, false, Sk, D, Sq, scale, dP.Slice(b * H * ss), Sk, ss, qd.AsSpan(qo + b * Sq * HD), HD, D,
                            beta, dk.Slice(b * Sk * HD), HD, D, H);
                }
            }
            finally
            {
                pool.Return(dPArr);
                if (maskArr != null) pool.Return(maskArr);
            }
        }, qc, kc, vc);
        return new AttentionResult(result, probs);
    }

    /// <summary>An additive mask [B, 1, 1, S] from a 0/1 attention mask [B, S] (1 = attend): 0 where 1, <see cref="MaskedValue"/> where 0 — as HF's extended attention mask.</summary>
    public static Tensor AdditiveMask(ReadOnlySpan<int> attentionMask, int batch, int seq)
    {
        if (attentionMask.Length != batch * seq)
            throw new ShapeMismatchException($"AdditiveMask: {attentionMask.Length} mask values do not fill [{batch}, {seq}].");
        var m = Tensor.Empty(batch, 1, 1, seq);
        for (int i = 0; i < attentionMask.Length; i++) m.Data[i] = attentionMask[i] != 0 ? 0f : MaskedValue;
        return m;
    }
}
