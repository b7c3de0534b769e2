using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

/// <summary>Which micro-kernel family a GEMM call uses. Tests force each one; production picks the best.</summary>
internal enum GemmIsa { Portable, Avx2, Avx512 }

// Packed, cache-blocked GEMM in the GotoBLAS/BLIS layout:
//   for jc (NC columns of C) → for pc (KC slice of k) → pack B[kc×nc] into NR-wide micro-panels
//     → for ic (MC rows) → pack A[mc×kc] into MR-tall micro-panels
//       → for jr (NR) → for ir (MR) → register tile MR×NR.
// Packing makes all four transpose combinations and any leading dimension look the same to the
// micro-kernel, so x·Wᵀ (transB) runs at the speed of x·W. Threads split C into disjoint row or
// column bands; the operand all bands share is packed once up front (RunSplit), so bands never synchronise.
// Short inputs times Wᵀ (m ≤ 256, k ≥ 256) skip packing W entirely: see SmallMTransB; a few rows times W [k, n]
// (m ≤ 16) stream W once in place: see SmallMNoTransB.
public static unsafe partial class Gemm
{
    /// <summary>Below this many multiply-adds a GEMM runs on the calling thread (forking costs more than it saves).</summary>
    internal const long ParallelThreshold = 1L << 21;

