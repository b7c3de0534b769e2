using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

// A few rows times a weight stored [k, n] (not transposed): GPT-2's Conv1D during decoding, one row per sequence.
public static unsafe partial class Gemm
{
    /// <summary>Up to this many rows of C, op(A)·B with B not transposed streams B row by row instead of packing it (see <see cref="SmallMNoTransB"/>).</summary>
    internal const int SmallMNoTrans = 16;

    /// <summary>B of at least this many floats is split over threads even when m·n·k is small: streaming it is memory-bound, and
    /// each core brings its own share of the memory bandwidth.</summary>
    internal const long RowStreamParallelFloats = 1 << 16;

    /// <summary>
    /// C = alpha·op(A)·B + beta·C for m ≤ <see cref="SmallMNoTrans"/>, B [k, n] row-major. Packing B would read and write every
    /// weight for almost no reuse, so B is read exactly once, in place: each thread owns a band of C's columns and walks k four rows
    /// of B at a time (four contiguous streams the prefetcher follows), adding α·a(i, p)·B[p, band] into C's band, which stays in L1.
    /// The cost is one pass over B — a decode step's floor.
    /// </summary>
    static void SmallMNoTransB(bool transA, int m, int n, int k, float alpha, float* a, int lda, long strideA,
        float* b, int ldb, long strideB, float beta, float* c, int ldc, long strideC, int batch, int workers)
    {
        int vectors = (n + 15) / 16;
        // At least 8 vectors (128 columns) per band so each row segment is long enough to stream.
        int parts = (long)k * n < RowStreamParallelFloats ? 1 : Math.Max(1, Math.Min(workers, vectors / 8));
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        for (int p = 0; p < batch; p++)
        {
            nint ap = pa + (nint)(p * strideA * sizeof(float)), bp = pb + (nint)(p * strideB * sizeof(float)), cp = pc + (nint)(p * strideC * sizeof(float));
            if (parts == 1) { RowStreamBand(transA, m, k, alpha, (float*)ap, lda, (float*)bp, ldb, beta, (float*)cp, ldc, 0, n); continue; }
            Parallelism.For(parts, w =>
            {
                var (lo, hi) = Parallelism.Range(vectors, w, parts);
                RowStreamBand(transA, m, k, alpha, (float*)ap, lda, (float*)bp, ldb, beta, (float*)cp, ldc, lo * 16, Math.Min(n, hi * 16));
            });
        }
    }

    /// <summary>Columns [j0, j1) of C = alpha·op(A)·B + beta·C.</summary>
    [SkipLocalsInit]
    static void RowStreamBand(bool transA, int m, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int j0, int j1)
    {
        if (j1 <= j0) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (nint)i * ldc + j0, j1 - j0);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) for (int j = 0; j < row.Length; j++) row[j] *= beta;
        }
        int full = j0 + (j1 - j0) / 16 * 16;
        float* s = stackalloc float[SmallMNoTrans * 4];   // α·op(A)(i, p … p + 3)
        int kk = 0;
        for (; kk + 4 <= k; kk += 4)
        {
            for (int i = 0; i < m; i++)
                for (int q = 0; q < 4; q++) s[i * 4 + q] = alpha * (transA ? a[(nint)(kk + q) * lda + i] : a[(nint)i * lda + kk + q]);
            float* b0 = b + (nint)kk * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
            for (int j = j0; j < full; j += 16)
            {
                var w0 = Vector512.Load(b0 + j); var w1 = Vector512.Load(b1 + j); var w2 = Vector512.Load(b2 + j); var w3 = Vector512.Load(b3 + j);
                for (int i = 0; i < m; i++)
                {
                    float* cj = c + (nint)i * ldc + j;
                    float* si = s + i * 4;
                    var acc = Vector512.Load(cj);
                    acc = Avx512F.FusedMultiplyAdd(Vector512.Create(si[0]), w0, acc);
                    acc = Avx512F.FusedMultiplyAdd(Vector512.Create(si[1]), w1, acc);
                    acc = Avx512F.FusedMultiplyAdd(Vector512.Create(si[2]), w2, acc);
                    acc = Avx512F.FusedMultiplyAdd(Vector512.Create(si[3]), w3, acc);
                    acc.Store(cj);
                }
            }
            for (int j = full; j < j1; j++)
                for (int i = 0; i < m; i++)
                {
                    float* si = s + i * 4;
                    // The same fused steps, in the same order, as the vector lanes: a column's value does not depend on where
                    // the band's tail falls, and adding zero-weight keys (padding) changes nothing.
                    float* cij = c + (nint)i * ldc + j;
                    *cij = MathF.FusedMultiplyAdd(si[3], b3[j], MathF.FusedMultiplyAdd(si[2], b2[j], MathF.FusedMultiplyAdd(si[1], b1[j], MathF.FusedMultiplyAdd(si[0], b0[j], *cij))));
                }
        }
        for (; kk < k; kk++)
        {
            float* bp = b + (nint)kk * ldb;
            for (int i = 0; i < m; i++)
            {
                float ai = alpha * (transA ? a[(nint)kk * lda + i] : a[(nint)i * lda + kk]);
                float* ci = c + (nint)i * ldc;
                var av = Vector512.Create(ai);
                int j = j0;
                for (; j < full; j += 16) Avx512F.FusedMultiplyAdd(av, Vector512.Load(bp + j), Vector512.Load(ci + j)).Store(ci + j);
                for (; j < j1; j++) ci[j] = MathF.FusedMultiplyAdd(ai, bp[j], ci[j]);
            }
        }
    }
}
