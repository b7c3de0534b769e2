using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// The emitted 512-bit micro-kernels against slow reference twins, for every tile shape (1–6 rows × 1–4 blocks of 16
/// channels) and an odd depth; they run where the CPU has the instruction and report "skipped: CPU lacks X" elsewhere.
/// </summary>
public unsafe class JitKernelTests
{
    const int Blocks = 4, Channels = 16 * Blocks, Rows = 6;

    [CpuFact(CpuFeature.Avx512Vnni)]
    public void EmittedVnniKernelGivesTheExactInt32SumsOfTheReferenceTwinForEveryTileShape()
    {
        var rng = new Random(21);
        const int ins = 149;
        var q = new sbyte[Channels * ins];
        for (int i = 0; i < q.Length; i++) q[i] = (sbyte)rng.Next(-127, 128);
        for (int k = 0; k < ins; k++) q[k] = 127; // with row 0 all 255: the extreme that 16-bit pair sums would saturate on
        var packed = Int8PackedWeights.FromQuantized(q, new float[Channels], Channels, ins);
        int ld = packed.InPadded;
        var x = new byte[Rows * ld];
        for (int r = 0; r < Rows; r++) for (int k = 0; k < ins; k++) x[r * ld + k] = r == 0 ? (byte)255 : (byte)rng.Next(256);
        var acc = new int[Rows * JitDotKernels.AccStride];
        for (int mr = 1; mr <= Rows; mr++)
            for (int nb = 1; nb <= Blocks; nb++)
            {
                Array.Fill(acc, -1);
                fixed (byte* px = x) fixed (sbyte* pb = packed.Packed) fixed (int* pacc = acc)
                    JitDotKernels.Get(DotInstruction.Vpdpbusd, mr, nb)(px, ld, pb, 16 * ld, pacc, ld / 4);
                for (int i = 0; i < Rows; i++)
                    for (int n = 0; n < JitDotKernels.AccStride; n++)
                    {
                        int expected = i < mr && n < 16 * nb ? Enumerable.Range(0, ins).Sum(k => x[i * ld + k] * q[n * ins + k]) : -1;
                        Assert.True(expected == acc[i * JitDotKernels.AccStride + n], $"mr {mr} nb {nb} row {i} channel {n}: {acc[i * JitDotKernels.AccStride + n]} vs {expected}");
                    }
            }
    }

    /// <summary>AMX against the portable kernel on the whole int8 linear (exact int32 sums, the same dequantization, so bit-identical):
    /// 37 rows (a full and a partial 16-row tile), 70 channels (a partial block) and 128 in-features (two 64-byte steps).</summary>
    [CpuFact(CpuFeature.Amx)]
    public void EmittedAmxKernelGivesTheSameInt8LinearAsThePortableKernel()
    {
        var rng = new Random(23);
        const int rows = 37, outs = 70, ins = 128;
        var w = Enumerable.Range(0, outs * ins).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var x = Enumerable.Range(0, rows * ins).Select(_ => 3 * (float)rng.NextDouble() - 1f).ToArray();
        var p = Int8PackedWeights.Quantize(w, outs, ins);
        var yAmx = new float[rows * outs];
        var yRef = new float[rows * outs];
        Int8Gemm.LinearAccumulate(x, rows, p, yAmx, threads: 2, Int8Kernel.Amx);
        Int8Gemm.LinearAccumulate(x, rows, p, yRef, threads: 2, Int8Kernel.Portable);
        Assert.Equal(yRef, yAmx);
        var odd = Int8PackedWeights.Quantize(w.AsSpan(0, outs * 100).ToArray(), outs, 100);
        Assert.Throws<ArgumentException>(() => Int8Gemm.LinearAccumulate(x, 1, odd, yAmx, 1, Int8Kernel.Amx));
    }

    public static TheoryData<Bf16Kernel> Bf16Kernels => new() { Bf16Kernel.Portable, Bf16Kernel.Avx512Bf16 };

    /// <summary>
    /// Reference twin: the same bf16 values multiplied and summed in double. fp32 accumulation over 149 terms stays within
    /// 1e-5 of Σ|products| (≈ 149·2⁻²⁴ relative per step).
    /// </summary>
    static void CheckBf16Tile(Bf16Kernel kernel)
    {
        var rng = new Random(22);
        const int ins = 149;
        var w = Enumerable.Range(0, Channels * ins).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var packed = Bf16PackedWeights.FromFloat(w, Channels, ins);
        var wb = packed.ToFloat();
        int ld = packed.InPadded;
        var xf = Enumerable.Range(0, Rows * ins).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var x = new ushort[Rows * ld];
        Bf16Gemm.RoundRows(xf, Rows, ins, x, ld);
        var acc = new float[Rows * JitDotKernels.AccStride];
        for (int mr = 1; mr <= Rows; mr++)
            for (int nb = 1; nb <= Blocks; nb++)
            {
                Array.Fill(acc, float.NaN);
                fixed (ushort* px = x) fixed (ushort* pb = packed.Packed) fixed (float* pacc = acc)
                    Bf16Gemm.Tile(kernel, px, ld, mr, pb, 16 * ld, nb, pacc);
                for (int i = 0; i < Rows; i++)
                    for (int n = 0; n < JitDotKernels.AccStride; n++)
                    {
                        float got = acc[i * JitDotKernels.AccStride + n];
                        if (i >= mr || n >= 16 * nb) { Assert.True(float.IsNaN(got), $"mr {mr} nb {nb}: wrote outside the tile at [{i}, {n}]"); continue; }
                        double s = 0, abs = 0;
                        for (int k = 0; k < ins; k++)
                        {
                            double p = (double)Bf16Gemm.ToFloat(x[i * ld + k]) * wb[n * ins + k];
                            s += p; abs += Math.Abs(p);
                        }
                        Assert.True(Math.Abs(got - s) <= 1e-5 * abs, $"{kernel} mr {mr} nb {nb} [{i}, {n}]: {got} vs {s}");
                    }
            }
    }