    internal static GemmIsa BestIsa { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? GemmIsa.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? GemmIsa.Avx2
        : GemmIsa.Portable;

    readonly record struct Blocking(int MR, int NR, int KC, int MC, int NC);

    // AVX-512 (tuned on Zen 5: 48 KiB L1d, 1 MiB L2 per core): the 12×32 tile alone runs at ~97% of the FMA peak for any
    // KC from 128 to 768, so KC is as large as possible (768: BERT's k = 768 in one pass, so C is read and written
    // once) with MC = 192 keeping the 576 KiB A block in L2. Measured 4-5% faster than KC = MC = 384.
    static Blocking BlockingFor(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => new(12, 32, 768, 192, 4096),
        GemmIsa.Avx2 => new(6, 16, 256, 192, 4096),
        _ => new(4, 4, 256, 128, 4096),
    };

    /// <summary>Strided view of an operand: element (r, c) of op(X) is at p[r·rs + c·cs].</summary>
    readonly struct Operand(float* p, nint rs, nint cs)
    {
        public readonly float* P = p;
        public readonly nint Rs = rs, Cs = cs;
    }

    static void SgemmCore(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, int threads)
        => SgemmBatchedCore(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, threads, BestIsa);

    static void SgemmBatchedCore(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, int threads)
        => SgemmBatchedCore(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, threads, BestIsa);

    /// <summary>Test hook: the batched GEMM with an explicit micro-kernel family (must be supported by the CPU).</summary>
    internal static void SgemmBatchedWith(GemmIsa isa, bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, int threads)
    {
        if (batch <= 0) return;
        long lastA = strideA * (batch - 1), lastB = strideB * (batch - 1), lastC = strideC * (batch - 1);
        CheckArgs(transA, transB, m, n, k, a.Length - lastA, lda, b.Length - lastB, ldb, c.Length - lastC, ldc);
        SgemmBatchedCore(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, threads, isa);
    }

    static void SgemmBatchedCore(bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batch, int threads, GemmIsa isa)
    {
        if (m == 0 || n == 0 || batch == 0) return;
        int workers = Parallelism.IsInsideParallelRegion ? 1 : Math.Max(1, Parallelism.Resolve(threads));
        long work = (long)m * n * k * batch;
        if (work < ParallelThreshold) workers = 1;

        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
        {
            if (isa == GemmIsa.Avx512 && transB && m <= SmallM && k >= SmallMMinK && k <= 1 << 16 && alpha != 0f)
            {
                SmallMTransB(transA, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC, batch, workers);
                return;
            }
            if (isa == GemmIsa.Avx512 && !transB && m <= SmallMNoTrans && batch == 1 && k > 0 && alpha != 0f)
            {
                // Memory-bound: threads by B's size, not by the (small) number of multiply-adds.
                int streamWorkers = Parallelism.IsInsideParallelRegion ? 1 : Math.Max(1, Parallelism.Resolve(threads));
                SmallMNoTransB(transA, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC, batch, streamWorkers);
                return;
            }
            var job = new Job(isa, BlockingFor(isa), transA, transB, k, alpha, beta,
                pa, lda, strideA, pb, ldb, strideB, pc, ldc, strideC);
            if (workers == 1)
            {
                job.RunBatches(0, batch, 0, m, 0, n);
                return;
            }
            if (batch >= workers && (batch % workers == 0 || batch >= 4 * workers))
            {
                // Independent matrices (attention's many small products): contiguous batch ranges, four per worker,
                // handed out dynamically.
                // A few large matrices that do not divide evenly are split inside each matrix instead (below).
                int chunks = Math.Min(batch, workers * 4);
                Parallelism.ForDynamic(chunks, workers, ch =>
                {
                    var (lo, hi) = Parallelism.Range(batch, ch, chunks);
                    job.RunBatches(lo, hi, 0, m, 0, n);
                });
                return;
            }
            // Few large matrices: split C of each into row bands (sharing packed B) or column bands (sharing packed A),
            // whichever side is longer. The shared operand is packed once, cooperatively; then the bands are handed out
            // dynamically in several chunks per thread, so a thread that is descheduled (a busy shared machine) does not
            // hold the whole product back, and no chunk re-packs anything another chunk packed.
            var blk = job.Blk;
            bool splitN = n >= m;
            int units = splitN ? (n + blk.NR - 1) / blk.NR : (m + blk.MR - 1) / blk.MR;
            int parts = Math.Min(workers, units);
            for (int p = 0; p < batch; p++)
            {
                if (parts <= 1 || k == 0 || alpha == 0f) { job.RunBatches(p, p + 1, 0, m, 0, n); continue; }
                job.RunSplit(p, m, n, splitN, units, parts);
            }
        }
    }

    internal static void RunParallel(int parts, Action<int> body) => Parallelism.For(parts, body);

    /// <summary>Up to this many rows of C, x·Wᵀ runs without packing W (see <see cref="SmallMTransB"/>).</summary>
    /// <remarks>Measured (one core, CPU time): the direct path matches or beats packing up to m = 256
    /// (64×768·Wᵀ[3072]: 195 vs 105 GFLOP/s; 256×768·Wᵀ[3072]: 200 vs 187) and loses 5-15% at m = 1024.</remarks>
    internal const int SmallM = 256;

    /// <summary>The direct path needs a long k: its per-tile overhead (a transposed write of C) is paid every k steps, so for
    /// attention's k = 64 the packed path is 2.5× faster (96×128×64·128ᵀ: 191 vs 73 GFLOP/s).</summary>
    internal const int SmallMMinK = 256;

    /// <summary>
    /// C = alpha·op(A)·Wᵀ + beta·C for m ≤ <see cref="SmallM"/> (a short batch through a Linear layer). Packing W would touch
    /// every weight twice for little reuse, so the product is computed transposed, Cᵀ = W·op(A)ᵀ: op(A)ᵀ (k×m, small) is packed
    /// once as 32-wide panels (the last 16 wide when that suffices) and W is streamed in place, 8 rows at a time, by <see cref="GemmMicroKernels.Avx512RowsTile"/>
    /// (measured 4-6× faster than packing W for m = 16, e.g. 16×768·(3072×768)ᵀ: 2.6 → 0.45 ms on one core).
    /// </summary>
    static void SmallMTransB(bool transA, int m, int n, int k, float alpha, float* a, int lda, long strideA,
        float* w, int ldw, long strideW, float beta, float* c, int ldc, long strideC, int batch, int workers)
    {
        long work = (long)m * n * k * batch;
        if (workers > 1 && work >= ParallelThreshold && batch >= workers && (batch % workers == 0 || batch >= 4 * workers))
        {
            // Many small products (attention heads): whole batches per thread, as in the packed path.
            nint pa = (nint)a, pw = (nint)w, pc = (nint)c;
            int chunks = Math.Min(batch, workers * 4);
            Parallelism.ForDynamic(chunks, workers, ch =>
            {
                var (lo, hi) = Parallelism.Range(batch, ch, chunks);
                SmallMTransBRange(transA, m, n, k, alpha, (float*)pa, lda, strideA, (float*)pw, ldw, strideW, beta, (float*)pc, ldc, strideC, lo, hi, 1);
            });
            return;
        }
        SmallMTransBRange(transA, m, n, k, alpha, a, lda, strideA, w, ldw, strideW, beta, c, ldc, strideC, 0, batch, workers);
    }

    /// <summary>Batches [b0, b1) of <see cref="SmallMTransB"/>; each product splits its W rows over up to <paramref name="workers"/> threads.</summary>
    static void SmallMTransBRange(bool transA, int m, int n, int k, float alpha, float* a, int lda, long strideA,
        float* w, int ldw, long strideW, float beta, float* c, int ldc, long strideC, int b0, int b1, int workers)
    {
        const int Rows = 8;
        // op(A)ᵀ is packed as 32-wide panels (the last one 16 wide when 16 columns suffice), all of them kept for the call.
        int panels = (m + 31) / 32;
        int lastWidth = m - (panels - 1) * 32 <= 16 ? 16 : 32;
        float[] panelBuf = ArrayPool<float>.Shared.Rent(panels * k * 32 + 16);
        // W narrower than one 8-row block is copied into a zero-padded block so the kernel never reads past it.
        float[]? smallW = n < Rows ? ArrayPool<float>.Shared.Rent(Rows * k) : null;
        try
        {
            fixed (float* rawPanel = panelBuf) fixed (float* smallWp = smallW)
            {
                nint panel = (nint)Align64(rawPanel), sw = (nint)smallWp;
                int blocks = (n + Rows - 1) / Rows;
                for (int bi = b0; bi < b1; bi++)
                {
                    float* ap = a + bi * strideA; float* wp = w + bi * strideW; float* cp = c + bi * strideC;
                    // op(A)ᵀ as a k×m "B" operand: element (p, i) = op(A)(i, p).
                    var opAT = transA ? new Operand(ap, lda, 1) : new Operand(ap, 1, lda);
                    for (int q = 0; q < panels; q++)
                    {
                        int width = q == panels - 1 ? lastWidth : 32;
                        PackB(opAT, 0, k, q * 32, Math.Min(32, m - q * 32), width, (float*)panel + (nint)q * k * 32);
                    }
                    nint wRows = (nint)wp; nint ldRows = ldw;
                    if (smallW != null)
                    {
                        var dst = new Span<float>((float*)sw, Rows * k);
                        dst.Clear();
                        for (int j = 0; j < n; j++) new ReadOnlySpan<float>(wp + (nint)j * ldw, k).CopyTo(dst.Slice(j * k, k));
                        wRows = sw; ldRows = k;
                    }
                    nint cpn = (nint)cp;
                    int parts = (long)m * n * k < ParallelThreshold ? 1 : Math.Min(workers, blocks);
                    int chunks = parts <= 1 ? 1 : Math.Min(blocks, parts * 4);
                    Parallelism.ForDynamic(chunks, parts, part =>
                    {
                        float* t = stackalloc float[Rows * 32 + 16];
                        float* tile = Align64(t);
                        var (lo, hi) = Parallelism.Range(blocks, part, chunks);
                        for (int blk = lo; blk < hi; blk++)
                        {
                            int j0 = blk * Rows;
                            // The last partial block is computed as the final 8 rows of W; only its new rows are written.
                            int start = smallW != null ? 0 : Math.Min(j0, n - Rows);
                            int jEnd = Math.Min(n, j0 + Rows);
                            float* wBlock = (float*)wRows + (nint)start * ldRows;
                            // Every panel reuses the same 8 rows of W while they are in L1/L2.
                            for (int q = 0; q < panels; q++)
                            {
                                int width = q == panels - 1 ? lastWidth : 32;
                                float* pq = (float*)panel + (nint)q * k * 32;
                                if (width == 16) GemmMicroKernels.Avx512RowsTile16(k, wBlock, ldRows, pq, tile, 16);
                                else GemmMicroKernels.Avx512RowsTile(k, wBlock, ldRows, pq, tile, 32);
                                int i0 = q * 32, i1 = Math.Min(m, i0 + 32);
                                for (int i = i0; i < i1; i++)
                                {
                                    float* crow = (float*)cpn + (nint)i * ldc;
                                    for (int j = j0; j < jEnd; j++)
                                    {
                                        float v = alpha * tile[(j - start) * width + (i - i0)];
                                        crow[j] = beta == 0f ? v : v + beta * crow[j];
                                    }
                                }
                            }
                        }
                    });
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(panelBuf);
            if (smallW != null) ArrayPool<float>.Shared.Return(smallW);
        }
    }

    sealed class Job(GemmIsa isa, Blocking blk, bool transA, bool transB, int k, float alpha, float beta,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC)
    {
        public readonly Blocking Blk = blk;

        /// <summary>C rows [m0,m1) × cols [n0,n1) of batches [b0,b1), with packing buffers owned by this call.</summary>
        public void RunBatches(int b0, int b1, int m0, int m1, int n0, int n1)
        {
            int kcMax = KcFor(k);
            int mcMax = Math.Min(Blk.MC, RoundUp(m1 - m0, Blk.MR));
            int ncMax = Math.Min(Blk.NC, RoundUp(n1 - n0, Blk.NR));
            // 16 floats of slack so each buffer can start on a 64-byte boundary.
            int aLen = mcMax * kcMax + 16, bLen = ncMax * kcMax + 16;
            float[] bufA = ArrayPool<float>.Shared.Rent(aLen), bufB = ArrayPool<float>.Shared.Rent(bLen);
            try
            {
                fixed (float* rawA = bufA) fixed (float* rawB = bufB)
                {
                    float* packA = Align64(rawA), packB = Align64(rawB);
                    for (int p = b0; p < b1; p++)
                    {
                        var opA = transA ? new Operand(a + p * strideA, 1, lda) : new Operand(a + p * strideA, lda, 1);
                        var opB = transB ? new Operand(b + p * strideB, 1, ldb) : new Operand(b + p * strideB, ldb, 1);
                        Macro(opA, opB, c + p * strideC, m0, m1, n0, n1, kcMax, packA, packB, null, 0, null, 0);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(bufA);
                ArrayPool<float>.Shared.Return(bufB);
            }
        }

        /// <summary>
        /// One matrix on <paramref name="parts"/> threads: the operand every band needs (all of A for column bands, all of
        /// B for row bands) is packed once into a shared buffer, split by panels; then the bands are computed in chunks,
        /// each packing only its own part of the other operand.
        /// </summary>
        public void RunSplit(int bi, int m, int n, bool splitN, int units, int parts)
        {
            int kcMax = KcFor(k);
            int MR = Blk.MR, NR = Blk.NR;
            var opA = transA ? new Operand(a + bi * strideA, 1, lda) : new Operand(a + bi * strideA, lda, 1);
            var opB = transB ? new Operand(b + bi * strideB, 1, ldb) : new Operand(b + bi * strideB, ldb, 1);
            nint cb = (nint)(c + bi * strideC);
            // Shared layout: the K slice starting at pc occupies [pc·padded, (pc + kc)·padded); inside it the panel of
            // rows (columns) starting at r sits at r·kc.
            int padded = splitN ? RoundUp(m, MR) : RoundUp(n, NR);
            long sharedLen = (long)padded * k + 16;
            if (sharedLen > Array.MaxLength)
            {
                RunParallel(parts, w =>
                {
                    int u0 = (int)((long)units * w / parts), u1 = (int)((long)units * (w + 1) / parts);
                    if (splitN) RunBatches(bi, bi + 1, 0, m, u0 * NR, Math.Min(n, u1 * NR));
                    else RunBatches(bi, bi + 1, u0 * MR, Math.Min(m, u1 * MR), 0, n);
                });
                return;
            }
            float[] shared = ArrayPool<float>.Shared.Rent((int)sharedLen);
            try
            {
                fixed (float* raw = shared)
                {
                    nint sp = (nint)Align64(raw);
                    int packUnits = splitN ? (m + MR - 1) / MR : (n + NR - 1) / NR;
                    int packParts = Math.Min(parts, packUnits);
                    RunParallel(packParts, w =>
                    {
                        int u0 = (int)((long)packUnits * w / packParts), u1 = (int)((long)packUnits * (w + 1) / packParts);
                        float* s0 = (float*)sp;
                        for (int pc = 0; pc < k; pc += kcMax)
                        {
                            int kc = Math.Min(kcMax, k - pc);
                            if (splitN)
                            {
                                int r0 = u0 * MR, r1 = Math.Min(m, u1 * MR);
                                if (r1 > r0) PackA(opA, r0, r1 - r0, pc, kc, MR, s0 + (nint)pc * padded + (nint)r0 * kc);
                            }
                            else
                            {
                                int j0 = u0 * NR, j1 = Math.Min(n, u1 * NR);
                                if (j1 > j0) PackB(opB, pc, kc, j0, j1 - j0, NR, s0 + (nint)pc * padded + (nint)j0 * kc);
                            }
                        }
                    });
                    int chunks = Math.Min(units, parts * 4);
                    Parallelism.ForDynamic(chunks, parts, ch =>
                    {
                        var (u0, u1) = Parallelism.Range(units, ch, chunks);
                        if (splitN) RunBand(opA, opB, (float*)cb, 0, m, u0 * NR, Math.Min(n, u1 * NR), kcMax, (float*)sp, padded, null, 0);
                        else RunBand(opA, opB, (float*)cb, u0 * MR, Math.Min(m, u1 * MR), 0, n, kcMax, null, 0, (float*)sp, padded);
                    });
                }
            }
            finally { ArrayPool<float>.Shared.Return(shared); }
        }

        /// <summary>One band of C; only the operand that is not shared is packed, into a buffer of its own.</summary>
        void RunBand(Operand opA, Operand opB, float* cb, int m0, int m1, int n0, int n1, int kcMax,
            float* sharedA, int padA, float* sharedB, int padB)
        {
            if (m1 <= m0 || n1 <= n0) return;
            int len = sharedA != null
                ? Math.Min(Blk.NC, RoundUp(n1 - n0, Blk.NR)) * kcMax + 16
                : Math.Min(Blk.MC, RoundUp(m1 - m0, Blk.MR)) * kcMax + 16;
            float[] own = ArrayPool<float>.Shared.Rent(len);
            try
            {
                fixed (float* raw = own)
                {
                    float* p = Align64(raw);
                    if (sharedA != null) Macro(opA, opB, cb, m0, m1, n0, n1, kcMax, null, p, sharedA, padA, null, 0);
                    else Macro(opA, opB, cb, m0, m1, n0, n1, kcMax, p, null, null, 0, sharedB, padB);
                }
            }
            finally { ArrayPool<float>.Shared.Return(own); }
        }

        int KcFor(int kk)
        {
            // Equal slices no larger than KC, so k = KC + 1 does not leave a one-column tail.
            int slices = Math.Max(1, (kk + Blk.KC - 1) / Blk.KC);
            return Math.Max(1, (kk + slices - 1) / slices);
        }

        /// <summary>
        /// The blocked loops over C rows [m0,m1) × cols [n0,n1). When <paramref name="sharedA"/> (or <paramref name="sharedB"/>)
        /// is given, that operand is already packed for all rows (columns), padded to <paramref name="padA"/>
        /// (<paramref name="padB"/>), and is read from there instead of being packed into packA (packB).
        /// </summary>
        void Macro(Operand opA, Operand opB, float* cBase, int m0, int m1, int n0, int n1, int kcMax, float* packA, float* packB,
            float* sharedA, int padA, float* sharedB, int padB)
        {
            if (k == 0 || alpha == 0f)
            {
                ScaleC(cBase, m0, m1, n0, n1);
                return;
            }
            int MR = Blk.MR, NR = Blk.NR;
            float* tile = stackalloc float[12 * 32 + 16];
            float* tmp = Align64(tile);
            for (int jc = n0; jc < n1; jc += Blk.NC)
            {
                int nc = Math.Min(Blk.NC, n1 - jc);
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, k - pc);
                    float betaEff = pc == 0 ? beta : 1f;
                    float* panelB;
                    if (sharedB != null) panelB = sharedB + (nint)pc * padB + (nint)jc * kc;
                    else { PackB(opB, pc, kc, jc, nc, NR, packB); panelB = packB; }
                    for (int ic = m0; ic < m1; ic += Blk.MC)
                    {
                        int mc = Math.Min(Blk.MC, m1 - ic);
                        float* blockA;
                        if (sharedA != null) blockA = sharedA + (nint)pc * padA + (nint)ic * kc;
                        else { PackA(opA, ic, mc, pc, kc, MR, packA); blockA = packA; }
                        for (int jr = 0; jr < nc; jr += NR)
                        {
                            int nr = Math.Min(NR, nc - jr);
                            float* pbPanel = panelB + (nint)jr * kc;
                            for (int ir = 0; ir < mc; ir += MR)
                            {
                                int mr = Math.Min(MR, mc - ir);
                                float* paPanel = blockA + (nint)ir * kc;
                                float* cTile = cBase + (nint)(ic + ir) * ldc + jc + jr;
                                if (mr == MR && nr == NR)
                                {
                                    Tile(kc, paPanel, pbPanel, cTile, ldc, alpha, betaEff);
                                }
                                else
                                {
                                    Tile(kc, paPanel, pbPanel, tmp, NR, 1f, 0f);
                                    MergeEdge(tmp, NR, cTile, ldc, mr, nr, alpha, betaEff);
                                }
                            }
                        }
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        void Tile(int kc, float* pa, float* pb, float* cc, nint ldcc, float al, float be)
        {
            switch (isa)
            {
                case GemmIsa.Avx512: GemmMicroKernels.Avx512Tile(kc, pa, pb, cc, ldcc, al, be); break;
                case GemmIsa.Avx2: GemmMicroKernels.Avx2Tile(kc, pa, pb, cc, ldcc, al, be); break;
                default: PortableTile4x4(kc, pa, pb, cc, ldcc, al, be); break;
            }
        }

        void ScaleC(float* cBase, int m0, int m1, int n0, int n1)
        {
            for (int i = m0; i < m1; i++)
            {
                var row = new Span<float>(cBase + (nint)i * ldc + n0, n1 - n0);
                if (beta == 0f) row.Clear();
                else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MergeEdge(float* t, int ldt, float* c, int ldc, int mr, int nr, float alpha, float beta)
    {
        for (int r = 0; r < mr; r++)
        {
            float* src = t + r * ldt; float* dst = c + (nint)r * ldc;
            if (beta == 0f) for (int j = 0; j < nr; j++) dst[j] = alpha * src[j];
            else for (int j = 0; j < nr; j++) dst[j] = alpha * src[j] + beta * dst[j];
        }
    }

    /// <summary>Packs op(A)[i0.., p0..] (mc×kc) as MR-row micro-panels, each stored k-major (MR values per k), zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA(Operand A, int i0, int mc, int p0, int kc, int MR, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* d = dst + (nint)ir * kc;
            if (A.Cs == 1)
            {
                // Rows of A are contiguous in k: a transposing copy.
                TransposeInto(A.P + (nint)(i0 + ir) * A.Rs + p0, A.Rs, mr, kc, d, MR);
                for (int r = mr; r < MR; r++)
                    for (int p = 0; p < kc; p++) d[p * MR + r] = 0f;
            }
            else
            {
                // Columns of op(A) are contiguous (A stored transposed): copy MR values per k.
                for (int p = 0; p < kc; p++)
                {
                    float* s = A.P + (nint)(p0 + p) * A.Cs + i0 + ir;
                    float* dd = d + p * MR;
                    int r = CopyVectors(s, dd, mr);
                    for (; r < mr; r++) dd[r] = s[r];
                    for (; r < MR; r++) dd[r] = 0f;
                }
            }
        }
    }

    /// <summary>Packs op(B)[p0.., j0..] (kc×nc) as NR-column micro-panels, each stored k-major (NR values per k), zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackB(Operand B, int p0, int kc, int j0, int nc, int NR, float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* d = dst + (nint)jr * kc;
            if (B.Cs == 1)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* s = B.P + (nint)(p0 + p) * B.Rs + j0 + jr;
                    float* dd = d + p * NR;
                    int j = CopyVectors(s, dd, nr);
                    for (; j < nr; j++) dd[j] = s[j];
                    for (; j < NR; j++) dd[j] = 0f;
                }
            }
            else
            {
                // B stored transposed (n×k, e.g. a torch Linear weight): each column of op(B) is a contiguous row.
                TransposeInto(B.P + (nint)(j0 + jr) * B.Cs + p0, B.Cs, nr, kc, d, NR);
                for (int j = nr; j < NR; j++)
                    for (int p = 0; p < kc; p++) d[p * NR + j] = 0f;
            }
        }
    }

    static void PortableTile4x4(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < kc; p++)
        {
            float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            a += 4; b += 4;
        }
        Span<float> acc = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
        for (int r = 0; r < 4; r++)
        {
            float* row = c + r * ldc;
            for (int j = 0; j < 4; j++)
                row[j] = beta == 0f ? alpha * acc[r * 4 + j] : alpha * acc[r * 4 + j] + beta * row[j];
        }
    }

    /// <summary>Copies the leading multiple of 8 of <paramref name="count"/> floats with 256-bit moves; returns how many were copied.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int CopyVectors(float* s, float* d, int count)
    {
        int i = 0;
        for (; i + 8 <= count; i += 8) Vector256.Store(Vector256.Load(s + i), d + i);
        return i;
    }

    static int RoundUp(int v, int unit) => (v + unit - 1) / unit * unit;

    static float* Align64(float* p) => (float*)(((nuint)p + 63) & ~(nuint)63);
}
