using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

// Transposing copies for packing: a row-major source block is written k-major into a micro-panel.
// Done in 8×8 (AVX) and 4×4 (SSE) register transposes, because a scalar strided copy costs as much as a
// third of the multiply time for the common x·Wᵀ and skinny (m = 128) shapes.
public static unsafe partial class Gemm
{
    /// <summary>
    /// dst[p·ldd + r] = src[r·lds + p] for r &lt; rows, p &lt; kc: the transposed copy of a rows×kc block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TransposeInto(float* src, nint lds, int rows, int kc, float* dst, int ldd)
    {
        int r = 0;
        if (Avx.IsSupported)
        {
            for (; r + 8 <= rows; r += 8)
            {
                float* s = src + r * lds; float* d = dst + r;
                int p = 0;
                for (; p + 8 <= kc; p += 8) Transpose8x8(s + p, lds, d + (nint)p * ldd, ldd);
                for (; p < kc; p++)
                    for (int q = 0; q < 8; q++) d[(nint)p * ldd + q] = s[q * lds + p];
            }
        }
        if (Sse.IsSupported)
        {
            for (; r + 4 <= rows; r += 4)
            {
                float* s = src + r * lds; float* d = dst + r;
                int p = 0;
                for (; p + 4 <= kc; p += 4) Transpose4x4(s + p, lds, d + (nint)p * ldd, ldd);
                for (; p < kc; p++)
                    for (int q = 0; q < 4; q++) d[(nint)p * ldd + q] = s[q * lds + p];
            }
        }
        for (; r < rows; r++)
        {
            float* s = src + r * lds; float* d = dst + r;
            for (int p = 0; p < kc; p++) d[(nint)p * ldd] = s[p];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(float* s, nint lds, float* d, nint ldd)
    {
        var r0 = Avx.LoadVector256(s); var r1 = Avx.LoadVector256(s + lds);
        var r2 = Avx.LoadVector256(s + 2 * lds); var r3 = Avx.LoadVector256(s + 3 * lds);
        var r4 = Avx.LoadVector256(s + 4 * lds); var r5 = Avx.LoadVector256(s + 5 * lds);
        var r6 = Avx.LoadVector256(s + 6 * lds); var r7 = Avx.LoadVector256(s + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose4x4(float* s, nint lds, float* d, nint ldd)
    {
        var r0 = Sse.LoadVector128(s); var r1 = Sse.LoadVector128(s + lds);
        var r2 = Sse.LoadVector128(s + 2 * lds); var r3 = Sse.LoadVector128(s + 3 * lds);
        var t0 = Sse.UnpackLow(r0, r1); var t1 = Sse.UnpackHigh(r0, r1);
        var t2 = Sse.UnpackLow(r2, r3); var t3 = Sse.UnpackHigh(r2, r3);
        Sse.Store(d, Sse.MoveLowToHigh(t0, t2));
        Sse.Store(d + ldd, Sse.MoveHighToLow(t2, t0));
        Sse.Store(d + 2 * ldd, Sse.MoveLowToHigh(t1, t3));
        Sse.Store(d + 3 * ldd, Sse.MoveHighToLow(t3, t1));
    }
}