    [Fact]
    public void ManagedBf16KernelMatchesTheReferenceTwinForEveryTileShape() => CheckBf16Tile(Bf16Kernel.Portable);

    [CpuFact(CpuFeature.Avx512Bf16)]
    public void EmittedBf16KernelMatchesTheReferenceTwinForEveryTileShape() => CheckBf16Tile(Bf16Kernel.Avx512Bf16);

    [Fact]
    public void Bf16RoundsToNearestEvenLikeTorch()
    {
        Assert.Equal(0x3F80, Bf16Gemm.ToBf16(1f + 1f / 256));      // tie between 1 and 1 + 2⁻⁷ → even (1)
        Assert.Equal(0x3F82, Bf16Gemm.ToBf16(1f + 3f / 256));      // tie → even (1 + 2·2⁻⁷)
        Assert.Equal(0x3F81, Bf16Gemm.ToBf16(1f + 1.01f / 256));   // just above the tie → up
        Assert.Equal(0x7F80, Bf16Gemm.ToBf16(float.PositiveInfinity));
        Assert.Equal(0x7F80, Bf16Gemm.ToBf16(float.MaxValue));     // rounds past the largest bf16 to infinity, as torch does
        Assert.Equal(0x8000, Bf16Gemm.ToBf16(-0f));
        Assert.True(float.IsNaN(Bf16Gemm.ToFloat(Bf16Gemm.ToBf16(float.NaN))));
        // The vectorised row rounding equals the scalar one, over a row long enough for vectors and a tail.
        var rng = new Random(2);
        var row = Enumerable.Range(0, 37).Select(i => i switch { 3 => float.NaN, 4 => float.NegativeInfinity, 5 => 1f + 1f / 256, _ => (float)(rng.NextDouble() - 0.5) * 1e3f }).ToArray();
        var got = new ushort[40];
        Bf16Gemm.RoundRows(row, 1, 37, got, 40);
        for (int k = 0; k < 37; k++)
            if (k == 3) Assert.True(float.IsNaN(Bf16Gemm.ToFloat(got[k])));
            else Assert.Equal(Bf16Gemm.ToBf16(row[k]), got[k]);
    }

    [Theory]
    [MemberData(nameof(Bf16Kernels))]
    public void Bf16LinearAddsTheProductOfTheRoundedOperandsOntoTheOutput(Bf16Kernel kernel)
    {
        if (!Bf16Gemm.IsSupported(kernel)) { Assert.Equal(Bf16Kernel.Avx512Bf16, kernel); return; } // reported by the CpuFact above
        var rng = new Random(13);
        const int rows = 37, outs = 70, ins = 45; // tails in rows, channels and k
        var w = Enumerable.Range(0, outs * ins).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var x = Enumerable.Range(0, rows * ins).Select(_ => 3 * (float)rng.NextDouble() - 1f).ToArray();
        var p = Bf16PackedWeights.FromFloat(w, outs, ins);
        var y = Enumerable.Range(0, rows * outs).Select(i => 0.1f * (i % 7)).ToArray();
        var y0 = (float[])y.Clone();
        Bf16Gemm.LinearAccumulate(x, rows, p, y, threads: 2, kernel);
        var wb = p.ToFloat();
        for (int r = 0; r < rows; r++)
            for (int n = 0; n < outs; n++)
            {
                double s = 0, abs = 0, exact = 0;
                for (int k = 0; k < ins; k++)
                {
                    double prod = (double)Bf16Gemm.ToFloat(Bf16Gemm.ToBf16(x[r * ins + k])) * wb[n * ins + k];
                    s += prod; abs += Math.Abs(prod);
                    exact += (double)x[r * ins + k] * w[n * ins + k];
                }
                double got = y[r * outs + n] - (double)y0[r * outs + n];
                Assert.True(Math.Abs(got - s) <= 1e-5 * abs + 1e-6, $"[{r}, {n}]: {got} vs {s}");
                // And within bf16's precision (8 significant bits per operand) of the fp32 product.
                Assert.True(Math.Abs(got - exact) <= 2.0 / 256 * abs, $"[{r}, {n}]: {got} vs fp32 {exact}");
            }
    }
}
