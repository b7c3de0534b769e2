using System.Runtime.Intrinsics;
using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>Activations against double-precision twins over lengths 0–256 (every SIMD tail) and wide value ranges.</summary>
public class ActivationTests
{
    /// <summary>Reference erf in double: Maclaurin series below 3, Lentz continued fraction for erfc above.</summary>
    internal static double RefErf(double x)
    {
        double ax = Math.Abs(x), r;
        if (ax < 3)
        {
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 200; n++)
            {
                term *= -x2 / n;
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-18) break;
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) evaluated bottom-up.
            double f = ax;
            for (int n = 60; n >= 1; n--) f = ax + n * 0.5 / f;
            r = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }

    static double RefGelu(double x) => 0.5 * x * (1 + RefErf(x / Math.Sqrt(2)));
    static double RefGeluGrad(double x) => 0.5 * (1 + RefErf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
    static double RefGeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    static double RefGeluTanhGrad(double x)
    {
        double u = Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x), t = Math.Tanh(u);
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * Math.Sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * x * x);
    }

    static float[] Values(Random rng, int n, double spread)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * spread);
        return x;
    }

    static void AssertNear(double want, float got, double tol, string what)
    {
        if (!(Math.Abs(got - want) <= tol)) Assert.Fail($"{what}: got {got:R}, expected {want:R} (|diff| {Math.Abs(got - want):E2} > {tol:E2})");
    }

    [Fact]
    public void VectorErfIsWithin7e8OfDoubleErfEverywhere()
    {
        // Dense sweep of [-7, 7] (past the ±4 clamp) plus tiny magnitudes.
        const int N = 140_000;
        var z = new float[N + 4]; var y = new float[N + 4];
        for (int i = 0; i < N; i++) z[i] = -7f + 14f * i / N;
        z[N] = 1e-30f; z[N + 1] = -1e-8f; z[N + 2] = 0f; z[N + 3] = 4.0000005f;
        var padded = new float[(z.Length + 15) / 16 * 16]; var outp = new float[padded.Length];
        z.CopyTo(padded, 0);
        for (int i = 0; i < padded.Length; i += 16)
            Activations.ErfVector(Vector512.Create(padded.AsSpan(i, 16))).CopyTo(outp.AsSpan(i, 16));
        Array.Copy(outp, y, y.Length);
        double worst = 0;
        for (int i = 0; i < z.Length; i++) worst = Math.Max(worst, Math.Abs(y[i] - RefErf(z[i])));
        Assert.True(worst <= 7e-8, $"max |erf error| = {worst:E3}");
        // Relative accuracy near 0 matters for GELU of small activations.
        Assert.Equal(1e-30 * 2 / Math.Sqrt(Math.PI), y[N], 1e-36);
        Assert.Equal(0f, y[N + 2]);
    }

    /// <summary>GeluErf runs in float from erfc alone (no cancellation on either side): a relative error of a few 1e-7 (erfc's
    /// Horner sum near t = 0, seen 3.4e-7 at x = −0.30), growing as x² in the tails: exp(−x²/2) turns x/√2's rounding (relative
    /// 6e-8) into ~1e-7·x² (seen 1.9e-6 at x = −7).</summary>
    static double GeluTolerance(double x) => (1e-6 + 1.5e-7 * x * x) * Math.Abs(RefGelu(x)) + 1e-37;

    [Fact]
    public void GeluErfMatchesDoubleReferenceForEveryLength()
    {
        var rng = new Random(1);
        for (int n = 0; n <= 256; n++)
        {
            var x = Values(rng, n, 6); var y = new float[n];
            Activations.GeluErf(x, y);
            for (int i = 0; i < n; i++)
                AssertNear(RefGelu(x[i]), y[i], GeluTolerance(x[i]), $"GeluErf n={n} x={x[i]:R}");
        }
    }

    [Fact]
    public void GeluErfInPlaceAndExtremes()
    {
        float[] x = [0f, -0f, 1e-20f, -1e-20f, 30f, -30f, float.MaxValue, -float.MaxValue, 0.5f, -0.5f, 3f, -3f, 1f, 2f, -2f, 7f, -7f];
        var input = (float[])x.Clone();
        var expected = x.Select(v => RefGelu(v)).ToArray();
        Activations.GeluErf(x, x);
        for (int i = 0; i < x.Length; i++)
            AssertNear(expected[i], x[i], GeluTolerance(input[i]), $"GeluErf in place [{i}]");
    }

    [Fact]
    public void GeluErfBackwardMatchesDerivative()
    {
        var rng = new Random(2);
        for (int n = 0; n <= 256; n++)
        {
            var x = Values(rng, n, 5); var dy = Values(rng, n, 2); var dx = new float[n];
            Activations.GeluErfBackward(x, dy, dx);
            for (int i = 0; i < n; i++)
            {
                double want = dy[i] * RefGeluGrad(x[i]);
                AssertNear(want, dx[i], 5e-7 * Math.Abs(dy[i]) * (1 + Math.Abs(x[i])), $"GeluErfBackward n={n} x={x[i]}");
            }
        }
    }

    [Fact]
    public void GeluTanhAndBackwardMatch()
    {
        var rng = new Random(3);
        for (int n = 0; n <= 256; n += 1)
        {
            var x = Values(rng, n, 6); var dy = Values(rng, n, 2); var y = new float[n]; var dx = new float[n];
            Activations.GeluTanh(x, y);
            Activations.GeluTanhBackward(x, dy, dx);
            for (int i = 0; i < n; i++)
            {
                AssertNear(RefGeluTanh(x[i]), y[i], 5e-7 * (1 + Math.Abs(x[i])), $"GeluTanh x={x[i]}");
                AssertNear(dy[i] * RefGeluTanhGrad(x[i]), dx[i], 1e-6 * Math.Abs(dy[i]) * (1 + Math.Abs(x[i])), $"GeluTanhBackward x={x[i]}");
            }
        }
    }

    [Fact]
    public void GeluTanhVectorLanesGiveTheScalarTailsBits()
    {
        // The 16-lane loops repeat the scalar code's float operations in its order, so a value gives the same bits in a lane
        // as alone (a length-1 call runs the scalar tail): training numbers did not move when the loops were vectorised.
        var rng = new Random(4);
        var x = Values(rng, 48, 8); var dy = Values(rng, 48, 2); var y = new float[48]; var dx = new float[48];
        Activations.GeluTanh(x, y);
        Activations.GeluTanhBackward(x, dy, dx);
        var one = new float[1];
        for (int i = 0; i < x.Length; i++)
        {
            Activations.GeluTanh(x.AsSpan(i, 1), one);
            Assert.Equal(one[0], y[i]);
            Activations.GeluTanhBackward(x.AsSpan(i, 1), dy.AsSpan(i, 1), one);
            Assert.Equal(one[0], dx[i]);
        }
    }

    [Fact]
    public void ReluTanhAndBackwardsMatch()
    {
        var rng = new Random(4);
        for (int n = 0; n <= 256; n++)
        {
            var x = Values(rng, n, 4); var dy = Values(rng, n, 2);
            var y = new float[n]; var dx = new float[n]; var t = new float[n]; var dt = new float[n];
            Activations.Relu(x, y);
            Activations.ReluBackward(x, dy, dx);
            Activations.Tanh(x, t);
            Activations.TanhBackward(t, dy, dt);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(x[i] > 0 ? x[i] : 0f, y[i]);
                Assert.Equal(x[i] > 0 ? dy[i] : 0f, dx[i]);
                AssertNear(Math.Tanh(x[i]), t[i], 6e-8 * Math.Abs(Math.Tanh(x[i])) + 1e-38, $"Tanh x={x[i]}");
                AssertNear(dy[i] * (1 - (double)t[i] * t[i]), dt[i], 3e-7 * Math.Abs(dy[i]), $"TanhBackward y={t[i]}");
            }
        }
    }

    [Fact]
    public void MismatchedLengthsThrow()
    {
        var e = Assert.Throws<ArgumentException>(() => Activations.GeluErf(new float[5], new float[4]));
        Assert.Contains("equal lengths", e.Message);
        Assert.Throws<ArgumentException>(() => Activations.ReluBackward(new float[5], new float[5], new float[6]));
        Assert.Throws<ArgumentException>(() => Activations.TanhBackward(new float[5], new float[3], new float[5]));
    }
}
