using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

public class Int8GemmTests
{
    /// <summary>Slow reference twin: Σ_k x[r, k]·q[n, k] in int32 from unpacked operands.</summary>
    static int[] ReferenceProducts(byte[] x, int rows, int ldx, sbyte[] q, int outs, int ins)
    {
        var c = new int[rows * outs];
        for (int r = 0; r < rows; r++)
            for (int n = 0; n < outs; n++)
            {
                int s = 0;
                for (int k = 0; k < ins; k++) s += x[r * ldx + k] * q[n * ins + k];
                c[r * outs + n] = s;
            }
        return c;
    }

    public static TheoryData<Int8Kernel> Kernels => new() { Int8Kernel.Portable, Int8Kernel.Avx2, Int8Kernel.AvxVnni, Int8Kernel.Avx512Vnni };

    [Theory]
    [MemberData(nameof(Kernels))]
    public unsafe void EveryMicroKernelGivesTheExactInt32SumsOfTheReferenceTwinIncludingSaturatingExtremes(Int8Kernel kernel)
    {
        if (!Int8Gemm.IsSupported(kernel)) { Console.WriteLine($"skipped: CPU lacks {kernel}"); return; }
        var rng = new Random(3);
        const int outs = 16, ins = 37; // a partial last group of 4 k
        var q = new sbyte[outs * ins];
        for (int i = 0; i < q.Length; i++) q[i] = (sbyte)rng.Next(-127, 128);
        // Channel 0 all +127 and row 0 all 255: vpmaddubsw would saturate on these pairs without the 7-bit split.
        for (int k = 0; k < ins; k++) q[k] = 127;
        var packed = Int8PackedWeights.FromQuantized(q, new float[outs], outs, ins);
        int ld = packed.InPadded;
        foreach (int mr in new[] { 1, 3, 4 })
        {
            var x = new byte[mr * ld];
            for (int r = 0; r < mr; r++) for (int k = 0; k < ins; k++) x[r * ld + k] = r == 0 ? (byte)255 : (byte)rng.Next(256);
            var acc = new int[4 * outs];
            fixed (byte* px = x) fixed (sbyte* pb = packed.Packed) fixed (int* pacc = acc)
                Int8Gemm.Tile(kernel, px, ld, mr, pb, pacc);
            var expected = ReferenceProducts(x, mr, ld, q, outs, ins);
            Assert.Equal(expected, acc.AsSpan(0, mr * outs).ToArray());
        }
        Assert.Equal(255 * 127 * ins, ReferenceProducts([.. Enumerable.Repeat((byte)255, ld)], 1, ld, q, outs, ins)[0]);
    }

    [Fact]
    public void PackingRoundTripsTheQuantizedWeightsAndKeepsTheirColumnSums()
    {
        var rng = new Random(5);
        const int outs = 21, ins = 10;
        var q = new sbyte[outs * ins];
        for (int i = 0; i < q.Length; i++) q[i] = (sbyte)rng.Next(-127, 128);
        var p = Int8PackedWeights.FromQuantized(q, Enumerable.Range(0, outs).Select(i => 0.5f + i).ToArray(), outs, ins);
        Assert.Equal(q, p.Unpack());
        Assert.Equal(12, p.InPadded);
        for (int n = 0; n < outs; n++) Assert.Equal(Enumerable.Range(0, ins).Sum(k => q[n * ins + k]), p.ColumnSums[n]);
        Assert.Equal((0.5f + 2) * q[2 * ins + 3], p.Dequantize()[2 * ins + 3]);
    }

    [Fact]
    public void WeightsQuantizePerOutputChannelSymmetricallyToPlusMinus127()
    {
        float[] w = [0.5f, -1f, 0.25f, /* row 1 */ 4f, 2f, -0.03f, /* row 2 */ 0f, 0f, 0f];
        var p = Int8PackedWeights.Quantize(w, 3, 3);
        Assert.Equal([1f / 127, 4f / 127, 0f], p.Scales);
        // 0.5·127 = 63.5 → 64 (half to even), 0.25·127 = 31.75 → 32, −0.03/(4/127) = −0.9525 → −1.
        Assert.Equal(new sbyte[] { 64, -127, 32, 127, 64, -1, 0, 0, 0 }, p.Unpack());
    }

    [Fact]
    public void RowsQuantizeAsOnnxDynamicQuantizeLinearWithZeroInsideTheRange()
    {
        float[] x = [-1f, 0f, 1.55f, /* all positive: range widened to 0 */ 2f, 1.2f, 0.5f];
        var q = new byte[8]; var s = new float[2]; var zp = new int[2];
        Int8Gemm.QuantizeRows(x, 2, 3, q, 4, s, zp);
        Assert.Equal(2.55f / 255, s[0], 1e-7f);
        Assert.Equal(100, zp[0]); // round(1 / 0.01)
        Assert.Equal(new byte[] { 0, 100, 255 }, q[..3]);
        Assert.Equal(0, zp[1]);
        Assert.Equal(new byte[] { 255, 153, 64 }, q[4..7]); // 1.2·127.5 = 153, 63.75 → 64
    }

