using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// SGEMM against a double-precision triple loop. Tolerance per element: 2e-6·√(k+1)·(Σ|α·a·b| + |β·c|),
/// i.e. a few float32 roundings per term accumulated as a random walk, relative to the magnitude of the terms.
/// </summary>
public class GemmTests
{
    static readonly bool[] Bools = [false, true];

    public static IEnumerable<object[]> Isas()
    {
        yield return [nameof(GemmIsa.Portable)];
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported) yield return [nameof(GemmIsa.Avx2)];
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported) yield return [nameof(GemmIsa.Avx512)];
    }

    /// <summary>The reference: C = α·op(A)·op(B) + β·C in double, plus the error scale Σ|α·a·b| + |β·c| per element.</summary>
    static (double[] C, double[] Scale) Reference(bool tA, bool tB, int m, int n, int k, float alpha,
        float[] a, int lda, long offA, float[] b, int ldb, long offB, float beta, float[] c, int ldc, long offC)
    {
        var r = new double[m * n]; var s = new double[m * n];
        // op(A) rows and op(B) columns copied out contiguously in p so the triple loop is a plain dot product.
        var ar = new double[k]; var bc = new double[(long)n * k];
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) bc[(long)j * k + p] = tB ? b[offB + j * ldb + p] : b[offB + p * ldb + j];
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++) ar[p] = tA ? a[offA + p * lda + i] : a[offA + i * lda + p];
            for (int j = 0; j < n; j++)
            {
                double acc = 0, mag = 0;
                long o = (long)j * k;
                for (int p = 0; p < k; p++) { double t = ar[p] * bc[o + p]; acc += t; mag += Math.Abs(t); }
                double old = beta == 0f ? 0 : (double)beta * c[offC + i * ldc + j];
                r[i * n + j] = alpha * acc + old;
                s[i * n + j] = Math.Abs(alpha) * mag + Math.Abs(old);
            }
        }
        return (r, s);
    }

    static float[] Rand(Random rng, long len)
    {
        var x = new float[len];
        for (long i = 0; i < len; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    static void CheckOne(GemmIsa isa, Random rng, bool tA, bool tB, int m, int n, int k, float alpha = 1f, float beta = 0f,
        int padA = 0, int padB = 0, int padC = 0, int threads = 1)
    {
        int lda = Math.Max(1, tA ? m : k) + padA, ldb = Math.Max(1, tB ? k : n) + padB, ldc = n + padC;
        int aRows = tA ? k : m, bRows = tB ? n : k;
        var a = Rand(rng, Math.Max(1, aRows * lda)); var b = Rand(rng, Math.Max(1, bRows * ldb));
        var c = Rand(rng, Math.Max(1, m * ldc));
        if (beta == 0f)
        {
            // beta = 0 must ignore old contents, even NaN; padding columns keep a recognisable value.
            for (int i = 0; i < m; i++) Array.Fill(c, float.NaN, i * ldc, n);
        }
        var (refC, scale) = Reference(tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);
        var before = (float[])c.Clone();
        Gemm.SgemmBatchedWith(isa, tA, tB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, threads);
        AssertClose(refC, scale, c, ldc, m, n, k, $"{isa} tA={tA} tB={tB} m={m} n={n} k={k} α={alpha} β={beta} ld+=({padA},{padB},{padC}) threads={threads}");
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                if (c[i * ldc + j] != before[i * ldc + j])
                    Assert.Fail($"padding column {j} of row {i} was written ({isa} m={m} n={n} k={k})");
    }

    static void AssertClose(double[] refC, double[] scale, float[] c, int ldc, int m, int n, int k, string what, long offC = 0)
    {
        double tolFactor = 2e-6 * Math.Sqrt(k + 1);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double got = c[offC + i * ldc + j], want = refC[i * n + j];
                double tol = tolFactor * scale[i * n + j] + 1e-30;
                if (!(Math.Abs(got - want) <= tol))
                    Assert.Fail($"{what}: C[{i},{j}] = {got}, expected {want} (tolerance {tol:E2})");
            }
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void EveryMFromOneTo67(string isaName)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(1);
        for (int m = 1; m <= 67; m++)
            CheckOne(isa, rng, m % 2 == 1, m % 4 >= 2, m, 37, 19);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void AFewRowsTimesAnUntransposedWeight_EveryRowCountTailAndThreadCount(string isaName)
    {
        // m ≤ 16 with B not transposed streams B in place on AVX-512 (GPT-2's Conv1D while decoding): every m, column tails
        // (n % 16), k tails (k % 4), α/β, padding, and bands split over threads (k·n ≥ 2^16).
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(12);
        for (int m = 1; m <= Gemm.SmallMNoTrans + 1; m++)
            CheckOne(isa, rng, m % 3 == 0, false, m, 16 * (m % 5) + m, 4 * m + m % 4, alpha: m % 2 == 0 ? 1f : -0.5f, beta: (m % 3) switch { 0 => 0f, 1 => 1f, _ => 0.25f },
                padA: m % 2, padB: m % 3, padC: m % 4);
        foreach (int threads in new[] { 1, 2, 3 })
            CheckOne(isa, rng, false, false, threads * 3 - 1, 777, 130, beta: threads == 2 ? 0.5f : 0f, padB: 5, threads: threads);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void EveryNFromOneTo67(string isaName)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(2);
        for (int n = 1; n <= 67; n++)
            CheckOne(isa, rng, n % 4 >= 2, n % 2 == 1, 29, n, 23);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void EveryKFromOneTo67(string isaName)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(3);
        for (int k = 1; k <= 67; k++)
            CheckOne(isa, rng, k % 2 == 1, k % 4 >= 2, 25, 35, k);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void RandomShapesAllTransposesWithPaddingAlphaBeta(string isaName)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(4);
        for (int trial = 0; trial < 24; trial++)
        {
            int m = rng.Next(1, 80), n = rng.Next(1, 80), k = rng.Next(1, 300);
            foreach (bool tA in Bools)
                foreach (bool tB in Bools)
                    CheckOne(isa, rng, tA, tB, m, n, k, alpha: trial % 3 == 0 ? 1f : -0.75f, beta: (trial % 4) switch { 0 => 0f, 1 => 1f, _ => 0.5f },
                        padA: rng.Next(0, 5), padB: rng.Next(0, 5), padC: rng.Next(0, 5));
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void LargeProblemOnTwoThreadsMatches(bool tA, bool tB)
    {
        // 300×500×700 exceeds the parallel threshold and crosses KC and MC block edges; 530×70 splits by rows.
        var rng = new Random(5);
        CheckOne(Gemm.BestIsa, rng, tA, tB, 300, 500, 700, alpha: 0.5f, beta: 0.25f, padA: 3, padB: 1, padC: 2, threads: 2);
        CheckOne(Gemm.BestIsa, rng, tA, tB, 530, 70, 260, threads: 2);
        // Several K slices in the shared packed operand (row bands share B, column bands share A), beta accumulating.
        CheckOne(Gemm.BestIsa, rng, tA, tB, 100, 90, 1700, beta: 0.5f, padB: 2, threads: 2);
        CheckOne(Gemm.BestIsa, rng, tA, tB, 90, 100, 1700, alpha: -1f, padA: 2, threads: 2);
    }

    [Theory]
    [MemberData(nameof(Isas))]
    public void DeepKCrossesSeveralKBlocksWithBeta(string isaName)
    {
        // k = 1700 is cut into several KC slices for every micro-kernel family; later slices accumulate onto C.
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(11);
        CheckOne(isa, rng, false, true, 70, 90, 1700, alpha: 0.5f, beta: 0.5f, padA: 1, padC: 3);
        CheckOne(isa, rng, true, false, 41, 66, 1700, beta: 0f);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ShortSequenceTimesWeightTransposedOnTwoThreads(bool tA)
    {
        // m ≤ 256 with transB streams W unpacked (x·Wᵀ for a short input); n = 1003 ends in a partial 8-row block.
        var rng = new Random(13);
        CheckOne(Gemm.BestIsa, rng, tA, true, 20, 1003, 300, alpha: 0.75f, beta: 0.5f, padA: 1, padB: 3, padC: 2, threads: 2);
        CheckOne(Gemm.BestIsa, rng, tA, true, 32, 1000, 310, threads: 2);
        CheckOne(Gemm.BestIsa, rng, tA, true, 1, 999, 777, threads: 1);
    }

    [Fact]
    public void KZeroOrAlphaZeroScalesCByBeta()
    {
        var rng = new Random(6);
        foreach (var isa in Isas().Select(o => Enum.Parse<GemmIsa>((string)o[0])))
        {
            CheckOne(isa, rng, false, false, 5, 7, 0, beta: 0.5f);
            CheckOne(isa, rng, false, false, 5, 7, 0, beta: 0f);
            CheckOne(isa, rng, true, true, 5, 7, 9, alpha: 0f, beta: 2f);
        }
    }

    [Fact]
    public void PublicSgemmTransBMatchesReference()
    {
        var rng = new Random(7);
        int m = 33, n = 70, k = 45;
        var a = Rand(rng, m * k); var w = Rand(rng, n * k); var c = new float[m * n];
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, w, k, 0f, c, n);
        var (r, s) = Reference(false, true, m, n, k, 1f, a, k, 0, w, k, 0, 0f, c, n, 0);
        AssertClose(r, s, c, n, m, n, k, "public Sgemm x·Wᵀ");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void BatchedWithStridesAndBroadcast(int threads)
    {
        var rng = new Random(8);
        // The last two exceed the parallel threshold: 3 matrices are split inside each, 8 are spread over threads.
        // (40, 50, 300, 4) with transB takes the unpacked-W path, batches spread over threads.
        foreach (var (m, n, k, batch) in new[] { (7, 9, 5, 3), (40, 33, 64, 6), (128, 64, 48, 5), (96, 80, 100, 3), (64, 72, 70, 8), (40, 50, 300, 4) })
            foreach (bool tA in Bools)
                foreach (bool tB in Bools)
                {
                    int lda = (tA ? m : k) + 1, ldb = tB ? k : n, ldc = n + 2;
                    long sizeA = (long)(tA ? k : m) * lda, sizeB = (long)(tB ? n : k) * ldb, sizeC = (long)m * ldc;
                    // A advances per batch with an extra gap, B is broadcast (stride 0), C has a gap too.
                    long strideA = sizeA + 3, strideB = 0, strideC = sizeC + 1;
                    var a = Rand(rng, strideA * batch); var b = Rand(rng, sizeB); var c = Rand(rng, strideC * batch);
                    var c0 = (float[])c.Clone();
                    Gemm.SgemmBatched(tA, tB, m, n, k, 1.5f, a, lda, strideA, b, ldb, strideB, 0.5f, c, ldc, strideC, batch, threads);
                    for (int p = 0; p < batch; p++)
                    {
                        var (r, s) = Reference(tA, tB, m, n, k, 1.5f, a, lda, p * strideA, b, ldb, 0, 0.5f, c0, ldc, p * strideC);
                        AssertClose(r, s, c, ldc, m, n, k, $"batch {p} of {batch} ({m}×{n}×{k}, tA={tA}, tB={tB}, threads={threads})", p * strideC);
                    }
                }
    }

    [Fact]
    public void BatchedInterleavedColumnBlocksLikeAttentionHeads()
    {
        // Q and K are [seq, heads·d]; head p is the column block at offset p·d (stride d, ld heads·d), and the
        // context output is written the same way — strides smaller than a matrix, yet disjoint.
        var rng = new Random(12);
        int seq = 96, heads = 4, d = 64, h = heads * d; // 2.4M multiply-adds: above the parallel threshold
        var q = Rand(rng, seq * h); var k = Rand(rng, seq * h); var ctx = new float[seq * h];
        var scores = new float[heads * seq * seq];
        Gemm.SgemmBatched(false, true, seq, seq, d, 0.5f, q, h, d, k, h, d, 0f, scores, seq, (long)seq * seq, heads, threads: 2);
        Gemm.SgemmBatched(false, false, seq, d, seq, 1f, scores, seq, (long)seq * seq, k, h, d, 0f, ctx, h, d, heads, threads: 2);
        for (int p = 0; p < heads; p++)
        {
            var (rs, ss) = Reference(false, true, seq, seq, d, 0.5f, q, h, p * d, k, h, p * d, 0f, scores, seq, 0);
            AssertClose(rs, ss, scores, seq, seq, seq, d, $"scores head {p}", (long)p * seq * seq);
            var (rc, sc) = Reference(false, false, seq, d, seq, 1f, scores, seq, (long)p * seq * seq, k, h, p * d, 0f, ctx, h, 0);
            AssertClose(rc, sc, ctx, h, seq, d, seq, $"context head {p}", p * d);
        }
    }

    [Fact]
    public void BatchedBroadcastOfA()
    {
        // strideA = 0 shares one A; every batch gets its own B and C.
        var rng = new Random(9);
        int m = 20, n = 50, k = 30, batch = 4;
        var a = Rand(rng, m * k); var b = Rand(rng, (long)k * n * batch); var c = new float[m * n * batch];
        Gemm.SgemmBatched(false, false, m, n, k, 1f, a, k, 0, b, n, (long)k * n, 0f, c, n, (long)m * n, batch, threads: 2);
        for (int p = 0; p < batch; p++)
        {
            var (r, s) = Reference(false, false, m, n, k, 1f, a, k, 0, b, n, (long)p * k * n, 0f, c, n, 0);
            AssertClose(r, s, c, n, m, n, k, $"batch {p}", (long)p * m * n);
        }
    }

    [Fact]
    public void NestedCallFromParallelCallerStaysCorrect()
    {
        var rng = new Random(10);
        int m = 150, n = 140, k = 130;
        var a = Rand(rng, m * k); var b = Rand(rng, k * n);
        var outs = new float[4][];
        Gemm.RunParallel(4, i =>
        {
            outs[i] = new float[m * n];
            Gemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, outs[i], n, threads: 2);
        });
        var (r, s) = Reference(false, false, m, n, k, 1f, a, k, 0, b, n, 0, 0f, outs[0], n, 0);
        foreach (var o in outs) AssertClose(r, s, o, n, m, n, k, "nested");
    }

    [Fact]
    public void BadArgumentsThrowWithNames()
    {
        var x = new float[10];
        var e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 4, 3, 3, 1f, x, 3, new float[9], 3, 0f, new float[12], 3));
        Assert.Contains("A holds 10 floats", e.Message);
        Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 3, 3, 3, 1f, new float[9], 2, new float[9], 3, 0f, new float[9], 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, -1, 3, 3, 1f, x, 3, x, 3, 0f, x, 3));
        Assert.Throws<ArgumentException>(() => Gemm.SgemmBatched(false, false, 2, 2, 2, 1f, new float[8], 2, 4, new float[4], 2, 0, 0f, new float[7], 2, 4, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.SgemmBatched(false, false, 2, 2, 2, 1f, new float[8], 2, -4, new float[4], 2, 0, 0f, new float[8], 2, 4, 2));
        var overlap = Assert.Throws<ArgumentException>(() => Gemm.SgemmBatched(false, false, 2, 2, 2, 1f, new float[8], 2, 4, new float[4], 2, 0, 0f, new float[8], 2, 0, 2));
        Assert.Contains("overlap", overlap.Message);
    }
}
