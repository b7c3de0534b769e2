namespace Sharpformer.Kernels;

/// <summary>Elementwise activations and their backwards. Input and output spans may alias in the forwards.</summary>
public static class Activations
{
    /// <summary>Exact GELU as BERT uses: x·Φ(x) = 0.5·x·(1 + erf(x/√2)).</summary>
    public static void GeluErf(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = 0.5f * x[i] * (1f + Erf(x[i] * 0.70710678118654752f));
    }

    /// <summary>dx = dy · (Φ(x) + x·φ(x)).</summary>
    public static void GeluErfBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float cdf = 0.5f * (1f + Erf(v * 0.70710678118654752f));
            float pdf = 0.3989422804014327f * MathF.Exp(-0.5f * v * v);
            dx[i] = dy[i] * (cdf + v * pdf);
        }
    }

    /// <summary>tanh-approximate GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
    }

    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
            float t = MathF.Tanh(u);
            float du = 0.7978845608028654f * (1f + 3f * 0.044715f * v * v);
            dx[i] = dy[i] * (0.5f * (1f + t) + 0.5f * v * (1f - t * t) * du);
        }
    }

    public static void Relu(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0f ? x[i] : 0f;
    }

    /// <summary>dx = dy where x &gt; 0, else 0.</summary>
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++) dx[i] = x[i] > 0f ? dy[i] : 0f;
    }

    public static void Tanh(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = MathF.Tanh(x[i]);
    }

    /// <summary>dx = dy · (1 − y²), from the forward's output y.</summary>
    public static void TanhBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < y.Length; i++) dx[i] = dy[i] * (1f - y[i] * y[i]);
    }

    /// <summary>erf with |error| below 1.2e-7 (float32 rounding), matching torch.erf in float32.</summary>
    public static float Erf(float x) => (float)ErfDouble(x);

    // Computed in double so the float result is correctly rounded in practice; the SIMD version replaces this.
    static double ErfDouble(double x)
    {
        // Abramowitz–Stegun 7.1.26 is only 1.5e-7 accurate; use a series/continued-fraction split instead.
        double ax = Math.Abs(x);
        double r;
        if (ax < 2.5)
        {
            // Maclaurin series: erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n!(2n+1))
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 60; n++)
            {
                term *= -x2 / n;
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-17 * Math.Abs(sum)) break;
            }
            r = 1.1283791670955126 * sum;
        }
        else if (ax < 6.0)
        {
            // erfc via continued fraction (Lentz), converges fast for x ≥ 2.5
            double x2 = ax * ax;
            double f = ax, c = ax, d = 0, tiny = 1e-300;
            for (int n = 1; n < 200; n++)
            {
                double an = n * 0.5;
                d = ax + an * d; if (Math.Abs(d) < tiny) d = tiny; d = 1 / d;
                c = ax + an / c; if (Math.Abs(c) < tiny) c = tiny;
                double delta = c * d; f *= delta;
                if (Math.Abs(delta - 1) < 1e-16) break;
            }
            r = 1.0 - Math.Exp(-x2) / f * 0.5641895835477563;
        }
        else r = 1.0;
        return x < 0 ? -r : r;
    }
}