    [Fact]
    public void VectorisedRowQuantizationEqualsTheScalarFormulaOnEveryElementIncludingTiesAndTails()
    {
        var rng = new Random(8);
        foreach (int cols in new[] { 31, 32, 77, 768 })
        {
            var x = Enumerable.Range(0, 2 * cols).Select(_ => (float)(rng.NextDouble() * 6 - 2)).ToArray();
            x[5] = 0f; x[cols + 3] = -2f;
            var q = new byte[2 * cols]; var s = new float[2]; var zp = new int[2];
            Int8Gemm.QuantizeRows(x, 2, cols, q, cols, s, zp);
            for (int r = 0; r < 2; r++)
            {
                var row = x.AsSpan(r * cols, cols);
                float min = Math.Min(0, row.ToArray().Min()), max = Math.Max(0, row.ToArray().Max());
                float scale = (max - min) / 255f;
                Assert.Equal(scale, s[r]);
                int z = (int)Math.Clamp(MathF.Round(-min / scale), 0f, 255f);
                Assert.Equal(z, zp[r]);
                for (int k = 0; k < cols; k++)
                    Assert.Equal((byte)Math.Clamp((int)MathF.Round(row[k] / scale) + z, 0, 255), q[r * cols + k]);
            }
        }
        foreach (int at in new[] { 3, 33 }) // in the 16-wide part and in the tail
        {
            var bad = Enumerable.Repeat(1f, 40).ToArray();
            bad[at] = float.NaN;
            Assert.Throws<ArgumentException>(() => Int8Gemm.QuantizeRows(bad, 1, 40, new byte[40], 40, new float[1], new int[1]));
        }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void QuantizedLinearEqualsTheDequantizedProductAddedOntoTheOutput(Int8Kernel kernel)
    {
        if (!Int8Gemm.IsSupported(kernel)) { Console.WriteLine($"skipped: CPU lacks {kernel}"); return; }
        var rng = new Random(11);
        const int rows = 37, outs = 70, ins = 45; // tails in rows, channels and k
        var w = Enumerable.Range(0, outs * ins).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var x = Enumerable.Range(0, rows * ins).Select(_ => 3 * (float)rng.NextDouble() - 1f).ToArray();
        var p = Int8PackedWeights.Quantize(w, outs, ins);
        var y = Enumerable.Range(0, rows * outs).Select(i => 0.1f * (i % 7)).ToArray();
        var y0 = (float[])y.Clone();
        Int8Gemm.LinearAccumulate(x, rows, p, y, threads: 2, kernel);

        // Reference: the same quantization, then plain double arithmetic on the dequantized values.
        var qx = new byte[rows * ins]; var sx = new float[rows]; var zp = new int[rows];
        Int8Gemm.QuantizeRows(x, rows, ins, qx, ins, sx, zp);
        var wd = p.Dequantize();
        double maxErrFp32 = 0, maxAbs = 0;
        for (int r = 0; r < rows; r++)
            for (int n = 0; n < outs; n++)
            {
                double s = 0, exact = 0;
                for (int k = 0; k < ins; k++)
                {
                    s += (double)sx[r] * (qx[r * ins + k] - zp[r]) * wd[n * ins + k];
                    exact += (double)x[r * ins + k] * w[n * ins + k];
                }
                Assert.Equal(y0[r * outs + n] + s, y[r * outs + n], 1e-4);
                maxErrFp32 = Math.Max(maxErrFp32, Math.Abs(y[r * outs + n] - y0[r * outs + n] - exact));
                maxAbs = Math.Max(maxAbs, Math.Abs(exact));
            }
        // And close to the fp32 product: int8 error is ≈1% of the output's range here.
        Assert.True(maxErrFp32 < 0.02 * maxAbs, $"max error {maxErrFp32} vs max |y| {maxAbs}");
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void QuantizedLinearWithBiasWritesTheSameBitsAsPrefillingTheBiasAndAccumulating(Int8Kernel kernel)
    {
        if (!Int8Gemm.IsSupported(kernel)) { Console.WriteLine($"skipped: CPU lacks {kernel}"); return; }
        var rng = new Random(12);
        const int rows = 29, outs = 70, ins = 45; // tails in rows, channels (70 = 4·16 + 6) and k
        var w = Enumerable.Range(0, outs * ins).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var x = Enumerable.Range(0, rows * ins).Select(_ => 3 * (float)rng.NextDouble() - 1f).ToArray();
        var bias = Enumerable.Range(0, outs).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var p = Int8PackedWeights.Quantize(w, outs, ins);
        var expected = new float[rows * outs];
        for (int r = 0; r < rows; r++) bias.CopyTo(expected, r * outs);
        Int8Gemm.LinearAccumulate(x, rows, p, expected, threads: 2, kernel);
        var y = Enumerable.Repeat(float.NaN, rows * outs).ToArray(); // whatever y held is overwritten
        Int8Gemm.Linear(x, rows, p, bias, y, threads: 2, kernel);
        Assert.Equal(expected, y);

        var noBias = new float[rows * outs];
        Int8Gemm.LinearAccumulate(x, rows, p, noBias, threads: 2, kernel);
        Array.Fill(y, float.NaN);
        Int8Gemm.Linear(x, rows, p, default, y, threads: 2, kernel);
        Assert.Equal(noBias, y);
        Assert.Throws<ArgumentException>(() => Int8Gemm.Linear(x, rows, p, bias.AsSpan(1), y, threads: 2, kernel));
    }

    [Fact]
    public void ParallelQuantizationGivesTheSerialBitsWithTheRowPaddingZeroed()
    {
        var rng = new Random(13);
        const int rows = 23, cols = 2999; // several row chunks; stride 3000 leaves one padding byte per row
        var x = Enumerable.Range(0, rows * cols).Select(_ => 4 * (float)rng.NextDouble() - 1.5f).ToArray();
        var q = new byte[rows * cols]; var s = new float[rows]; var zp = new int[rows];
        Int8Gemm.QuantizeRows(x, rows, cols, q, cols, s, zp);
        using var a = Int8Activations.Quantize(x, rows, cols, threads: 2);
        Assert.Equal(3000, a.Stride);
        for (int r = 0; r < rows; r++)
        {
            Assert.Equal(q.AsSpan(r * cols, cols).ToArray(), a.Q.AsSpan(r * a.Stride, cols).ToArray());
            Assert.Equal(0, a.Q[r * a.Stride + cols]);
            Assert.Equal(s[r], a.Scales[r]);
            Assert.Equal(zp[r], a.ZeroPoints[r]);
        }
        x[7 * cols + 5] = float.NaN;
        x[20 * cols] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => Int8Activations.Quantize(x, rows, cols, threads: 2));
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void ActivationsQuantizedOnceGiveEveryLayerTheBitsOfQuantizingPerCall(Int8Kernel kernel)
    {
        if (!Int8Gemm.IsSupported(kernel)) { Console.WriteLine($"skipped: CPU lacks {kernel}"); return; }
        var rng = new Random(14);
        const int rows = 29, ins = 45;
        var x = Enumerable.Range(0, rows * ins).Select(_ => 3 * (float)rng.NextDouble() - 1f).ToArray();
        using var xq = Int8Activations.Quantize(x, rows, ins, threads: 2);
        foreach (int outs in new[] { 70, 16, 5 }) // query, key, value of different widths; channel tails
        {
            var w = Enumerable.Range(0, outs * ins).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            var bias = Enumerable.Range(0, outs).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            var p = Int8PackedWeights.Quantize(w, outs, ins);
            var perCall = new float[rows * outs]; var shared = new float[rows * outs];
            Int8Gemm.Linear(x, rows, p, bias, perCall, threads: 2, kernel);
            Int8Gemm.Linear(xq, p, bias, shared, Int8Epilogue.None, threads: 2, kernel);
            Assert.Equal(perCall, shared);
            var acc = Enumerable.Range(0, rows * outs).Select(i => 0.25f * (i % 5)).ToArray(); var accShared = (float[])acc.Clone();
            Int8Gemm.LinearAccumulate(x, rows, p, acc, threads: 2, kernel);
            Int8Gemm.LinearAccumulate(xq, p, accShared, threads: 2, kernel);
            Assert.Equal(acc, accShared);
        }
        var wrong = Int8PackedWeights.Quantize(new float[8 * 44], 8, 44);
        var e = Assert.Throws<ArgumentException>(() => Int8Gemm.Linear(xq, wrong, default, new float[rows * 8]));
        Assert.Contains("45 columns", e.Message);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void GeluEpilogueGivesTheBitsOfGeluErfAppliedAfterTheProduct(Int8Kernel kernel)
    {
        if (!Int8Gemm.IsSupported(kernel)) { Console.WriteLine($"skipped: CPU lacks {kernel}"); return; }
        var rng = new Random(15);
        const int rows = 31, outs = 70, ins = 45; // 70 = 4·16 + 6: the partial channel block takes the scalar epilogue
        var w = Enumerable.Range(0, outs * ins).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var x = Enumerable.Range(0, rows * ins).Select(_ => 6 * (float)rng.NextDouble() - 3f).ToArray();
        var bias = Enumerable.Range(0, outs).Select(_ => 2 * (float)rng.NextDouble() - 1f).ToArray();
        var p = Int8PackedWeights.Quantize(w, outs, ins);
        using var xq = Int8Activations.Quantize(x, rows, ins);
        var expected = new float[rows * outs];
        Int8Gemm.Linear(xq, p, bias, expected, Int8Epilogue.None, threads: 2, kernel);
        Assert.Contains(expected, v => v < -1f); // GELU's negative side is exercised
        Activations.GeluErf(expected, expected);
        var fused = new float[rows * outs];
        Int8Gemm.Linear(xq, p, bias, fused, Int8Epilogue.GeluErf, threads: 2, kernel);
        Assert.Equal(expected, fused);
    }
}
