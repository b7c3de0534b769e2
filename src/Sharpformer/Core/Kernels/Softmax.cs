using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>Row-wise softmax and log-softmax over a rows×cols row-major buffer; one row routine (<see cref="RowForward"/>,
/// <see cref="RowBackward"/>) serves whole buffers and the fused attention kernel alike.</summary>
/// <remarks>Forward and Backward split large inputs by rows across their <c>threads</c> argument (≤ 0: every core).</remarks>
public static class Softmax
{
    /// <summary>
    /// y[r, :] = softmax(x[r, :] + mask[r / rowsPerMask, :]) for each row; x and y may alias.
    /// </summary>
    /// <remarks>
    /// mask is additive (0 keeps, a large negative drops), laid out as (rows / rowsPerMask)×cols; pass an
    /// empty span for no mask. rowsPerMask lets one mask row serve many rows — in attention, the scores are
    /// (batch·heads·queries)×keys and the mask is batch×keys, so rowsPerMask = heads·queries.
    /// A row whose every entry is −∞ yields zeros rather than NaN.
    /// </remarks>
    public static unsafe void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols,
        ReadOnlySpan<float> mask = default, int rowsPerMask = 1, int threads = 0)
    {
        Check(x.Length, y.Length, rows, cols, mask.Length, rowsPerMask);
        if (cols == 0 || rows == 0) return;
        int xLen = x.Length, yLen = y.Length, mLen = mask.Length;
        fixed (float* px = x) fixed (float* py = y) fixed (float* pm = mask)
        {
            nint ax = (nint)px, ay = (nint)py, am = (nint)pm;
            Parallelism.Rows(rows, cols, threads, (r0, r1) => ForwardRows(new ReadOnlySpan<float>((float*)ax, xLen), new Span<float>((float*)ay, yLen),
                r0, r1, cols, mLen == 0 ? default : new ReadOnlySpan<float>((float*)am, mLen), rowsPerMask));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ForwardRows(ReadOnlySpan<float> x, Span<float> y, int r0, int r1, int cols, ReadOnlySpan<float> mask, int rowsPerMask)
    {
        for (int r = r0; r < r1; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            var mr = mask.IsEmpty ? default : mask.Slice(r / rowsPerMask * cols, cols);
            RowForward(xr, yr, mr, out _, out _);
        }
    }

    // Halving tree instead of reading 16 lanes one by one (element extraction dominated short rows).
    // Vector*.Max propagates NaN like the scalar tail loop; ±0 ties do not matter since only x − max is used.
    internal static float MaxAcross(Vector512<float> v)
    {
        var m256 = Vector256.Max(v.GetLower(), v.GetUpper());
        var m128 = Vector128.Max(m256.GetLower(), m256.GetUpper());
        m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(2, 3, 0, 1)));
        m128 = Vector128.Max(m128, Vector128.Shuffle(m128, Vector128.Create(1, 0, 3, 2)));
        return m128.ToScalar();
    }

    /// <summary>e^x for x ≤ 0 (softmax after subtracting the row max); 0 below −87.3 and for −∞, NaN stays NaN.</summary>
    /// <remarks>x = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite split of ln2), e^r by its degree-7 Taylor polynomial
    /// (truncation 5e-9 relative), scaled by 2^n through the exponent bits: about 1 ulp.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpNonPositive(Vector512<float> x)
    {
        var underflow = Vector512.LessThan(x, Vector512.Create(-87.3f));
        var xc = Vector512.Max(x, Vector512.Create(-87.3f));
        var n = Vector512.Round(xc * Vector512.Create(1.44269504088896341f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693145751953125f), xc);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-1.428606765330187045e-06f), r);
        var p = Vector512.Create(1f / 5040f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        var scale = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        var e = p * scale.AsSingle();
        return Vector512.ConditionalSelect(underflow, Vector512<float>.Zero, e);
    }

    /// <summary>dx[r,:] = y[r,:] ⊙ (dy[r,:] − ⟨dy[r,:], y[r,:]⟩), the softmax backward from its output y. dx may alias dy.</summary>
    public static unsafe void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols, int threads = 0)
    {
        Check(y.Length, dx.Length, rows, cols, 0, 1);
        CheckGrad(dy.Length, rows, cols);
        if (cols == 0 || rows == 0) return;
        int yLen = y.Length, gLen = dy.Length, dLen = dx.Length;
        fixed (float* py = y) fixed (float* pg = dy) fixed (float* pd = dx)
        {
            nint ay = (nint)py, ag = (nint)pg, ad = (nint)pd;
            Parallelism.Rows(rows, cols, threads, (r0, r1) =>
            {
                var ys = new ReadOnlySpan<float>((float*)ay, yLen); var gs = new ReadOnlySpan<float>((float*)ag, gLen); var ds = new Span<float>((float*)ad, dLen);
                for (int r = r0; r < r1; r++)
                {
                    RowBackward(ys.Slice(r * cols, cols), gs.Slice(r * cols, cols), ds.Slice(r * cols, cols));
                }
            });
        }
    }

    /// <summary>y[r,:] = x[r,:] − logsumexp(x[r,:]); x and y may alias.</summary>
    public static void LogForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check(x.Length, y.Length, rows, cols, 0, 1);
        if (cols == 0) return;
        Span<float> tmp = stackalloc float[Math.Min(cols, ChunkLength)];
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            TensorPrimitives.Subtract(xr, RowLogSumExp(xr, tmp), y.Slice(r * cols, cols));
        }
    }

    /// <summary>logsumexp of one row, max + log Σ exp(x − max) with the sum in double over chunks of <paramref name="tmp"/>'s
    /// length: the statistic <see cref="LogForward"/> subtracts and <see cref="CrossEntropyRows"/> keeps.</summary>
    static float RowLogSumExp(ReadOnlySpan<float> xr, Span<float> tmp)
    {
        float max = TensorPrimitives.Max(xr);
        double sum = 0;
        for (int start = 0; start < xr.Length; start += tmp.Length)
        {
            var part = xr.Slice(start, Math.Min(tmp.Length, xr.Length - start)); var t = tmp[..part.Length];
            TensorPrimitives.Subtract(part, max, t);
            TensorPrimitives.Exp(t, t);
            sum += TensorPrimitives.Sum(t);
        }
        return max + (float)Math.Log(sum);
    }

    /// <summary>
    /// The forward of a cross-entropy over logits x [rows, cols]: lse[r] = logsumexp(x[r, :]) (the same bits as
    /// <see cref="LogForward"/>'s, so log p[r, j] = x[r, j] − lse[r] exactly), rows split across <paramref name="threads"/>.
    /// Keeping one float per row instead of the rows×cols log-probabilities is what lets a 16k-vocabulary head's loss
    /// run without a second logits-sized buffer: <see cref="CrossEntropyBackwardRows"/> recomputes p from x and lse.
    /// </summary>
    public static unsafe void CrossEntropyRows(ReadOnlySpan<float> x, Span<float> lse, int rows, int cols, int threads = 0)
    {
        Check(x.Length, x.Length, rows, cols, 0, 1);
        if (lse.Length < rows) throw new ArgumentException($"cross-entropy over {rows} rows needs {rows} logsumexp floats; got {lse.Length}.", nameof(lse));
        if (cols == 0 || rows == 0) return;
        int xLen = x.Length;
        fixed (float* px = x) fixed (float* pl = lse)
        {
            nint ax = (nint)px, al = (nint)pl;
            Parallelism.Rows(rows, cols, threads, (r0, r1) =>
            {
                var xs = new ReadOnlySpan<float>((float*)ax, xLen); var ls = new Span<float>((float*)al, rows);
                Span<float> tmp = stackalloc float[Math.Min(cols, ChunkLength)];
                for (int r = r0; r < r1; r++) ls[r] = RowLogSumExp(xs.Slice(r * cols, cols), tmp);
            });
        }
    }

    /// <summary>
    /// The backward of a cross-entropy with (label-smoothed) targets: for each row r whose target t = targets[r] is not
    /// <paramref name="ignoreIndex"/>, dx[r, j] (= when <paramref name="accumulate"/> is false, += when true)
    /// exp(x[r, j] − lse[r])·scale − uniform − (j = t ? onTarget : 0); an ignored row gets 0 (is left alone when accumulating).
    /// </summary>
    /// <remarks>exp(x − lse) is softmax(x) recomputed from <see cref="CrossEntropyRows"/>' statistic, in chunks that stay in L1;
    /// rows split across <paramref name="threads"/>. Reference twin: a double-precision loop in the tests.</remarks>
    public static unsafe void CrossEntropyBackwardRows(ReadOnlySpan<float> x, ReadOnlySpan<float> lse, ReadOnlySpan<int> targets, int ignoreIndex,
        float scale, float uniform, float onTarget, Span<float> dx, bool accumulate, int rows, int cols, int threads = 0)
    {
        Check(x.Length, dx.Length, rows, cols, 0, 1);
        if (lse.Length < rows || targets.Length < rows) throw new ArgumentException($"cross-entropy backward over {rows} rows needs {rows} logsumexp floats and targets; got {lse.Length} and {targets.Length}.");
        if (cols == 0 || rows == 0) return;
        int xLen = x.Length, dLen = dx.Length;
        fixed (float* px = x) fixed (float* pl = lse) fixed (int* pt = targets) fixed (float* pd = dx)
        {
            nint ax = (nint)px, al = (nint)pl, at = (nint)pt, ad = (nint)pd;
            Parallelism.Rows(rows, cols, threads, (r0, r1) =>
            {
                var xs = new ReadOnlySpan<float>((float*)ax, xLen); var ls = new ReadOnlySpan<float>((float*)al, rows);
                var ts = new ReadOnlySpan<int>((int*)at, rows); var ds = new Span<float>((float*)ad, dLen);
                Span<float> tmp = stackalloc float[Math.Min(cols, ChunkLength)];
                for (int r = r0; r < r1; r++)
                {
                    var dr = ds.Slice(r * cols, cols);
                    int t = ts[r];
                    if (t == ignoreIndex) { if (!accumulate) dr.Clear(); continue; }
                    var xr = xs.Slice(r * cols, cols);
                    for (int start = 0; start < cols; start += tmp.Length)
                    {
                        int len = Math.Min(tmp.Length, cols - start);
                        var v = tmp[..len];
                        TensorPrimitives.Subtract(xr.Slice(start, len), ls[r], v);   // log p, as LogForward
                        TensorPrimitives.Exp(v, v);
                        TensorPrimitives.Multiply(v, scale, v);
                        if (uniform != 0f) TensorPrimitives.Subtract(v, uniform, v);
                        if ((uint)(t - start) < (uint)len) v[t - start] -= onTarget;
                        if (accumulate) TensorPrimitives.Add(dr.Slice(start, len), v, dr.Slice(start, len));
                        else v.CopyTo(dr.Slice(start, len));
                    }
                }
            });
        }
    }

    /// <summary>dx[r,:] = dy[r,:] − exp(y[r,:])·Σ dy[r,:], the log-softmax backward from its output y. dx may alias dy.</summary>
    public static void LogBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check(y.Length, dx.Length, rows, cols, 0, 1);
        CheckGrad(dy.Length, rows, cols);
        if (cols == 0) return;
        Span<float> tmp = stackalloc float[Math.Min(cols, ChunkLength)];
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * cols, cols); var gr = dy.Slice(r * cols, cols); var dr = dx.Slice(r * cols, cols);
            float s = TensorPrimitives.Sum(gr);
            for (int start = 0; start < cols; start += tmp.Length)
            {
                int len = Math.Min(tmp.Length, cols - start);
                var t = tmp[..len];
                TensorPrimitives.Exp(yr.Slice(start, len), t);
                TensorPrimitives.MultiplyAdd(t, -s, gr.Slice(start, len), dr.Slice(start, len));
            }
        }
    }

    const int ChunkLength = 1024;

    static void CheckGrad(int dyLen, int rows, int cols)
    {
        if (dyLen < (long)rows * cols) throw new ArgumentException($"softmax backward over {rows}×{cols} needs {(long)rows * cols} gradient floats; dy has {dyLen}.", "dy");
    }

    static void Check(int xLen, int yLen, int rows, int cols, int maskLen, int rowsPerMask)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"rows={rows}, cols={cols} must be non-negative.");
        long need = (long)rows * cols;
        if (xLen < need || yLen < need) throw new ArgumentException($"softmax over {rows}×{cols} needs {need} floats; got input {xLen}, output {yLen}.");
        if (maskLen > 0)
        {
            if (rowsPerMask < 1 || rows % rowsPerMask != 0) throw new ArgumentException($"rowsPerMask={rowsPerMask} must divide rows={rows}.");
            if (maskLen < (long)(rows / rowsPerMask) * cols) throw new ArgumentException($"mask holds {maskLen} floats; {rows / rowsPerMask}×{cols} needed.");
        }
    }

    // ---------------------------------------------------------------- single rows with saved statistics (attention)

    /// <summary>
    /// One row: y = x + mask, max = max(y), e = exp(y − max), sum = Σe, y = e·(1/sum); returns max and 1/sum for
    /// <see cref="RowReplay"/>. x and y may alias (the attention kernel works in place). A row that is all −∞ gives zeros
    /// (inv = 0). With <paramref name="normalize"/> false the row is left as e (the caller applies 1/sum later, e.g. to P·V's
    /// rows). The one softmax row routine: <see cref="Forward"/> runs it per row. Reference twin: a double-precision softmax in the tests.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RowForward(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> mask, out float maxOut, out float invOut, bool normalize = true)
    {
        int n = x.Length, j = 0;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref float y0 = ref MemoryMarshal.GetReference(y);
        ref float m0 = ref MemoryMarshal.GetReference(mask);
        bool masked = !mask.IsEmpty;
        // In place without a mask the first pass only reads.
        bool store = masked || !Unsafe.AreSame(ref x0, ref y0);
        var vmax = Vector512.Create(float.NegativeInfinity);
        for (; j <= n - 16; j += 16)
        {
            var v = Vector512.LoadUnsafe(ref x0, (nuint)j);
            if (masked) v += Vector512.LoadUnsafe(ref m0, (nuint)j);
            if (store) v.StoreUnsafe(ref y0, (nuint)j);
            vmax = Vector512.Max(vmax, v);
        }
        float max = MaxAcross(vmax);
        for (; j < n; j++) { float v = x[j] + (masked ? mask[j] : 0f); y[j] = v; if (v > max || float.IsNaN(v)) max = v; }
        if (float.IsNegativeInfinity(max)) { y.Clear(); maxOut = 0f; invOut = 0f; return; }
        var vmx = Vector512.Create(max);
        var vsum0 = Vector512<float>.Zero; var vsum1 = Vector512<float>.Zero;
        for (j = 0; j <= n - 32; j += 32)
        {
            var e0 = ExpNonPositive(Vector512.LoadUnsafe(ref y0, (nuint)j) - vmx);
            var e1 = ExpNonPositive(Vector512.LoadUnsafe(ref y0, (nuint)(j + 16)) - vmx);
            vsum0 += e0; vsum1 += e1;
            e0.StoreUnsafe(ref y0, (nuint)j); e1.StoreUnsafe(ref y0, (nuint)(j + 16));
        }
        for (; j <= n - 16; j += 16)
        {
            var e = ExpNonPositive(Vector512.LoadUnsafe(ref y0, (nuint)j) - vmx);
            vsum0 += e;
            e.StoreUnsafe(ref y0, (nuint)j);
        }
        float sum = Vector512.Sum(vsum0 + vsum1);
        for (; j < n; j++) { float e = ExpScalar(y[j] - max); y[j] = e; sum += e; }
        float inv = 1f / sum;
        maxOut = max; invOut = inv;
        if (!normalize) return;
        var vinv = Vector512.Create(inv);
        for (j = 0; j <= n - 16; j += 16) (Vector512.LoadUnsafe(ref y0, (nuint)j) * vinv).StoreUnsafe(ref y0, (nuint)j);
        for (; j < n; j++) y[j] *= inv;
    }

    /// <summary>The same per-element arithmetic as <see cref="RowForward"/> from its stored max and 1/sum: y = exp(x + mask − max)·inv, bit-identical.</summary>
    internal static void RowReplay(Span<float> x, ReadOnlySpan<float> mask, float max, float inv)
    {
        int n = x.Length, j = 0;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref float m0 = ref MemoryMarshal.GetReference(mask);
        bool masked = !mask.IsEmpty;
        var vmx = Vector512.Create(max); var vinv = Vector512.Create(inv);
        for (; j <= n - 16; j += 16)
        {
            var v = Vector512.LoadUnsafe(ref x0, (nuint)j);
            if (masked) v += Vector512.LoadUnsafe(ref m0, (nuint)j);
            (ExpNonPositive(v - vmx) * vinv).StoreUnsafe(ref x0, (nuint)j);
        }
        for (; j < n; j++) x[j] = ExpScalar(x[j] + (masked ? mask[j] : 0f) - max) * inv;
    }

    // Tails use the vector exp on a single lane so every element goes through the same arithmetic.
    static float ExpScalar(float x) => ExpNonPositive(Vector512.Create(x)).ToScalar();

    /// <summary>dx = y ⊙ (dy − ⟨dy, y⟩) for one row in two 16-wide passes; dx may alias dy. The one softmax-backward row routine.</summary>
    internal static void RowBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int cols = y.Length, j = 0;
        ref float y0 = ref MemoryMarshal.GetReference(y);
        ref float g0 = ref MemoryMarshal.GetReference(dy);
        ref float d0 = ref MemoryMarshal.GetReference(dx);
        var acc = Vector512<float>.Zero;
        for (; j <= cols - 16; j += 16) acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref y0, (nuint)j), Vector512.LoadUnsafe(ref g0, (nuint)j), acc);
        float dot = Vector512.Sum(acc);
        for (; j < cols; j++) dot += y[j] * dy[j];
        var vd = Vector512.Create(dot);
        for (j = 0; j <= cols - 16; j += 16)
            ((Vector512.LoadUnsafe(ref g0, (nuint)j) - vd) * Vector512.LoadUnsafe(ref y0, (nuint)j)).StoreUnsafe(ref d0, (nuint)j);
        for (; j < cols; j++) dx[j] = (dy[j] - dot) * y[j];
    }
}
