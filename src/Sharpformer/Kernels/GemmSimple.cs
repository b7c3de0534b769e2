namespace Sharpformer.Kernels;

// Placeholder core, correct but unoptimised: the packed, register-blocked, multi-threaded
// implementation replaces these two methods (same signatures) in the kernels work.
public static partial class Gemm
{
    static void SgemmCore(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, int threads)
    {
        for (int i = 0; i < m; i++)
        {
            Span<float> crow = c.Slice(i * ldc, n);
            if (beta == 0f) crow.Clear(); else if (beta != 1f) for (int j = 0; j < n; j++) crow[j] *= beta;
            if (k == 0 || alpha == 0f) continue;
            for (int p = 0; p < k; p++)
            {
                float av = alpha * (transA ? a[p * lda + i] : a[i * lda + p]);
                if (!transB)
                {
                    var brow = b.Slice(p * ldb, n);
                    for (int j = 0; j < n; j++) crow[j] += av * brow[j];
                }
                else
                {
                    for (int j = 0; j < n; j++) crow[j] += av * b[j * ldb + p];
                }
            }
        }
    }

    static void SgemmBatchedCore(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, int threads)
    {
        for (int p = 0; p < batch; p++)
            SgemmCore(transA, transB, m, n, k, alpha, a.Slice((int)(p * strideA)), lda, b.Slice((int)(p * strideB)), ldb,
                beta, c.Slice((int)(p * strideC)), ldc, threads);
    }
}
