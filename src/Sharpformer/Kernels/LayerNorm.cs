namespace Sharpformer.Kernels;

/// <summary>Layer normalisation over the last dimension of a rows×cols buffer.</summary>
/// <remarks>y = (x − μ) / √(σ² + ε) · γ + β, with the biased variance σ² = mean((x − μ)²), as PyTorch.</remarks>
public static class LayerNorm
{
    /// <summary>Forward; writes per-row mean and 1/std into <paramref name="mean"/> and <paramref name="rstd"/> (length rows, may be empty to skip) for the backward.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        int rows, int cols, float eps, Span<float> mean = default, Span<float> rstd = default)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            float m = 0f; for (int j = 0; j < cols; j++) m += xr[j]; m /= cols;
            float v = 0f; for (int j = 0; j < cols; j++) { float d = xr[j] - m; v += d * d; } v /= cols;
            float rs = 1f / MathF.Sqrt(v + eps);
            for (int j = 0; j < cols; j++) yr[j] = (xr[j] - m) * rs * gamma[j] + beta[j];
            if (!mean.IsEmpty) mean[r] = m;
            if (!rstd.IsEmpty) rstd[r] = rs;
        }
    }

    /// <summary>
    /// Backward from the cached mean/rstd. dx is overwritten; dgamma and dbeta are accumulated into (+=),
    /// so gradients over several calls add up. Pass empty spans for dgamma/dbeta to skip them.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var gr = dy.Slice(r * cols, cols);
            float m = mean[r], rs = rstd[r];
            float sumG = 0f, sumGx = 0f;
            for (int j = 0; j < cols; j++)
            {
                float xhat = (xr[j] - m) * rs;
                float g = gr[j] * gamma[j];
                sumG += g; sumGx += g * xhat;
                if (!dgamma.IsEmpty) dgamma[j] += gr[j] * xhat;
                if (!dbeta.IsEmpty) dbeta[j] += gr[j];
            }
            if (dx.IsEmpty) continue;
            var dr = dx.Slice(r * cols, cols);
            float invN = 1f / cols;
            for (int j = 0; j < cols; j++)
            {
                float xhat = (xr[j] - m) * rs;
                dr[j] = rs * (gr[j] * gamma[j] - invN * (sumG + xhat * sumGx));
            }
        }
    }
}
