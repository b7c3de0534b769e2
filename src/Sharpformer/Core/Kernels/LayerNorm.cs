using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>Layer normalisation over the last dimension of a rows×cols buffer.</summary>
/// <remarks>y = (x − μ) / √(σ² + ε) · γ + β, with the biased variance σ² = mean((x − μ)²), as PyTorch.
/// Mean and variance are two-pass (no E[x²] − μ² cancellation). Forward splits large inputs by rows across threads.</remarks>
public static class LayerNorm
{
    /// <summary>Forward; writes per-row mean and 1/std into <paramref name="mean"/> and <paramref name="rstd"/> (length rows, may be empty to skip) for the backward. x and y may alias.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int rows, int cols, float eps, Span<float> mean = default, Span<float> rstd = default, int threads = 0)
    {
        Check(rows, cols, x.Length, "x"); Check(rows, cols, y.Length, "y");
        CheckVec(cols, gamma.Length, "gamma"); CheckVec(cols, beta.Length, "beta");
        if (!mean.IsEmpty) CheckVec(rows, mean.Length, "mean");
        if (!rstd.IsEmpty) CheckVec(rows, rstd.Length, "rstd");
        if (cols == 0 || rows == 0) return;
        int xLen = x.Length, yLen = y.Length, gLen = gamma.Length, bLen = beta.Length, mLen = mean.Length, sLen = rstd.Length;
        unsafe
        {
            fixed (float* px = x) fixed (float* pg = gamma) fixed (float* pb = beta) fixed (float* py = y) fixed (float* pm = mean) fixed (float* ps = rstd)
            {
                nint ax = (nint)px, ag = (nint)pg, ab = (nint)pb, ay = (nint)py, am = (nint)pm, aS = (nint)ps;
                Parallelism.Rows(rows, cols, threads, (r0, r1) => ForwardRows(
                    new ReadOnlySpan<float>((float*)ax, xLen), new ReadOnlySpan<float>((float*)ag, gLen), new ReadOnlySpan<float>((float*)ab, bLen),
                    new Span<float>((float*)ay, yLen), r0, r1, cols, eps,
                    mLen == 0 ? default : new Span<float>((float*)am, mLen), sLen == 0 ? default : new Span<float>((float*)aS, sLen)));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ForwardRows(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int r0, int r1, int cols, float eps, Span<float> mean, Span<float> rstd)
    {
        ref float g0 = ref MemoryMarshal.GetReference(gamma);
        ref float b0 = ref MemoryMarshal.GetReference(beta);
        for (int r = r0; r < r1; r++)
        {
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            ref float x0 = ref MemoryMarshal.GetReference(xr);
            ref float y0 = ref MemoryMarshal.GetReference(yr);
            float m = Sum(xr) / cols;
            var vm = Vector512.Create(m);
            var acc = Vector512<float>.Zero;
            int j = 0;
            for (; j <= cols - 16; j += 16) { var d = Vector512.LoadUnsafe(ref x0, (nuint)j) - vm; acc = Vector512.FusedMultiplyAdd(d, d, acc); }
            float v = Vector512.Sum(acc);
            for (; j < cols; j++) { float d = xr[j] - m; v += d * d; }
            v /= cols;
            float rs = 1f / MathF.Sqrt(v + eps);
            var vrs = Vector512.Create(rs);
            j = 0;
            for (; j <= cols - 16; j += 16)
            {
                var xhat = (Vector512.LoadUnsafe(ref x0, (nuint)j) - vm) * vrs;
                Vector512.FusedMultiplyAdd(xhat, Vector512.LoadUnsafe(ref g0, (nuint)j), Vector512.LoadUnsafe(ref b0, (nuint)j)).StoreUnsafe(ref y0, (nuint)j);
            }
            for (; j < cols; j++) yr[j] = MathF.FusedMultiplyAdd((xr[j] - m) * rs, gamma[j], beta[j]);
            if (!mean.IsEmpty) mean[r] = m;
            if (!rstd.IsEmpty) rstd[r] = rs;
        }
    }

    /// <summary>
    /// Backward from the cached mean/rstd. dx is overwritten (may alias dy); dgamma and dbeta are accumulated into (+=),
    /// so gradients over several calls add up. Pass empty spans for dgamma/dbeta (or dx) to skip them.
    /// </summary>
    /// <remarks>With x̂ = (x − μ)·rstd and g = dy·γ: dx = rstd·(g − (Σg + x̂·Σ(g·x̂))/cols), dγ += Σ_rows dy·x̂, dβ += Σ_rows dy.</remarks>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int cols)
    {
        Check(rows, cols, x.Length, "x"); Check(rows, cols, dy.Length, "dy");
        if (!dx.IsEmpty) Check(rows, cols, dx.Length, "dx");
        CheckVec(cols, gamma.Length, "gamma"); CheckVec(rows, mean.Length, "mean"); CheckVec(rows, rstd.Length, "rstd");
        if (!dgamma.IsEmpty) CheckVec(cols, dgamma.Length, "dgamma");
        if (!dbeta.IsEmpty) CheckVec(cols, dbeta.Length, "dbeta");
        if (cols == 0) return;
        ref float g0 = ref MemoryMarshal.GetReference(gamma);
        float invN = 1f / cols;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var gr = dy.Slice(r * cols, cols);
            ref float x0 = ref MemoryMarshal.GetReference(xr);
            ref float dy0 = ref MemoryMarshal.GetReference(gr);
            float m = mean[r], rs = rstd[r];
            var vm = Vector512.Create(m); var vrs = Vector512.Create(rs);
            var accG = Vector512<float>.Zero; var accGx = Vector512<float>.Zero;
            int j = 0;
            for (; j <= cols - 16; j += 16)
            {
                var xhat = (Vector512.LoadUnsafe(ref x0, (nuint)j) - vm) * vrs;
                var d = Vector512.LoadUnsafe(ref dy0, (nuint)j);
                var g = d * Vector512.LoadUnsafe(ref g0, (nuint)j);
                accG += g; accGx = Vector512.FusedMultiplyAdd(g, xhat, accGx);
            }
            float sumG = Vector512.Sum(accG), sumGx = Vector512.Sum(accGx);
            for (; j < cols; j++) { float xhat = (xr[j] - m) * rs; float g = gr[j] * gamma[j]; sumG += g; sumGx += g * xhat; }

            if (!dgamma.IsEmpty)
            {
                ref float dg0 = ref MemoryMarshal.GetReference(dgamma);
                for (j = 0; j <= cols - 16; j += 16)
                {
                    var xhat = (Vector512.LoadUnsafe(ref x0, (nuint)j) - vm) * vrs;
                    Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref dy0, (nuint)j), xhat, Vector512.LoadUnsafe(ref dg0, (nuint)j)).StoreUnsafe(ref dg0, (nuint)j);
                }
                for (; j < cols; j++) dgamma[j] += gr[j] * ((xr[j] - m) * rs);
            }
            if (!dbeta.IsEmpty) System.Numerics.Tensors.TensorPrimitives.Add(dbeta[..cols], gr, dbeta[..cols]);
            if (dx.IsEmpty) continue;
            var dr = dx.Slice(r * cols, cols);
            ref float dx0 = ref MemoryMarshal.GetReference(dr);
            var vG = Vector512.Create(sumG * invN); var vGx = Vector512.Create(sumGx * invN);
            j = 0;
            for (; j <= cols - 16; j += 16)
            {
                var xhat = (Vector512.LoadUnsafe(ref x0, (nuint)j) - vm) * vrs;
                var g = Vector512.LoadUnsafe(ref dy0, (nuint)j) * Vector512.LoadUnsafe(ref g0, (nuint)j);
                (vrs * (g - Vector512.FusedMultiplyAdd(xhat, vGx, vG))).StoreUnsafe(ref dx0, (nuint)j);
            }
            for (; j < cols; j++)
            {
                float xhat = (xr[j] - m) * rs;
                dr[j] = rs * (gr[j] * gamma[j] - (sumG * invN + xhat * sumGx * invN));
            }
        }
    }

    static float Sum(ReadOnlySpan<float> x) => System.Numerics.Tensors.TensorPrimitives.Sum(x);

    static void Check(int rows, int cols, int len, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"layer norm rows={rows}, cols={cols} must be non-negative.");
        if (len < (long)rows * cols) throw new ArgumentException($"layer norm over {rows}×{cols} needs {(long)rows * cols} floats in {name}; it has {len}.", name);
    }

    static void CheckVec(int need, int len, string name)
    {
        if (len < need) throw new ArgumentException($"layer norm: {name} has {len} elements; at least {need} are needed.", name);
    }
}
