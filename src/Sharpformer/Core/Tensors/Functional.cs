using Sharpformer.Kernels;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Tensors;

/// <summary>Result of <see cref="Functional.Attention"/>: the context and, on request, the attention probabilities.</summary>
/// <param name="Context">[batch, queries, heads·headDim], heads concatenated as HF/Keras lay them out.</param>
/// <param name="Probabilities">[batch, heads, queries, keys] softmax output before attention dropout (not differentiable), or null.</param>
public sealed record AttentionResult(Tensor Context, Tensor? Probabilities);

/// <summary>Neural-network functions over tensors, each with its backward rule.</summary>
public static partial class Functional
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
        // private to the graph (no tensor exposes them), so a scope may recycle them: see TensorScope
        var mean = grad ? TensorScope.RentArray(rows) : null;
        var rstd = grad ? TensorScope.RentArray(rows) : null;
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
            // γ and β gradients sum over rows: one partial per chunk, added in chunk order afterwards, so the bits do not
            // depend on which thread finished first or on the thread count.
            int chunks = Par.Chunks(rows, cols);
            float[]? dgPart = needG ? new float[chunks * cols] : null, dbPart = needB ? new float[chunks * cols] : null;
            float[] ga = g.Data; int go = g.Offset;
            Par.ForChunks(rows, cols, (c, r0, n) =>
                Kernels.LayerNorm.Backward(xa.AsSpan(xo + r0 * cols, n * cols), wa.AsSpan(wo, cols), mean.AsSpan(r0, n), rstd.AsSpan(r0, n),
                    ga.AsSpan(go + r0 * cols, n * cols), dx == null ? default : dx.AsSpan(dxo + r0 * cols, n * cols),
                    dgPart == null ? default : dgPart.AsSpan(c * cols, cols), dbPart == null ? default : dbPart.AsSpan(c * cols, cols), n, cols));
            float[]? dgSum = needG ? new float[cols] : null, dbSum = needB ? new float[cols] : null;
            for (int c = 0; c < chunks; c++)
            {
                if (dgSum != null) TP.Add(dgSum, dgPart.AsSpan(c * cols, cols), dgSum);
                if (dbSum != null) TP.Add(dbSum, dbPart.AsSpan(c * cols, cols), dbSum);
            }
            if (needX && beta != 0f) { var d = s.TargetTensor(0).AsSpan(); TP.Add(d, dx, d); }
            if (needG) { var d = s.Target(1, out float b1); if (b1 == 0f) dgSum.CopyTo(d); else TP.Add(d, dgSum, d); }
            if (needB) { var d = s.Target(2, out float b2); if (b2 == 0f) dbSum.CopyTo(d); else TP.Add(d, dbSum, d); }
        }, xc, wc, bc);
    }

    /// <summary>y = x·Wᵀ + b for x [..., in], W [out, in] (torch/HF layout), b [out]: one GEMM with transB, then the bias.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, gelu: false);

    /// <summary>x·Wᵀ + b through an int8-quantized weight (<see cref="Int8Gemm.LinearAccumulate(ReadOnlySpan{float}, int, Int8PackedWeights, Span{float}, int, Int8Kernel?)"/>, activations quantized per
    /// row): inference only, the result records no gradient.</summary>
    public static Tensor QuantizedLinear(Tensor x, Int8PackedWeights weight, Tensor? bias = null) =>
        PackedLinear("QuantizedLinear", x, weight.Out, weight.In, bias, (xs, rows, ys) => Int8Gemm.LinearAccumulate(xs, rows, weight, ys, ExecutionScope.Threads));

    /// <summary>x·Wᵀ + b through a bf16 weight (<see cref="Bf16Gemm.LinearAccumulate"/>, activations rounded to bf16, fp32 sums):
    /// inference only, the result records no gradient.</summary>
    public static Tensor Bf16Linear(Tensor x, Bf16PackedWeights weight, Tensor? bias = null) =>
        PackedLinear("Bf16Linear", x, weight.Out, weight.In, bias, (xs, rows, ys) => Bf16Gemm.LinearAccumulate(xs, rows, weight, ys, ExecutionScope.Threads));

    delegate void PackedAccumulate(ReadOnlySpan<float> x, int rows, Span<float> y);

    /// <summary>y = bias (or 0) per row, then y += x·Wᵀ by <paramref name="accumulate"/> over the packed weight [outF, inF].</summary>
    static Tensor PackedLinear(string op, Tensor x, int outF, int inF, Tensor? bias, PackedAccumulate accumulate)
    {
        if (x.Rank == 0 || x.Dim(-1) != inF)
            throw ShapeMismatchException.For(op, x.Shape, [outF, inF], "x's last dimension must equal the weight's in-features (weight is [out, in])");
        if (bias != null && (bias.Rank != 1 || bias.Dim(0) != outF))
            throw ShapeMismatchException.For(op, [outF, inF], bias.Shape, $"bias must be [{outF}]");
        var xc = x.Contiguous();
        int rows = x.Size / inF;
        var outShape = x.ShapeArray; outShape[^1] = outF;
        var y = Tensor.Empty(outShape);
        var ys = y.Data.AsSpan(0, y.Size);
        if (bias is null) ys.Clear();
        else
        {
            var b = bias.Contiguous().ContiguousSpan();
            for (int r = 0; r < rows; r++) b.CopyTo(ys.Slice(r * outF, outF));
        }
        accumulate(xc.ContiguousSpan(), rows, ys);
        return y;
    }

    /// <summary>GELU(x·Wᵀ + b) (exact erf GELU, as BERT's intermediate layer) with the bias and activation fused into one pass after the GEMM.</summary>
    public static Tensor LinearGelu(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, gelu: true);

    /// <summary>ReLU(x·Wᵀ + b) (Keras' Dense(activation="relu")), the activation applied in place after the bias; the backward masks by the output.</summary>
    public static Tensor LinearRelu(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, gelu: false, relu: true);

    /// <summary>Output floats per row block of a short-k Linear (128 KiB: the block stays in L2 between its GEMM and its bias pass).</summary>
    const int LinearBlockFloats = 32 * 1024;

    static Tensor LinearCore(Tensor x, Tensor weight, Tensor? bias, bool gelu, bool relu = false)
    {
        string op = gelu ? "LinearGelu" : relu ? "LinearRelu" : "Linear";
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
        float[] ya = y.Data;
        float[]? pre = gelu && grad ? TensorScope.RentArray(y.Size) : null;   // x·Wᵀ + b, kept for the GELU backward
        float[]? ba = bc?.Data ?? (gelu ? new float[outF] : null); int bo = bc?.Offset ?? 0;
        // bias, then the activation, on output rows [r0, r0 + n)
        void Epilogue(int r0, int n)
        {
            var yy = ya.AsSpan(r0 * outF, n * outF);
            if (gelu) { Elementwise.AddBiasGeluErf(yy, ba.AsSpan(bo, outF), n, outF, pre == null ? default : pre.AsSpan(r0 * outF, n * outF)); return; }
            if (ba != null) Elementwise.AddBias(yy, ba.AsSpan(bo, outF), n, outF);
            if (relu) Activations.Relu(yy, yy);
        }
        bool epilogue = ba != null || relu;
        // Mixed precision (ExecutionOptions.Bf16): the three GEMMs of the layer round their operands to bf16 and sum in fp32.
        // bf16 keeps fp32's 8-bit exponent, so gradients neither underflow nor overflow where fp32's would not: unlike fp16,
        // no loss scaling is needed. The weight is packed here, from this step's values, and the packing freed after the GEMM.
        bool bf16 = ExecutionScope.Bf16 && inF > 0 && outF > 0 && rows > 0;
        var profile = OpProfile.Active;
        if (bf16)
        {
            var wp = Bf16PackedWeights.FromFloat(wc.ContiguousSpan(), outF, inF, pooled: true);
            profile?.Lap("fwd", GemmRole("bf16 pack W", inF, outF));
            try
            {
                ya.AsSpan(0, y.Size).Clear();
                Bf16Gemm.LinearAccumulate(xc.ContiguousSpan(), rows, wp, ya, ExecutionScope.Threads);
            }
            finally { wp.Return(); }
            profile?.Lap("fwd", GemmRole("bf16 GEMM x·Wᵀ", inF, outF));
            if (epilogue) Par.For(rows, outF, Epilogue);
        }
        else if (inF >= Gemm.SmallMMinK || inF == 0 || !epilogue)
        {
            // A long k makes the GEMM compute-bound (k multiply-adds per output against one epilogue pass): one call packs W once.
            Gemm.Sgemm(false, true, rows, outF, inF, 1f, xc.ContiguousSpan(), Math.Max(inF, 1), wc.ContiguousSpan(), Math.Max(inF, 1), 0f, ya, Math.Max(outF, 1), ExecutionScope.Threads);
            profile?.Lap("fwd", GemmRole("GEMM x·Wᵀ", inF, outF));
            if (epilogue) Par.For(rows, outF, Epilogue);
        }
        else
        {
            // A short k (the seed model's 32) makes the GEMM memory-bound: each block of rows gets its product and then its
            // bias/activation while the block is still in cache, instead of a second pass over the whole output. Every output
            // element sees the same operations in the same order as GEMM-then-bias, so the result is bit-identical.
            float[] xa = xc.Data, wa = wc.Data; int xo = xc.Offset, wo = wc.Offset;
            int block = Math.Max(12, LinearBlockFloats / outF / 12 * 12);   // a multiple of every micro-kernel's row count
            // one block per chunk, blocks handed out dynamically
            Par.ForBlocks(rows, block, (r, m) =>
            {
                Gemm.Sgemm(false, true, m, outF, inF, 1f, xa.AsSpan(xo + r * inF, m * inF), inF, wa.AsSpan(wo, outF * inF), inF, 0f,
                    ya.AsSpan(r * outF, m * outF), outF, 1);
                Epilogue(r, m);
            });
            profile?.Lap("fwd", GemmRole("GEMM x·Wᵀ + epilogue, by row block", inF, outF));
        }
        if (!grad) return y;
        var xd = xc.Detach(); var wd = wc.Detach();
        return Tensor.Record(y, op, (g, s) =>
        {
            var profile = OpProfile.Active;
            ReadOnlySpan<float> gs = g.ContiguousSpan();
            if (pre != null)
            {
                // dPre = dy · GELU'(pre), computed in place over the saved pre-activation
                float[] ga = g.Data; int go = g.Offset;
                Par.For(rows, outF, (r0, n) => Activations.GeluErfBackward(pre.AsSpan(r0 * outF, n * outF), ga.AsSpan(go + r0 * outF, n * outF), pre.AsSpan(r0 * outF, n * outF)));
                gs = pre;
                profile?.Lap("bwd", "GELU backward");
            }
            float[]? dPre = null;
            if (relu)
            {
                // dPre = dy where the output is positive (y > 0 exactly where x·Wᵀ + b > 0), in a pooled scratch buffer
                dPre = System.Buffers.ArrayPool<float>.Shared.Rent(rows * outF);
                float[] ga = g.Data, dp = dPre; int go = g.Offset;
                Par.For(rows, outF, (r0, n) => Activations.ReluBackward(ya.AsSpan(r0 * outF, n * outF), ga.AsSpan(go + r0 * outF, n * outF), dp.AsSpan(r0 * outF, n * outF)));
                gs = dPre.AsSpan(0, rows * outF);
            }
            if (s.Needs(0))   // dx[rows,in] = dy[rows,out]·W[out,in]
            {
                var dx = s.Target(0, out float beta);
                if (bf16) Bf16InputGradient(gs, rows, wd.ContiguousSpan(), outF, inF, beta, dx);
                else Gemm.Sgemm(false, false, rows, inF, outF, 1f, gs, Math.Max(outF, 1), wd.ContiguousSpan(), Math.Max(inF, 1), beta, dx, Math.Max(inF, 1), ExecutionScope.Threads);
                profile?.Lap("bwd", GemmRole(bf16 ? "bf16 GEMM dX=dY·W (+pack Wᵀ)" : "GEMM dX=dY·W", inF, outF));
            }
            if (s.Needs(1))   // dW[out,in] += dyᵀ·x
            {
                var dw = s.Target(1, out float beta);
                if (bf16)
                {
                    if (beta == 0f) dw.Clear();
                    Bf16Gemm.WeightGradient(gs, xd.ContiguousSpan(), rows, outF, inF, dw, ExecutionScope.Threads);
                }
                else Gemm.Sgemm(true, false, outF, inF, rows, 1f, gs, Math.Max(outF, 1), xd.ContiguousSpan(), Math.Max(inF, 1), beta, dw, Math.Max(inF, 1), ExecutionScope.Threads);
                profile?.Lap("bwd", GemmRole(bf16 ? "bf16 GEMM dW=dYᵀ·X" : "GEMM dW=dYᵀ·X", inF, outF));
            }
            if (s.Needs(2)) Elementwise.BiasGradient(gs, s.TargetZeroed(2), rows, outF);
            if (dPre != null) System.Buffers.ArrayPool<float>.Shared.Return(dPre);
        }, xc, wc, bc);
    }

    /// <summary>An <see cref="OpProfile"/> row name for a GEMM of a linear layer: what it computes and the layer's shape.</summary>
    internal static string GemmRole(string what, int inF, int outF) => $"{what} {inF}→{outF}";

    /// <summary>dx[rows, in] (= when beta is 0, += when 1) dy[rows, out]·W[out, in] in bf16: Wᵀ packed from this step's weight.</summary>
    static void Bf16InputGradient(ReadOnlySpan<float> dy, int rows, ReadOnlySpan<float> w, int outF, int inF, float beta, Span<float> dx)
    {
        if (beta == 0f) dx.Clear();
        var wt = Bf16PackedWeights.FromFloatTransposed(w, outF, inF, pooled: true, ExecutionScope.Threads);
        try { Bf16Gemm.LinearAccumulate(dy, rows, wt, dx, ExecutionScope.Threads); }
        finally { wt.Return(); }
    }

    /// <summary>Rows of <paramref name="weight"/> [V, D] picked by <paramref name="ids"/>; the result has shape [..idsShape, D].</summary>
    public static Tensor Embedding(Tensor weight, int[] ids, params int[] idsShape) => Embedding(weight, ids, idsShape, null);

    /// <summary>Embedding lookup; the row <paramref name="paddingIdx"/> (if any) receives no gradient, as torch's padding_idx.</summary>
    public static Tensor Embedding(Tensor weight, int[] ids, int[] idsShape, int? paddingIdx) => EmbeddingCore(weight, ids, idsShape, paddingIdx, null);

    /// <summary>
    /// weight[ids] + <paramref name="positions"/> in one pass: ids [..., T] pick rows of <paramref name="weight"/> [V, D] and every
    /// row at position t gets positions[t, :] ([T, D]) added, as a token embedding plus a learned position table (the seed model's).
    /// </summary>
    public static Tensor EmbeddingAdd(Tensor weight, int[] ids, int[] idsShape, Tensor positions)
    {
        ArgumentNullException.ThrowIfNull(positions);
        return EmbeddingCore(weight, ids, idsShape, null, positions);
    }

    static Tensor EmbeddingCore(Tensor weight, int[] ids, int[] idsShape, int? paddingIdx, Tensor? positions)
    {
        string op = positions == null ? "Embedding" : "EmbeddingAdd";
        if (weight.Rank != 2) throw new ShapeMismatchException($"{op}: weight must be [rows, dim]; got {Tensor.FormatShape(weight.Shape)}.");
        if (idsShape.Length == 0) idsShape = [ids.Length];
        if (Tensor.CheckedSize(idsShape) != ids.Length)
            throw new ShapeMismatchException($"{op}: {ids.Length} ids do not fill shape {Tensor.FormatShape(idsShape)}.");
        int rows = weight.Dim(0), dim = weight.Dim(1), period = positions == null ? 0 : idsShape[^1];
        if (positions != null && (positions.Rank != 2 || positions.Dim(0) != period || positions.Dim(1) != dim))
            throw ShapeMismatchException.For(op, weight.Shape, positions.Shape, $"positions must be [{period}, {dim}] (ids' last dimension × embedding width)");
        var wc = weight.Contiguous(); var pc = positions?.Contiguous();
        var y = Tensor.Empty([.. idsShape, dim]);
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows)
                throw new SharpformerException($"Embedding{(weight.Name != null ? $" '{weight.Name}'" : "")}: id {ids[i]} at position {i} is outside the table of {rows} rows. Check that the tokenizer's vocabulary matches the model config (vocab_size, max_position_embeddings, type_vocab_size).");
        Kernels.Embedding.GatherAdd(wc.ContiguousSpan(), rows, dim, ids, pc == null ? default : pc.ContiguousSpan(), period, y.Data);
        if (!Tensor.NeedsGrad(wc) && (pc == null || !Tensor.NeedsGrad(pc))) return y;
        var idsCopy = (int[])ids.Clone();
        int skip = paddingIdx ?? -1;
        return Tensor.Record(y, op, (g, s) =>
        {
            if (s.Needs(0)) Kernels.Embedding.ScatterAdd(g.ContiguousSpan(), idsCopy, s.TargetZeroed(0), rows, dim, skip);
            if (pc != null && s.Needs(1)) Kernels.Embedding.SumPeriodicRows(g.ContiguousSpan(), idsCopy.Length, period, dim, s.TargetZeroed(1));
        }, pc == null ? [wc] : [wc, pc]);
    }

    /// <summary>Inverted dropout: zero each element with probability p and scale the rest by 1/(1−p); identity when not training.</summary>
    /// <remarks>The backward keeps only the mask's seed and regenerates the mask (<see cref="Kernels.DropoutMask"/>), so no mask is stored.</remarks>
    public static Tensor Dropout(Tensor x, float p, bool training, Random rng) => DropoutCore(x, null, p, training, rng);

    /// <summary>
    /// <paramref name="residual"/> + Dropout(<paramref name="x"/>) in one pass (a post-norm block's residual branch): the same
    /// mask, the same random draws and the same bits as <see cref="Dropout"/> followed by an add; the residual's gradient is
    /// the incoming one, passed on without a copy.
    /// </summary>
    public static Tensor DropoutAdd(Tensor residual, Tensor x, float p, bool training, Random rng)
    {
        ArgumentNullException.ThrowIfNull(residual);
        if (!residual.ShapeRef.AsSpan().SequenceEqual(x.ShapeRef))
            throw ShapeMismatchException.For("DropoutAdd", residual.Shape, x.Shape, "the residual and the dropped tensor must have the same shape");
        return DropoutCore(x, residual, p, training, rng);
    }

    static Tensor DropoutCore(Tensor x, Tensor? residual, float p, bool training, Random rng)
    {
        if (p < 0f || p > 1f) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1].");
        if (!training || p == 0f) return residual == null ? x : residual.Add(x);
        var xc = x.Contiguous(); var rc = residual?.Contiguous();
        int n = x.Size;
        ulong seed = DropoutMask.Seed(rng);
        long first = FirstEntry(rng, n);
        var y = Tensor.Empty(x.ShapeArray);
        var mask = System.Buffers.ArrayPool<float>.Shared.Rent(n);
        try
        {
            DropoutMask.Fill(mask.AsSpan(0, n), p, seed, ExecutionScope.Threads, first);
            // MultiplyAdd rounds the product before the add (it is not an FMA), as Dropout then Add would
            if (rc == null) TP.Multiply(xc.ContiguousSpan(), mask.AsSpan(0, n), y.Data);
            else TP.MultiplyAdd(xc.ContiguousSpan(), mask.AsSpan(0, n), rc.ContiguousSpan(), y.Data);
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(mask); }
        if (!Tensor.NeedsGrad(xc) && (rc == null || !Tensor.NeedsGrad(rc))) return y;
        return Tensor.Record(y, rc == null ? "Dropout" : "DropoutAdd", (g, s) =>
        {
            if (rc != null && s.Needs(1)) s.Add(1, g, owned: false);
            if (!s.Needs(0)) return;
            var dx = s.Target(0, out float beta);
            var m = System.Buffers.ArrayPool<float>.Shared.Rent(n);
            try
            {
                var ms = m.AsSpan(0, n);
                DropoutMask.Fill(ms, p, seed, ExecutionScope.Threads, first);
                if (beta == 0f) TP.Multiply(g.ContiguousSpan(), ms, dx);
                else TP.MultiplyAdd(g.ContiguousSpan(), ms, dx, dx);
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(m); }
        }, rc == null ? [xc] : [xc, rc]);
    }

    // Where a batch-major tensor of n entries starts in the mask numbering of the batch it is a slice of (TrainingRandom.ExampleSlice):
    // example i of the slice takes the entries example First + i would have there. 0 for anything else.
    static long FirstEntry(Random rng, long n) =>
        rng is TrainingRandom { ExampleSlice: { Count: > 0 } s } && n % s.Count == 0 ? s.First * (n / s.Count) : 0;

    // The slice's first row for attention-probability masks ([B, H, Sq, Sk], batch-major by construction).
    static long FirstRow(Random? rng, int batch) =>
        rng is TrainingRandom { ExampleSlice: { Count: > 0 } s } && s.Count == batch ? s.First : 0;

    /// <summary>
    /// Multi-head scaled dot-product attention, fused: softmax(Q·Kᵀ/√d + key mask [+ causal mask]) (dropout) · V per head,
    /// straight from the [B, S, H·d] projection layout. The one attention of the library: BERT, DistilBERT, the seed model,
    /// the inference fast path (the same kernel under no-grad) and decoders/cross-attention all run <see cref="Kernels.Attention"/>.
    /// </summary>
    /// <param name="q">[B, Sq, H·d]</param>
    /// <param name="k">[B, Sk, H·d] (Sk ≠ Sq for cross-attention)</param>
    /// <param name="v">[B, Sk, H·dv]</param>
    /// <param name="heads">H</param>
    /// <param name="additiveMask">a key-padding mask: [B, Sk], [B, 1, 1, Sk] (HF's extended mask) or [Sk]; 0 keeps,
    /// <see cref="MaskedValue"/> (anything ≤ −1e9) drops; or null.</param>
    /// <param name="dropout">attention-probability dropout rate, applied only when <paramref name="training"/>.</param>
    /// <param name="training">whether dropout is active.</param>
    /// <param name="rng">random source for dropout (may be null when not training or dropout is 0).</param>
    /// <param name="returnProbabilities">also return the [B, H, Sq, Sk] probabilities (before dropout).</param>
    /// <param name="causal">query i attends only to keys j ≤ i + Sk − Sq (a decoder's mask).</param>
    /// <param name="scaling">where 1/√d enters (BERT divides the scores, DistilBERT scales the queries; the same bits when √d is a power of two).</param>
    /// <remarks>
    /// The graph keeps only each row's max and 1/sum ([B, H, Sq]) and the dropout seed; the backward recomputes the
    /// probabilities. With no input requiring a gradient (or inside <see cref="Autograd.NoGrad"/>) nothing is kept.
    /// </remarks>
    public static AttentionResult Attention(Tensor q, Tensor k, Tensor v, int heads, Tensor? additiveMask = null,
        float dropout = 0f, bool training = false, Random? rng = null, bool returnProbabilities = false,
        bool causal = false, AttentionScaling scaling = AttentionScaling.ScaleScores)
    {
        if (q.Rank != 3 || k.Rank != 3 || v.Rank != 3) throw ShapeMismatchException.For("Attention", q.Shape, k.Shape, "query/key/value must be [batch, seq, heads·dim]");
        int B = q.Dim(0), Sq = q.Dim(1), Sk = k.Dim(1), HD = q.Dim(2), HDv = v.Dim(2);
        if (k.Dim(0) != B || v.Dim(0) != B || v.Dim(1) != Sk || k.Dim(2) != HD)
            throw ShapeMismatchException.For("Attention", k.Shape, v.Shape, $"keys/values must be [{B}, keys, ...] with key width {HD} (query {Tensor.FormatShape(q.Shape)})");
        if (heads <= 0 || HD % heads != 0 || HDv % heads != 0)
            throw new ShapeMismatchException($"Attention: widths {HD} (query) and {HDv} (value) must be divisible by heads={heads}.");
        int D = HD / heads, Dv = HDv / heads;
        var (options, divideQueries) = Options(D, scaling, dropout, training, rng, causal, B);
        if (divideQueries) q = q.Div(MathF.Sqrt(D));
        var layout = AttentionLayout.Dense(B, heads, Sq, Sk, D, Dv);
        return AttentionCore([q.Contiguous(), k.Contiguous(), v.Contiguous()], layout, options, KeyMask(additiveMask, B, Sk), returnProbabilities);
    }

    /// <summary>
    /// Self-attention over one fused projection <paramref name="qkv"/> [B, S, 3·H·d] (queries, keys, values side by side in
    /// each row, as the seed model's and GPT-2's c_attn produce them); the context is [B, S, H·d]. Gradients go straight
    /// into the fused layout. Other parameters as <see cref="Attention"/>.
    /// </summary>
    public static AttentionResult SelfAttention(Tensor qkv, int heads, Tensor? additiveMask = null,
        float dropout = 0f, bool training = false, Random? rng = null, bool returnProbabilities = false, bool causal = false)
    {
        if (qkv.Rank != 3 || heads <= 0 || qkv.Dim(2) % (3 * heads) != 0)
            throw new ShapeMismatchException($"SelfAttention: qkv must be [batch, seq, 3·heads·dim] with heads={heads}; got {Tensor.FormatShape(qkv.Shape)}.");
        int B = qkv.Dim(0), S = qkv.Dim(1), HD = qkv.Dim(2) / 3, D = HD / heads;
        var (options, _) = Options(D, AttentionScaling.ScaleScores, dropout, training, rng, causal, B);
        var layout = new AttentionLayout(B, heads, S, S, D, D, 3 * HD, 3 * HD, 3 * HD, HD);
        return AttentionCore([qkv.Contiguous()], layout, options, KeyMask(additiveMask, B, S), returnProbabilities);
    }

    /// <summary>
    /// Cross-attention of an encoder–decoder: queries <paramref name="q"/> [B, Sq, H·d] from the decoder, keys and values side by
    /// side in <paramref name="kv"/> [B, Sk, 2·H·d] (one projection of the encoder memory: keys in the first H·d columns, values in
    /// the last), the memory's padding in <paramref name="additiveMask"/>; the context is [B, Sq, H·d]. The same kernel as
    /// <see cref="Attention"/>; the key/value gradient goes straight into the fused layout. Other parameters as <see cref="Attention"/>.
    /// </summary>
    public static AttentionResult CrossAttention(Tensor q, Tensor kv, int heads, Tensor? additiveMask = null,
        float dropout = 0f, bool training = false, Random? rng = null, bool returnProbabilities = false)
    {
        if (q.Rank != 3 || kv.Rank != 3 || heads <= 0 || q.Dim(2) % heads != 0 || kv.Dim(0) != q.Dim(0) || kv.Dim(2) != 2 * q.Dim(2))
            throw ShapeMismatchException.For("CrossAttention", q.Shape, kv.Shape, $"queries must be [batch, queries, heads·dim] and keys/values [batch, keys, 2·heads·dim] with heads={heads}");
        int B = q.Dim(0), Sq = q.Dim(1), Sk = kv.Dim(1), HD = q.Dim(2), D = HD / heads;
        var (options, _) = Options(D, AttentionScaling.ScaleScores, dropout, training, rng, causal: false, B);
        var layout = new AttentionLayout(B, heads, Sq, Sk, D, D, HD, 2 * HD, 2 * HD, HD);
        return AttentionCore([q.Contiguous(), kv.Contiguous()], layout, options, KeyMask(additiveMask, B, Sk), returnProbabilities);
    }

    static (AttentionOptions Options, bool DivideQueries) Options(int d, AttentionScaling scaling, float dropout, bool training, Random? rng, bool causal, int batch)
    {
        bool drop = training && dropout > 0f;
        ulong seed = 0;
        if (drop)
        {
            if (rng == null) throw new ArgumentNullException(nameof(rng), "Attention dropout in training needs a Random.");
            if (dropout >= 1f) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Attention dropout must be below 1.");
            seed = DropoutMask.Seed(rng);
        }
        var (o, scaleQueries) = AttentionOptions.For(d, scaling);
        return (o with { Causal = causal, DropoutRate = drop ? dropout : 0f, DropoutSeed = seed, DropoutFirstRow = drop ? FirstRow(rng, batch) : 0 }, scaleQueries);
    }

    // The key-padding mask as [B, Sk] floats (a mask of Sk values serves every sample).
    static float[]? KeyMask(Tensor? mask, int batch, int keys)
    {
        if (mask == null) return null;
        var shape = mask.ShapeRef;
        bool middleOnes = true;
        for (int i = 1; i < shape.Length - 1; i++) if (shape[i] != 1) middleOnes = false;
        var m = mask.Detach().Contiguous();
        if (shape.Length >= 1 && shape[^1] == keys && middleOnes)
        {
            if (mask.Size == batch * keys && (shape.Length == 1 ? batch == 1 : shape[0] == batch)) return m.ContiguousSpan().ToArray();
            if (mask.Size == keys)
            {
                var a = new float[batch * keys];
                for (int b = 0; b < batch; b++) m.ContiguousSpan().CopyTo(a.AsSpan(b * keys));
                return a;
            }
        }
        throw ShapeMismatchException.For("Attention", mask.Shape, [batch, 1, 1, keys],
            "the mask must be a key-padding mask [batch, keys], [batch, 1, 1, keys] or [keys]; use causal: true for a decoder's mask");
    }

    // inputs: [q, k, v] (dense layout), [qkv] (fused layout, q/k/v at column offsets 0, H·d, 2·H·d) or [q, kv] (cross-attention,
    // k/v at column offsets 0, H·d of kv).
    static AttentionResult AttentionCore(Tensor[] inputs, AttentionLayout L, AttentionOptions o, float[]? keyMask, bool returnProbabilities)
    {
        bool fused = inputs.Length == 1, cross = inputs.Length == 2;
        int HD = L.Heads * L.HeadDim;
        ReadOnlySpan<float> Q() => inputs[0].ContiguousSpan();
        ReadOnlySpan<float> K() => fused ? inputs[0].ContiguousSpan().Slice(HD) : inputs[1].ContiguousSpan();
        ReadOnlySpan<float> V() => fused ? inputs[0].ContiguousSpan().Slice(2 * HD) : cross ? inputs[1].ContiguousSpan().Slice(HD) : inputs[2].ContiguousSpan();
        bool grad = inputs.Any(Tensor.NeedsGrad);
        int rows = L.Batch * L.Heads * L.QueryLength;
        var ctx = Tensor.Empty(L.Batch, L.QueryLength, L.Heads * L.ValueDim);
        var max = grad ? TensorScope.RentArray(rows) : null;
        var inv = grad ? TensorScope.RentArray(rows) : null;
        var probs = returnProbabilities ? Tensor.Empty(L.Batch, L.Heads, L.QueryLength, L.KeyLength) : null;
        Kernels.Attention.Forward(Q(), K(), V(), ctx.Data, L, o, keyMask, max, inv, probs == null ? default : probs.Data, ExecutionScope.Threads);
        if (!grad) return new AttentionResult(ctx, probs);
        var result = Tensor.Record(ctx, "Attention", (g, s) =>
        {
            var dc = g.ContiguousSpan();
            if (fused)
            {
                var d = s.Target(0, out float beta);
                Kernels.Attention.Backward(Q(), K(), V(), dc, L, o, keyMask, max, inv, d, beta, d.Slice(HD), beta, d.Slice(2 * HD), beta, ExecutionScope.Threads);
                return;
            }
            if (cross)
            {
                float bQuery = 0f, bkv = 0f;
                var dQuery = s.Needs(0) ? s.Target(0, out bQuery) : default;
                var dkv = s.Needs(1) ? s.Target(1, out bkv) : default;
                Kernels.Attention.Backward(Q(), K(), V(), dc, L, o, keyMask, max, inv, dQuery, bQuery, dkv, bkv, dkv.IsEmpty ? default : dkv.Slice(HD), bkv, ExecutionScope.Threads);
                return;
            }
            // The same tensor as two inputs (self-attention on x itself) shares one gradient buffer: the kernel writes the
            // three gradients at once, so those go through separate buffers.
            bool aliased = ReferenceEquals(inputs[0], inputs[1]) || ReferenceEquals(inputs[1], inputs[2]) || ReferenceEquals(inputs[0], inputs[2]);
            if (aliased)
            {
                var grads = new Tensor?[3];
                for (int i = 0; i < 3; i++) if (s.Needs(i)) grads[i] = Tensor.Empty(inputs[i].ShapeArray);
                Kernels.Attention.Backward(Q(), K(), V(), dc, L, o, keyMask, max, inv,
                    grads[0] == null ? default : grads[0]!.Data, 0f, grads[1] == null ? default : grads[1]!.Data, 0f, grads[2] == null ? default : grads[2]!.Data, 0f, ExecutionScope.Threads);
                for (int i = 0; i < 3; i++) if (grads[i] != null) s.Add(i, grads[i]!, owned: true);
                return;
            }
            float bq = 0f, bk = 0f, bv = 0f;
            var dq = s.Needs(0) ? s.Target(0, out bq) : default;
            var dk = s.Needs(1) ? s.Target(1, out bk) : default;
            var dv = s.Needs(2) ? s.Target(2, out bv) : default;
            Kernels.Attention.Backward(Q(), K(), V(), dc, L, o, keyMask, max, inv, dq, bq, dk, bk, dv, bv, ExecutionScope.Threads);
        }, (Tensor?[])inputs.Clone());   // Record nulls the inputs that need no gradient; the backward still reads all three
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
