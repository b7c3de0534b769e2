namespace Sharpformer.Kernels;

/// <summary>
/// Single-precision general matrix multiply over row-major spans.
/// </summary>
/// <remarks>
/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, where op(X) = X or Xᵀ.
/// Row-major: element (i, j) of a matrix with leading dimension ld lives at [i·ld + j].
/// When transA is true, A is stored as k×m (leading dimension lda ≥ m); likewise B as n×k when transB.
/// beta = 0 means C is overwritten (its old contents, even NaN, are ignored), as in BLAS.
/// Implementation: GotoBLAS/BLIS-style packing and cache blocking around a 12×32 AVX-512 register tile (6×16 on AVX2,
/// 4×4 scalar elsewhere); x·Wᵀ with at most 256 rows and x·W with at most 16 rows stream W unpacked. Products below 2^21 multiply-adds run on the
/// calling thread; larger ones split C (or the batch) over <c>threads</c> workers, and calls made inside
/// <see cref="Parallelism.For"/> stay single-threaded. Packing buffers come from ArrayPool per call.
/// </remarks>
public static partial class Gemm
{
    /// <summary>C = alpha·op(A)·op(B) + beta·C. <paramref name="threads"/> ≤ 0 means every logical processor.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, int threads = 0)
    {
        CheckArgs(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        SgemmCore(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
    }

    /// <summary>
    /// Batched GEMM: for each p in [0, batch), C_p = alpha·op(A_p)·op(B_p) + beta·C_p where
    /// X_p starts at offset p·strideX of its span. A stride of 0 broadcasts one matrix to every batch.
    /// </summary>
    public static void SgemmBatched(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, int threads = 0)
    {
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be ≥ 0.");
        if (batch == 0) return;
        if (strideA < 0 || strideB < 0 || strideC < 0)
            throw new ArgumentOutOfRangeException(nameof(strideA), $"Batch strides must be non-negative (strideA={strideA}, strideB={strideB}, strideC={strideC}).");
        // Outputs may interleave (e.g. heads as column blocks of one [seq, hidden] matrix: strideC = head size < ldc),
        // but a stride below the row length n always makes the first rows of neighbouring batches overlap.
        if (batch > 1 && m > 0 && n > 0 && strideC < n)
            throw new ArgumentException($"strideC={strideC} makes the {m}×{n} outputs of consecutive batches overlap; it must be at least n={n} (each batch is written in parallel).", nameof(strideC));
        long lastA = strideA * (batch - 1), lastB = strideB * (batch - 1), lastC = strideC * (batch - 1);
        CheckArgs(transA, transB, m, n, k, a.Length - lastA, lda, b.Length - lastB, ldb, c.Length - lastC, ldc);
        SgemmBatchedCore(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, threads);
    }

    internal static void CheckArgs(bool transA, bool transB, int m, int n, int k,
        long aLen, int lda, long bLen, int ldb, long cLen, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM dimensions must be non-negative (m={m}, n={n}, k={k}).");
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols)) throw new ArgumentException($"lda={lda} is smaller than A's row length {aCols}.", nameof(lda));
        if (ldb < Math.Max(1, bCols)) throw new ArgumentException($"ldb={ldb} is smaller than B's row length {bCols}.", nameof(ldb));
        if (ldc < Math.Max(1, n)) throw new ArgumentException($"ldc={ldc} is smaller than C's row length {n}.", nameof(ldc));
        if (m > 0 && k > 0 && aLen < (long)(aRows - 1) * lda + aCols)
            throw new ArgumentException($"A holds {aLen} floats, fewer than a {aRows}×{aCols} matrix with lda={lda} needs.", "a");
        if (n > 0 && k > 0 && bLen < (long)(bRows - 1) * ldb + bCols)
            throw new ArgumentException($"B holds {bLen} floats, fewer than a {bRows}×{bCols} matrix with ldb={ldb} needs.", "b");
        if (m > 0 && n > 0 && cLen < (long)(m - 1) * ldc + n)
            throw new ArgumentException($"C holds {cLen} floats, fewer than a {m}×{n} matrix with ldc={ldc} needs.", "c");
    }
}
