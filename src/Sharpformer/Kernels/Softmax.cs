namespace Sharpformer.Kernels;

/// <summary>Row-wise softmax and log-softmax over a rows×cols row-major buffer.</summary>
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
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols,
        ReadOnlySpan<float> mask = default, int rowsPerMask = 1)
    {
        Check(x.Length, y.Length, rows, cols, mask.Length, rowsPerMask);
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            var mr = mask.IsEmpty ? default : mask.Slice(r / rowsPerMask * cols, cols);
            float max = float.NegativeInfinity;
            for (int j = 0; j < cols; j++) { float v = xr[j] + (mr.IsEmpty ? 0f : mr[j]); yr[j] = v; if (v > max) max = v; }
            if (float.IsNegativeInfinity(max)) { yr.Clear(); continue; }
            float sum = 0f;
            for (int j = 0; j < cols; j++) { float e = MathF.Exp(yr[j] - max); yr[j] = e; sum += e; }
            float inv = 1f / sum;
            for (int j = 0; j < cols; j++) yr[j] *= inv;
        }
    }

    /// <summary>dx[r,:] = y[r,:] ⊙ (dy[r,:] − ⟨dy[r,:], y[r,:]⟩), the softmax backward from its output y.</summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check(y.Length, dx.Length, rows, cols, 0, 1);
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * cols, cols); var gr = dy.Slice(r * cols, cols); var dr = dx.Slice(r * cols, cols);
            float dot = 0f;
            for (int j = 0; j < cols; j++) dot += yr[j] * gr[j];
            for (int j = 0; j < cols; j++) dr[j] = yr[j] * (gr[j] - dot);
        }
    }

    /// <summary>y[r,:] = x[r,:] − logsumexp(x[r,:]); x and y may alias.</summary>
    public static void LogForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check(x.Length, y.Length, rows, cols, 0, 1);
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            float max = float.NegativeInfinity;
            for (int j = 0; j < cols; j++) if (xr[j] > max) max = xr[j];
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += MathF.Exp(xr[j] - max);
            float lse = max + (float)Math.Log(sum);
            for (int j = 0; j < cols; j++) yr[j] = xr[j] - lse;
        }
    }

    /// <summary>dx[r,:] = dy[r,:] − exp(y[r,:])·Σ dy[r,:], the log-softmax backward from its output y.</summary>
    public static void LogBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check(y.Length, dx.Length, rows, cols, 0, 1);
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * cols, cols); var gr = dy.Slice(r * cols, cols); var dr = dx.Slice(r * cols, cols);
            float s = 0f;
            for (int j = 0; j < cols; j++) s += gr[j];
            for (int j = 0; j < cols; j++) dr[j] = gr[j] - MathF.Exp(yr[j]) * s;
        }
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
