using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>Row-wise softmax and log-softmax over a rows×cols row-major buffer.</summary>
/// <remarks>Forward and Backward split large inputs by rows across <see cref="Parallelism.DefaultThreads"/> threads.</remarks>
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
        ReadOnlySpan<float> mask = default, int rowsPerMask = 1)
    {
        Check(x.Length, y.Length, rows, cols, mask.Length, rowsPerMask);
        if (cols == 0 || rows == 0) return;
        int xLen = x.Length, yLen = y.Length, mLen = mask.Length;
        fixed (float* px = x) fixed (float* py = y) fixed (float* pm = mask)
        {
            nint ax = (nint)px, ay = (nint)py, am = (nint)pm;
            Parallelism.Rows(rows, cols, (r0, r1) => ForwardRows(new ReadOnlySpan<float>((float*)ax, xLen), new Span<float>((float*)ay, yLen),
                r0, r1, cols, mLen == 0 ? default : new ReadOnlySpan<float>((float*)am, mLen), rowsPerMask));
        }
    }

    static void ForwardRows(ReadOnlySpan<float> x, Span<float> y, int r0, int r1, int cols, ReadOnlySpan<float> mask, int rowsPerMask)
    {
        for (int r = r0; r < r1; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            if (mask.IsEmpty) { if (!Unsafe.AreSame(ref MemoryMarshal.GetReference(xr), ref MemoryMarshal.GetReference(yr))) xr.CopyTo(yr); }
            else TensorPrimitives.Add(xr, mask.Slice(r / rowsPerMask * cols, cols), yr);
            float max = TensorPrimitives.Max(yr);
            if (float.IsNegativeInfinity(max)) { yr.Clear(); continue; }
            TensorPrimitives.Subtract(yr, max, yr);
            TensorPrimitives.Exp(yr, yr);
            float sum = TensorPrimitives.Sum(yr);
            TensorPrimitives.Multiply(yr, 1f / sum, yr);
        }
    }

    /// <summary>dx[r,:] = y[r,:] ⊙ (dy[r,:] − ⟨dy[r,:], y[r,:]⟩), the softmax backward from its output y. dx may alias dy.</summary>
    public static unsafe void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check(y.Length, dx.Length, rows, cols, 0, 1);
        CheckGrad(dy.Length, rows, cols);
        if (cols == 0 || rows == 0) return;
        int yLen = y.Length, gLen = dy.Length, dLen = dx.Length;
        fixed (float* py = y) fixed (float* pg = dy) fixed (float* pd = dx)
        {
            nint ay = (nint)py, ag = (nint)pg, ad = (nint)pd;
            Parallelism.Rows(rows, cols, (r0, r1) =>
            {
                var ys = new ReadOnlySpan<float>((float*)ay, yLen); var gs = new ReadOnlySpan<float>((float*)ag, gLen); var ds = new Span<float>((float*)ad, dLen);
                for (int r = r0; r < r1; r++)
                {
                    var yr = ys.Slice(r * cols, cols); var gr = gs.Slice(r * cols, cols); var dr = ds.Slice(r * cols, cols);
                    float dot = TensorPrimitives.Dot(yr, gr);
                    // dx = (dy − dot)·y elementwise, so dx may alias dy.
                    TensorPrimitives.AddMultiply(gr, -dot, yr, dr);
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
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            float max = TensorPrimitives.Max(xr);
            double sum = 0;
            for (int start = 0; start < cols; start += tmp.Length)
            {
                var part = xr.Slice(start, Math.Min(tmp.Length, cols - start)); var t = tmp[..part.Length];
                TensorPrimitives.Subtract(part, max, t);
                TensorPrimitives.Exp(t, t);
                sum += TensorPrimitives.Sum(t);
            }
            float lse = max + (float)Math.Log(sum);
            TensorPrimitives.Subtract(xr, lse, yr);
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
}
