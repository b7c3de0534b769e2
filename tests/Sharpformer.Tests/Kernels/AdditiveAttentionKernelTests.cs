using Sharpformer.Kernels;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Tensors.GradCheck;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// The fused additive-attention kernel against a slow double-precision twin written from Bahdanau's equations (one element
/// at a time), for attention widths and value widths 1–33 (every SIMD tail) with padded source positions; the backward
/// against central finite differences of the twin (h = 1e-5) of L = Σ random weights × (context, weights, scores).
/// Tolerances: forward 5e-6·(1 + |v|) (float tanh/exp round-off summed over U), backward 2e-5·(1 + |g|).
/// </summary>
public class AdditiveAttentionKernelTests
{
    const int B = 3, S = 4;
    static readonly int[] Lengths = [4, 2, 3];   // rows 1 and 2 have padded positions

    static double[] Rand(Random rng, int n, double spread = 1.2) => Enumerable.Range(0, n).Select(_ => (rng.NextDouble() * 2 - 1) * spread).ToArray();
    static float[] F(double[] x) => x.Select(v => (float)v).ToArray();
    static float[] Mask() => Enumerable.Range(0, B * S).Select(i => i % S < Lengths[i / S] ? 0f : Functional.MaskedValue).ToArray();

    // Reference: [context (B·D) ; weights (B·S) ; scores (B·S)].
    static double[] Twin(double[] keys, double[] query, double[] v, double bias, double[] values, int U, int D)
    {
        var y = new double[B * D + 2 * B * S];
        for (int b = 0; b < B; b++)
        {
            var e = new double[S];
            for (int j = 0; j < S; j++)
            {
                double s = bias;
                for (int u = 0; u < U; u++) s += v[u] * Math.Tanh(keys[(b * S + j) * U + u] + query[b * U + u]);
                e[j] = s; y[B * D + B * S + b * S + j] = s;
            }
            double max = Enumerable.Range(0, Lengths[b]).Max(j => e[j]), z = Enumerable.Range(0, Lengths[b]).Sum(j => Math.Exp(e[j] - max));
            for (int j = 0; j < S; j++)
            {
                double w = j < Lengths[b] ? Math.Exp(e[j] - max) / z : 0;
                y[B * D + b * S + j] = w;
                for (int d = 0; d < D; d++) y[b * D + d] += w * values[(b * S + j) * D + d];
            }
        }
        return y;
    }

    static void AssertNear(double[] want, ReadOnlySpan<float> got, double tol, string what)
    {
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= tol * (1 + Math.Abs(want[i])), $"{what}[{i}]: kernel {got[i]}, twin {want[i]}");
    }

    [Theory]
    [InlineData(1, 1)] [InlineData(7, 5)] [InlineData(16, 16)] [InlineData(19, 33)] [InlineData(33, 8)]
    public void ForwardAndBackwardMatchTheDoubleTwin(int U, int D)
    {
        var rng = new Random(U * 100 + D);
        double[] keys = Rand(rng, B * S * U), query = Rand(rng, B * U), v = Rand(rng, U), values = Rand(rng, B * S * D);
        double bias = 0.3;
        var mask = Mask();
        float[] hidden = new float[B * S * U], scores = new float[B * S], weights = new float[B * S], context = new float[B * D];
        AdditiveAttention.Forward(F(keys), F(query), F(v), (float)bias, F(values), mask, hidden, scores, weights, context, B, S, U, D);
        var want = Twin(keys, query, v, bias, values, U, D);
        AssertNear(want[..(B * D)], context, 5e-6, "context");
        AssertNear(want[(B * D)..(B * D + B * S)], weights, 5e-6, "weights");
        AssertNear(want[(B * D + B * S)..], scores, 5e-6, "scores");
        for (int j = 0; j < B * S; j++) if (mask[j] != 0f) Assert.Equal(0f, weights[j]);

        // backward: the gradient of L = Σ g·[context; weights; scores] against finite differences of the twin
        var g = Rand(rng, want.Length);
        double L(double[] k, double[] q, double[] vv, double bb, double[] val) => Twin(k, q, vv, bb, val, U, D).Zip(g, (a, c) => a * c).Sum();
        float[] dKeys = new float[B * S * U], dQuery = new float[B * U], dV = new float[U], dBias = new float[1], dValues = new float[B * S * D];
        var gf = F(g);
        AdditiveAttention.Backward(hidden, F(v), F(values), weights, gf.AsSpan(0, B * D), gf.AsSpan(B * D, B * S), gf.AsSpan(B * D + B * S, B * S),
            dKeys, dQuery, dV, dBias, dValues, B, S, U, D);
        double[] Fd(double[] x, Func<double> loss)
        {
            var d = new double[x.Length];
            for (int i = 0; i < x.Length; i++)
            {
                double o = x[i];
                x[i] = o + 1e-5; double up = loss(); x[i] = o - 1e-5; double down = loss(); x[i] = o;
                d[i] = (up - down) / 2e-5;
            }
            return d;
        }
        Func<double> full = () => L(keys, query, v, bias, values);
        AssertNear(Fd(keys, full), dKeys, 2e-5, "dKeys");
        AssertNear(Fd(query, full), dQuery, 2e-5, "dQuery");
        AssertNear(Fd(v, full), dV, 2e-5, "dV");
        AssertNear(Fd(values, full), dValues, 2e-5, "dValues");
        var bArr = new[] { bias };
        AssertNear(Fd(bArr, () => L(keys, query, v, bArr[0], values)), dBias, 2e-5, "dBias");
    }

    [Fact]
    public void FunctionalAdditiveAttentionGradientsMatchFiniteDifferences()
    {
        var rng = new Random(3);
        var mask = Tensor.FromArray(Mask(), B, S);
        Check(x =>
        {
            var r = Functional.AdditiveAttention(x[0], x[1], x[2], x[3], x[4], mask);
            return Tensor.Concat([r.Context.Reshape(-1), r.Weights.Reshape(-1), r.Scores.Reshape(-1)], 0);
        }, [Tensor.Uniform(rng, -1f, 1f, B, S, 5), Tensor.Uniform(rng, -1f, 1f, B, 5), Tensor.Uniform(rng, -1f, 1f, 1, 5),
            Tensor.FromArray([0.2f], 1), Tensor.Uniform(rng, -1f, 1f, B, S, 6)]);
    }
}
