// The register-tile bodies below are written out in full (no loops over
// accumulators) so the JIT keeps every accumulator in its own vector register.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

internal static unsafe class GemmMicroKernels
{
    /// <summary>12×32 register tile: C[12×32] = alpha·(packed A panel · packed B panel) + beta·C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512Tile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default, c6_0 = default, c6_1 = default, c7_0 = default, c7_1 = default, c8_0 = default, c8_1 = default, c9_0 = default, c9_1 = default, c10_0 = default, c10_1 = default, c11_0 = default, c11_1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            var a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            var a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            var a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
            var a8 = Vector512.Create(a[8]);
            c8_0 = Avx512F.FusedMultiplyAdd(a8, b0, c8_0);
            c8_1 = Avx512F.FusedMultiplyAdd(a8, b1, c8_1);
            var a9 = Vector512.Create(a[9]);
            c9_0 = Avx512F.FusedMultiplyAdd(a9, b0, c9_0);
            c9_1 = Avx512F.FusedMultiplyAdd(a9, b1, c9_1);
            var a10 = Vector512.Create(a[10]);
            c10_0 = Avx512F.FusedMultiplyAdd(a10, b0, c10_0);
            c10_1 = Avx512F.FusedMultiplyAdd(a10, b1, c10_1);
            var a11 = Vector512.Create(a[11]);
            c11_0 = Avx512F.FusedMultiplyAdd(a11, b0, c11_0);
            c11_1 = Avx512F.FusedMultiplyAdd(a11, b1, c11_1);
            a += 12; b += 32;
        }
        var va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Vector512.Store(c0_0 * va, c + 0 * ldc + 0);
            Vector512.Store(c0_1 * va, c + 0 * ldc + 16);
            Vector512.Store(c1_0 * va, c + 1 * ldc + 0);
            Vector512.Store(c1_1 * va, c + 1 * ldc + 16);
            Vector512.Store(c2_0 * va, c + 2 * ldc + 0);
            Vector512.Store(c2_1 * va, c + 2 * ldc + 16);
            Vector512.Store(c3_0 * va, c + 3 * ldc + 0);
            Vector512.Store(c3_1 * va, c + 3 * ldc + 16);
            Vector512.Store(c4_0 * va, c + 4 * ldc + 0);
            Vector512.Store(c4_1 * va, c + 4 * ldc + 16);
            Vector512.Store(c5_0 * va, c + 5 * ldc + 0);
            Vector512.Store(c5_1 * va, c + 5 * ldc + 16);
            Vector512.Store(c6_0 * va, c + 6 * ldc + 0);
            Vector512.Store(c6_1 * va, c + 6 * ldc + 16);
            Vector512.Store(c7_0 * va, c + 7 * ldc + 0);
            Vector512.Store(c7_1 * va, c + 7 * ldc + 16);
            Vector512.Store(c8_0 * va, c + 8 * ldc + 0);
            Vector512.Store(c8_1 * va, c + 8 * ldc + 16);
            Vector512.Store(c9_0 * va, c + 9 * ldc + 0);
            Vector512.Store(c9_1 * va, c + 9 * ldc + 16);
            Vector512.Store(c10_0 * va, c + 10 * ldc + 0);
            Vector512.Store(c10_1 * va, c + 10 * ldc + 16);
            Vector512.Store(c11_0 * va, c + 11 * ldc + 0);
            Vector512.Store(c11_1 * va, c + 11 * ldc + 16);
        }
        else
        {
            var vb = Vector512.Create(beta);
            { float* q = c + 0 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c0_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 0 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c0_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 1 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c1_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 1 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c1_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 2 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c2_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 2 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c2_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 3 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c3_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 3 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c3_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 4 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c4_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 4 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c4_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 5 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c5_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 5 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c5_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 6 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c6_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 6 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c6_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 7 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c7_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 7 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c7_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 8 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c8_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 8 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c8_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 9 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c9_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 9 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c9_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 10 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c10_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 10 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c10_1, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 11 * ldc + 0; Vector512.Store(Avx512F.FusedMultiplyAdd(c11_0, va, Vector512.Load(q) * vb), q); }
            { float* q = c + 11 * ldc + 16; Vector512.Store(Avx512F.FusedMultiplyAdd(c11_1, va, Vector512.Load(q) * vb), q); }
        }
    }

    /// <summary>6×16 register tile: C[6×16] = alpha·(packed A panel · packed B panel) + beta·C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2Tile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b + 0);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            var a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            var a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            var a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            var a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            var a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            a += 6; b += 16;
        }
        var va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Vector256.Store(c0_0 * va, c + 0 * ldc + 0);
            Vector256.Store(c0_1 * va, c + 0 * ldc + 8);
            Vector256.Store(c1_0 * va, c + 1 * ldc + 0);
            Vector256.Store(c1_1 * va, c + 1 * ldc + 8);
            Vector256.Store(c2_0 * va, c + 2 * ldc + 0);
            Vector256.Store(c2_1 * va, c + 2 * ldc + 8);
            Vector256.Store(c3_0 * va, c + 3 * ldc + 0);
            Vector256.Store(c3_1 * va, c + 3 * ldc + 8);
            Vector256.Store(c4_0 * va, c + 4 * ldc + 0);
            Vector256.Store(c4_1 * va, c + 4 * ldc + 8);
            Vector256.Store(c5_0 * va, c + 5 * ldc + 0);
            Vector256.Store(c5_1 * va, c + 5 * ldc + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            { float* q = c + 0 * ldc + 0; Vector256.Store(Fma.MultiplyAdd(c0_0, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 0 * ldc + 8; Vector256.Store(Fma.MultiplyAdd(c0_1, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 1 * ldc + 0; Vector256.Store(Fma.MultiplyAdd(c1_0, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 1 * ldc + 8; Vector256.Store(Fma.MultiplyAdd(c1_1, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 2 * ldc + 0; Vector256.Store(Fma.MultiplyAdd(c2_0, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 2 * ldc + 8; Vector256.Store(Fma.MultiplyAdd(c2_1, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 3 * ldc + 0; Vector256.Store(Fma.MultiplyAdd(c3_0, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 3 * ldc + 8; Vector256.Store(Fma.MultiplyAdd(c3_1, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 4 * ldc + 0; Vector256.Store(Fma.MultiplyAdd(c4_0, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 4 * ldc + 8; Vector256.Store(Fma.MultiplyAdd(c4_1, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 5 * ldc + 0; Vector256.Store(Fma.MultiplyAdd(c5_0, va, Vector256.Load(q) * vb), q); }
            { float* q = c + 5 * ldc + 8; Vector256.Store(Fma.MultiplyAdd(c5_1, va, Vector256.Load(q) * vb), q); }
        }
    }

    /// <summary>8×32 tile T = A[8 rows, unpacked, row stride lda] · packed B panel, written raw (no alpha/beta) to t (row stride ldt).</summary>
    /// <remarks>Reads A rows in place (each row a sequential stream) so a large A used once is never packed.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512RowsTile(int kc, float* a, nint lda, float* b, float* t, nint ldt)
    {
        float* a0 = a + 0 * lda;
        float* a1 = a + 1 * lda;
        float* a2 = a + 2 * lda;
        float* a3 = a + 3 * lda;
        float* a4 = a + 4 * lda;
        float* a5 = a + 5 * lda;
        float* a6 = a + 6 * lda;
        float* a7 = a + 7 * lda;
        Vector512<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default, c6_0 = default, c6_1 = default, c7_0 = default, c7_1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            var s0 = Vector512.Create(a0[p]);
            c0_0 = Avx512F.FusedMultiplyAdd(s0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(s0, b1, c0_1);
            var s1 = Vector512.Create(a1[p]);
            c1_0 = Avx512F.FusedMultiplyAdd(s1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(s1, b1, c1_1);
            var s2 = Vector512.Create(a2[p]);
            c2_0 = Avx512F.FusedMultiplyAdd(s2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(s2, b1, c2_1);
            var s3 = Vector512.Create(a3[p]);
            c3_0 = Avx512F.FusedMultiplyAdd(s3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(s3, b1, c3_1);
            var s4 = Vector512.Create(a4[p]);
            c4_0 = Avx512F.FusedMultiplyAdd(s4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(s4, b1, c4_1);
            var s5 = Vector512.Create(a5[p]);
            c5_0 = Avx512F.FusedMultiplyAdd(s5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(s5, b1, c5_1);
            var s6 = Vector512.Create(a6[p]);
            c6_0 = Avx512F.FusedMultiplyAdd(s6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(s6, b1, c6_1);
            var s7 = Vector512.Create(a7[p]);
            c7_0 = Avx512F.FusedMultiplyAdd(s7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(s7, b1, c7_1);
            b += 32;
        }
        Vector512.Store(c0_0, t + 0 * ldt + 0);
        Vector512.Store(c0_1, t + 0 * ldt + 16);
        Vector512.Store(c1_0, t + 1 * ldt + 0);
        Vector512.Store(c1_1, t + 1 * ldt + 16);
        Vector512.Store(c2_0, t + 2 * ldt + 0);
        Vector512.Store(c2_1, t + 2 * ldt + 16);
        Vector512.Store(c3_0, t + 3 * ldt + 0);
        Vector512.Store(c3_1, t + 3 * ldt + 16);
        Vector512.Store(c4_0, t + 4 * ldt + 0);
        Vector512.Store(c4_1, t + 4 * ldt + 16);
        Vector512.Store(c5_0, t + 5 * ldt + 0);
        Vector512.Store(c5_1, t + 5 * ldt + 16);
        Vector512.Store(c6_0, t + 6 * ldt + 0);
        Vector512.Store(c6_1, t + 6 * ldt + 16);
        Vector512.Store(c7_0, t + 7 * ldt + 0);
        Vector512.Store(c7_1, t + 7 * ldt + 16);
    }

    /// <summary>8×16 tile T = A[8 rows, unpacked, row stride lda] · packed B panel, written raw (no alpha/beta) to t (row stride ldt).</summary>
    /// <remarks>Reads A rows in place (each row a sequential stream) so a large A used once is never packed.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512RowsTile16(int kc, float* a, nint lda, float* b, float* t, nint ldt)
    {
        float* a0 = a + 0 * lda;
        float* a1 = a + 1 * lda;
        float* a2 = a + 2 * lda;
        float* a3 = a + 3 * lda;
        float* a4 = a + 4 * lda;
        float* a5 = a + 5 * lda;
        float* a6 = a + 6 * lda;
        float* a7 = a + 7 * lda;
        Vector512<float> c0_0 = default, c1_0 = default, c2_0 = default, c3_0 = default, c4_0 = default, c5_0 = default, c6_0 = default, c7_0 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b + 0);
            var s0 = Vector512.Create(a0[p]);
            c0_0 = Avx512F.FusedMultiplyAdd(s0, b0, c0_0);
            var s1 = Vector512.Create(a1[p]);
            c1_0 = Avx512F.FusedMultiplyAdd(s1, b0, c1_0);
            var s2 = Vector512.Create(a2[p]);
            c2_0 = Avx512F.FusedMultiplyAdd(s2, b0, c2_0);
            var s3 = Vector512.Create(a3[p]);
            c3_0 = Avx512F.FusedMultiplyAdd(s3, b0, c3_0);
            var s4 = Vector512.Create(a4[p]);
            c4_0 = Avx512F.FusedMultiplyAdd(s4, b0, c4_0);
            var s5 = Vector512.Create(a5[p]);
            c5_0 = Avx512F.FusedMultiplyAdd(s5, b0, c5_0);
            var s6 = Vector512.Create(a6[p]);
            c6_0 = Avx512F.FusedMultiplyAdd(s6, b0, c6_0);
            var s7 = Vector512.Create(a7[p]);
            c7_0 = Avx512F.FusedMultiplyAdd(s7, b0, c7_0);
            b += 16;
        }
        Vector512.Store(c0_0, t + 0 * ldt + 0);
        Vector512.Store(c1_0, t + 1 * ldt + 0);
        Vector512.Store(c2_0, t + 2 * ldt + 0);
        Vector512.Store(c3_0, t + 3 * ldt + 0);
        Vector512.Store(c4_0, t + 4 * ldt + 0);
        Vector512.Store(c5_0, t + 5 * ldt + 0);
        Vector512.Store(c6_0, t + 6 * ldt + 0);
        Vector512.Store(c7_0, t + 7 * ldt + 0);
    }
}
