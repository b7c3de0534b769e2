using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>Elementwise activations and their backwards. Input and output spans may alias (the same span) in every method.</summary>
/// <remarks>
/// The loops run on 16-float <see cref="Vector512{T}"/> blocks; the last partial block is padded into a stack buffer
/// and goes through the same vector code, so an element's result never depends on its position. The GELU kernels split
/// large spans across their <c>threads</c> argument (≤ 0: every core) (single-threaded inside a parallel region).
/// </remarks>
public static class Activations
{
    const float InvSqrt2Pi = 0.3989422804014327f;
    const float SqrtTwoOverPi = 0.7978845608028654f;
    const float TanhCubic = 0.044715f;
    const int Chunk = 256; // floats per stack buffer for functions that go through TensorPrimitives (Exp, Tanh)

    /// <summary>Exact GELU as BERT uses: y = x·Φ(x) = 0.5·x·(1 + erf(x/√2)).</summary>
    /// <remarks>Evaluated in float from erfc alone (see <see cref="GeluVector"/>): a relative error of a few 1e-7 (~1e-7·x² in the
    /// negative tail), including where 0.5·x·(1 + erf) cancels (torch's float GELU loses every digit there near x = −5).</remarks>
    public static void GeluErf(ReadOnlySpan<float> x, Span<float> y, int threads = 0)
    {
        CheckSame(x.Length, y.Length, nameof(y));
        Parallelism.Elementwise(x, y, GeluErfSerial, threads);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GeluErfSerial(ReadOnlySpan<float> x, Span<float> y)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int n = x.Length, i = 0;
        for (; i <= n - 16; i += 16)
            GeluVector(Vector512.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        if (i < n) Tail(x[i..], y[i..], static v => GeluVector(v));
    }

    /// <summary>GELU (erf) backward: dx = dy · (Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π).</summary>
    public static void GeluErfBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, int threads = 0)
    {
        CheckSame(x.Length, dy.Length, nameof(dy)); CheckSame(x.Length, dx.Length, nameof(dx));
        Parallelism.Elementwise(x, dy, dx, GeluErfBackwardSerial, threads);
    }

