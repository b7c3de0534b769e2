using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// The operand layouts a bf16 training step needs besides the inference one (packed weight [out, in]): Wᵀ and the
/// activations packed as B, dYᵀ rounded as A — each against a slow twin built from the already-tested inference packing
/// or from double sums of the rounded operands.
/// </summary>
public class Bf16TrainingKernelTests
{
    public static TheoryData<Bf16Kernel> Kernels => new() { Bf16Kernel.Portable, Bf16Kernel.Avx512Bf16 };

    static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => scale * ((float)rng.NextDouble() - 0.5f)).ToArray();
    }

    static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
        return t;
    }

    [Theory]
    [InlineData(37, 70, false)]   // odd K, a partial column block
    [InlineData(64, 48, true)]    // full vector blocks, pooled storage
    [InlineData(1, 5, true)]
    public void TransposedPackingEqualsPackingTheExplicitTranspose(int k, int n, bool pooled)
    {
        var kn = Random(k * n, k + n);
        var got = Bf16PackedWeights.FromFloatTransposed(kn, k, n, pooled);
        var want = Bf16PackedWeights.FromFloat(Transpose(kn, k, n), n, k);
        Assert.Equal((want.Out, want.In, want.InPadded), (got.Out, got.In, got.InPadded));
        int length = want.Packed.Length;   // every slot, padding included (a rented array starts with old contents)
        Assert.Equal(want.Packed, got.Packed.AsSpan(0, length).ToArray());
        got.Return();
    }

    [Fact]
    public void PooledPackingWritesEverySlotOfARecycledBuffer()
    {
        const int outs = 21, ins = 45;
        // Leave a buffer of the same size full of ones in the pool, so the pooled packing most likely gets it back.
        var dirty = System.Buffers.ArrayPool<ushort>.Shared.Rent(32 * 46);
        Array.Fill(dirty, (ushort)0xFFFF);
        System.Buffers.ArrayPool<ushort>.Shared.Return(dirty);
        var w = Random(outs * ins, 3);
        var got = Bf16PackedWeights.FromFloat(w, outs, ins, pooled: true);
        var want = Bf16PackedWeights.FromFloat(w, outs, ins);
        Assert.Equal(want.Packed, got.Packed.AsSpan(0, want.Packed.Length).ToArray());
        got.Return();
    }

    [Fact]
    public void RoundColumnsIsRoundRowsOfTheTransposeWithZeroPadding()
    {
        const int rows = 45, cols = 70, ld = 48;
        var x = Random(rows * cols, 5, 1e3f);
        var got = Enumerable.Repeat((ushort)0xFFFF, cols * ld).ToArray();
        Bf16Gemm.RoundColumns(x, rows, cols, got, ld);
        var want = new ushort[cols * ld];
        Bf16Gemm.RoundRows(Transpose(x, rows, cols), cols, rows, want, ld);
        Assert.Equal(want, got);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void WeightGradientAddsTheRoundedDyTransposeTimesXSummedInFp32(Bf16Kernel kernel)
    {
        if (!Bf16Gemm.IsSupported(kernel)) { Assert.Equal(Bf16Kernel.Avx512Bf16, kernel); return; } // "skipped: CPU lacks AVX512_BF16" in JitKernelTests
        const int rows = 37, outs = 21, ins = 70;   // odd reduction (rows), partial blocks
        var dy = Random(rows * outs, 7, 2f); var x = Random(rows * ins, 8, 3f);
        var dw = Enumerable.Range(0, outs * ins).Select(i => 0.01f * (i % 5)).ToArray();
        var dw0 = (float[])dw.Clone();
        Bf16Gemm.WeightGradient(dy, x, rows, outs, ins, dw, threads: 2, kernel);
        static double R(float v) => Bf16Gemm.ToFloat(Bf16Gemm.ToBf16(v));
        for (int o = 0; o < outs; o++)
            for (int i = 0; i < ins; i++)
            {
                double s = 0, abs = 0;
                for (int r = 0; r < rows; r++) { double p = R(dy[r * outs + o]) * R(x[r * ins + i]); s += p; abs += Math.Abs(p); }
                double got = dw[o * ins + i] - (double)dw0[o * ins + i];
                Assert.True(Math.Abs(got - s) <= 1e-5 * abs + 1e-6, $"dW[{o}, {i}]: {got} vs {s}");
            }
    }
}