    static void GeluErfBackwardSerial(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> e = stackalloc float[Chunk];
        Span<float> bx = stackalloc float[16], be = stackalloc float[16], bd = stackalloc float[16];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, x.Length - start);
            var xs = x.Slice(start, len); var es = e[..len];
            TensorPrimitives.Multiply(xs, xs, es);
            TensorPrimitives.Multiply(es, -0.5f, es);
            TensorPrimitives.Exp(es, es);
            var dys = dy.Slice(start, len); var dxs = dx.Slice(start, len);
            for (int j = 0; j < len; j += 16)
            {
                // Whole 16-blocks only; a partial one is padded so it takes the same path.
                if (j + 16 <= len)
                {
                    var v = Vector512.Create(xs.Slice(j, 16));
                    var r = GeluErfGrad(v, Vector512.Create(es.Slice(j, 16))) * Vector512.Create(dys.Slice(j, 16));
                    r.CopyTo(dxs.Slice(j, 16));
                }
                else
                {
                    bx.Clear(); be.Clear(); bd.Clear();
                    int m = len - j;
                    xs.Slice(j, m).CopyTo(bx); es.Slice(j, m).CopyTo(be); dys.Slice(j, m).CopyTo(bd);
                    var r = GeluErfGrad(Vector512.Create(bx), Vector512.Create(be)) * Vector512.Create(bd);
                    r.CopyTo(bx);
                    bx[..m].CopyTo(dxs.Slice(j, m));
                }
            }
        }
    }

    static Vector512<float> GeluErfGrad(Vector512<float> v, Vector512<float> expHalfSq)
    {
        return NormalCdfVector(v) + v * expHalfSq * Vector512.Create(InvSqrt2Pi);
    }

    /// <summary>tanh-approximate GELU: y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y, int threads = 0)
    {
        CheckSame(x.Length, y.Length, nameof(y));
        Parallelism.Elementwise(x, y, GeluTanhSerial, threads);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GeluTanhSerial(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> u = stackalloc float[Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, x.Length - start);
            var xs = x.Slice(start, len); var us = u[..len]; var ys = y.Slice(start, len);
            // 16 lanes then a scalar tail: the same float operations in the same order (no fused multiply-add), so the same bits
            int j = 0;
            for (; j <= len - 16; j += 16) { var v = Vector512.Create(xs.Slice(j, 16)); TanhArgument(v).CopyTo(us.Slice(j, 16)); }
            for (; j < len; j++) { float v = xs[j]; us[j] = SqrtTwoOverPi * (v + TanhCubic * v * v * v); }
            TanhAccurate(us, us);
            for (j = 0; j <= len - 16; j += 16)
                (Vector512.Create(0.5f) * Vector512.Create(xs.Slice(j, 16)) * (Vector512<float>.One + Vector512.Create(us.Slice(j, 16)))).CopyTo(ys.Slice(j, 16));
            for (; j < len; j++) ys[j] = 0.5f * xs[j] * (1f + us[j]);
        }
    }

    /// <summary>√(2/π)·(x + 0.044715·x³) for 16 floats, in the scalar code's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> TanhArgument(Vector512<float> v) =>
        Vector512.Create(SqrtTwoOverPi) * (v + Vector512.Create(TanhCubic) * v * v * v);

    /// <summary>dx = dy · (0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)), t = tanh(√(2/π)·(x + 0.044715·x³)).</summary>
    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, int threads = 0)
    {
        CheckSame(x.Length, dy.Length, nameof(dy)); CheckSame(x.Length, dx.Length, nameof(dx));
        Parallelism.Elementwise(x, dy, dx, GeluTanhBackwardSerial, threads);
    }

    static void GeluTanhBackwardSerial(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> t = stackalloc float[Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, x.Length - start);
            var xs = x.Slice(start, len); var ts = t[..len]; var dys = dy.Slice(start, len); var dxs = dx.Slice(start, len);
            int j = 0;
            for (; j <= len - 16; j += 16) { var v = Vector512.Create(xs.Slice(j, 16)); TanhArgument(v).CopyTo(ts.Slice(j, 16)); }
            for (; j < len; j++) { float v = xs[j]; ts[j] = SqrtTwoOverPi * (v + TanhCubic * v * v * v); }
            TanhAccurate(ts, ts);
            var half = Vector512.Create(0.5f); var one = Vector512<float>.One;
            for (j = 0; j <= len - 16; j += 16)
            {
                var v = Vector512.Create(xs.Slice(j, 16)); var th = Vector512.Create(ts.Slice(j, 16));
                var du = Vector512.Create(SqrtTwoOverPi) * (one + Vector512.Create(3f * TanhCubic) * v * v);
                (Vector512.Create(dys.Slice(j, 16)) * (half * (one + th) + half * v * (one - th * th) * du)).CopyTo(dxs.Slice(j, 16));
            }
            for (; j < len; j++)
            {
                float v = xs[j], th = ts[j];
                float du = SqrtTwoOverPi * (1f + 3f * TanhCubic * v * v);
                dxs[j] = dys[j] * (0.5f * (1f + th) + 0.5f * v * (1f - th * th) * du);
            }
        }
    }

    /// <summary>y = max(x, 0); NaN propagates.</summary>
    public static void Relu(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckSame(x.Length, y.Length, nameof(y));
        TensorPrimitives.Max(x, 0f, y);
    }

    /// <summary>dx = dy where x &gt; 0, else 0.</summary>
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => Backward<ReluGradient>(x, dy, dx);

    /// <summary>y = tanh(x).</summary>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckSame(x.Length, y.Length, nameof(y));
        TanhAccurate(x, y);
    }

    /// <summary>tanh through double: TensorPrimitives' float tanh is (e^{2x}−1)/(e^{2x}+1), which loses ~10 ulp near 0.</summary>
    static void TanhAccurate(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<double> d = stackalloc double[Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, x.Length - start);
            var ds = d[..len];
            TensorPrimitives.ConvertChecked<float, double>(x.Slice(start, len), ds);
            TensorPrimitives.Tanh(ds, ds);
            TensorPrimitives.ConvertTruncating<double, float>(ds, y.Slice(start, len));
        }
    }

    /// <summary>dx = dy · (1 − y²), from the forward's output y.</summary>
    public static void TanhBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx) => Backward<TanhGradient>(y, dy, dx);

    /// <summary>A backward rule dx = f(s, dy) with s the forward's input or output, as a vector and a scalar function.</summary>
    interface IGradientRule
    {
        static abstract Vector512<float> Apply(Vector512<float> s, Vector512<float> dy);
        static abstract float Apply(float s, float dy);
    }

    readonly struct ReluGradient : IGradientRule
    {
        public static Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
        public static float Apply(float x, float dy) => x > 0f ? dy : 0f;
    }

    readonly struct TanhGradient : IGradientRule
    {
        public static Vector512<float> Apply(Vector512<float> y, Vector512<float> dy) => dy * (Vector512<float>.One - y * y);
        public static float Apply(float y, float dy) => dy * (1f - y * y);
    }

    /// <summary>dx = TRule(s, dy) elementwise: 16-wide blocks, then a scalar tail (a generic struct rule, so the JIT inlines it).</summary>
    static void Backward<TRule>(ReadOnlySpan<float> s, ReadOnlySpan<float> dy, Span<float> dx) where TRule : struct, IGradientRule
    {
        CheckSame(s.Length, dy.Length, nameof(dy)); CheckSame(s.Length, dx.Length, nameof(dx));
        ref float sr = ref MemoryMarshal.GetReference(s);
        ref float gr = ref MemoryMarshal.GetReference(dy);
        ref float dr = ref MemoryMarshal.GetReference(dx);
        int n = s.Length, i = 0;
        for (; i <= n - 16; i += 16)
            TRule.Apply(Vector512.LoadUnsafe(ref sr, (nuint)i), Vector512.LoadUnsafe(ref gr, (nuint)i)).StoreUnsafe(ref dr, (nuint)i);
        for (; i < n; i++) dx[i] = TRule.Apply(s[i], dy[i]);
    }

    /// <summary>erf with |error| below 1.2e-7 (float32 rounding), matching torch.erf in float32.</summary>
    public static float Erf(float x) => (float)ErfDouble(x);

    /// <summary>Vectorised erf for 16 floats, evaluated in double so float rounding adds no error beyond the final one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ErfVector(Vector512<float> z)
    {
        var (lo, hi) = Vector512.Widen(z);
        return Vector512.Narrow(ErfDouble(lo), ErfDouble(hi));
    }

    /// <summary>x·Φ(x) for 16 floats, in float, from erfc alone: Φ(x) = 1 − erfc(|z|)/2 for x ≥ 0 and erfc(|z|)/2 below (z = x/√2),
    /// so neither side cancels (0.5·x·(1 + erf z) loses every digit near x = −5 in float).</summary>
    /// <remarks>
    /// It was evaluated in double (two 8-lane halves and a 64-bit division), which made GELU 8% of an int8 bert-base forward.
    /// One erfc (<see cref="ErfcFloat"/>) serves both signs; h = x/2 is capped at float.MaxValue so GELU(+∞) = +∞ (∞·0 would be NaN).
    /// Also the epilogue of the int8 feed-forward GEMM (<see cref="Int8Gemm"/>), so fused and separate GELU give the same bits.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> GeluVector(Vector512<float> x)
    {
        var h = Vector512.Min(Vector512.Create(0.5f) * x, Vector512.Create(float.MaxValue));
        var he = h * ErfcFloat(Vector512.Abs(x * Vector512.Create(0.70710678f)));
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), he, x - he);
    }

    /// <summary>erfc(t) for t ≥ 0 with a relative error of a few 1e-7 in float (~1e-7·t² for large t, from rounding −t² + P): the
    /// Chebyshev fit u·exp(−t² + P(u)), u = 1/(1 + t/2), of Press et al., Numerical Recipes §6.2 (fractional error &lt; 1.2e-7 exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> ErfcFloat(Vector512<float> t)
    {
        var u = Vector512<float>.One / Vector512.FusedMultiplyAdd(Vector512.Create(0.5f), t, Vector512<float>.One);
        var p = Vector512.Create(0.17087277f);
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(-0.82215223f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(1.48851587f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(-1.13520398f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(0.27886807f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(-0.18628806f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(0.09678418f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(0.37409196f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(1.00002368f));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(-1.26551223f));
        // Softmax's inline exp: Vector512.Exp is an out-of-line call that cost more than the whole double GELU (perf: 8.6% of an
        // int8 forward in VectorMath.ExpSingle).
        return u * Softmax.ExpNonPositive(Vector512.FusedMultiplyAdd(-t, t, p));
    }

    /// <summary>Φ(x) = 0.5·(1 + erf(x/√2)) for 16 floats, in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> NormalCdfVector(Vector512<float> x)
    {
        var (lo, hi) = Vector512.Widen(x);
        var half = Vector512.Create(0.5); var s = Vector512.Create(0.70710678118654752);
        return Vector512.Narrow(half * (Vector512<double>.One + ErfDouble(lo * s)), half * (Vector512<double>.One + ErfDouble(hi * s)));
    }

    /// <summary>erf(z) ≈ z·P(z²)/Q(z²) for |z| &lt; 5 and ±1 beyond (erfc(5) = 1.5e-12).</summary>
    /// <remarks>
    /// P has degree 8 and Q degree 5 in z²; the coefficients are a least-squares fit to erf on 800 Chebyshev nodes of
    /// [0, 5], iteratively re-weighted by 1/Q (Loeb), giving a mathematical |error| of 2.7e-9 — far below float's
    /// half-ulp of 1, so the float result is erf correctly rounded in almost every case.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<double> ErfDouble(Vector512<double> z)
    {
        var limit = Vector512.Create(5.0);
        var zc = Vector512.Min(Vector512.Max(z, -limit), limit);
        var s = zc * zc;
        var p = Vector512.Create(1.9138421307479556e-12);
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-1.7728437482008548e-10));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(-7.259713777843729e-09));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(4.766065136443191e-06));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(0.000389414143401415));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(0.0037790221772155785));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(0.05427409270405872));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(0.18242062494215147));
        p = Vector512.FusedMultiplyAdd(p, s, Vector512.Create(1.1283791826703906));
        var q = Vector512.Create(6.53892772723436e-05);
        q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(0.0013084978981277185));
        q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(0.01536046309333824));
        q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(0.11309785996708506));
        q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(0.4949996498570653));
        q = Vector512.FusedMultiplyAdd(q, s, Vector512<double>.One);
        var r = zc * p / q;
        var sign = Vector512.ConditionalSelect(Vector512.LessThan(z, Vector512<double>.Zero), -Vector512<double>.One, Vector512<double>.One);
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Vector512.Abs(z), limit), sign, r);
    }

    /// <summary>Runs a 16-wide vector function over fewer than 16 elements through a zero-padded stack buffer.</summary>
    static void Tail(ReadOnlySpan<float> x, Span<float> y, Func<Vector512<float>, Vector512<float>> f)
    {
        Span<float> buf = stackalloc float[16];
        buf.Clear();
        x.CopyTo(buf);
        f(Vector512.Create(buf)).CopyTo(buf);
        buf[..x.Length].CopyTo(y);
    }

    internal static void CheckSame(int expected, int actual, string name)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has {actual} elements but the input has {expected}; activation spans must have equal lengths.", name);
    }

    // Computed in double so the float result is correctly rounded in practice.
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
