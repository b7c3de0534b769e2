using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Every kernel backward against central finite differences of a double-precision forward:
/// for L(x) = Σ g ⊙ f(x), dL/dxᵢ ≈ (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h with h = 1e-5 (error ~1e-10).
/// Tolerance: 2e-5 · (1 + |dL/dxᵢ|), float rounding of the kernel's own arithmetic.
/// </summary>
public class BackwardFiniteDifferenceTests
{
    const double H = 1e-5;

    static double[] Rand(Random rng, int n, double spread = 1) => Enumerable.Range(0, n).Select(_ => (rng.NextDouble() * 2 - 1) * spread).ToArray();
    static float[] F(double[] x) => x.Select(v => (float)v).ToArray();

    static double[] NumericGrad(double[] x, double[] g, Func<double[], double[]> f)
    {
        var grad = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            var xp = (double[])x.Clone(); xp[i] += H;
            var xm = (double[])x.Clone(); xm[i] -= H;
            double lp = f(xp).Zip(g, (a, b) => a * b).Sum(), lm = f(xm).Zip(g, (a, b) => a * b).Sum();
            grad[i] = (lp - lm) / (2 * H);
        }
        return grad;
    }

    static void AssertGrad(double[] want, float[] got, string what)
    {
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= 2e-5 * (1 + Math.Abs(want[i])), $"{what}[{i}]: kernel {got[i]}, finite difference {want[i]}");
    }

    static double[] SoftmaxRows(double[] x, int rows, int cols, bool log)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity; for (int j = 0; j < cols; j++) max = Math.Max(max, x[r * cols + j]);
            double sum = 0; for (int j = 0; j < cols; j++) sum += Math.Exp(x[r * cols + j] - max);
            for (int j = 0; j < cols; j++) y[r * cols + j] = log ? x[r * cols + j] - max - Math.Log(sum) : Math.Exp(x[r * cols + j] - max) / sum;
        }
        return y;
    }

    [Fact]
    public void SoftmaxAndLogSoftmax()
    {
        var rng = new Random(1);
        int rows = 3, cols = 19;
        var x = Rand(rng, rows * cols, 3); var g = Rand(rng, rows * cols);
        foreach (bool log in new[] { false, true })
        {
            var y = new float[x.Length]; var dx = new float[x.Length];
            if (log) { Softmax.LogForward(F(x), y, rows, cols); Softmax.LogBackward(y, F(g), dx, rows, cols); }
            else { Softmax.Forward(F(x), y, rows, cols); Softmax.Backward(y, F(g), dx, rows, cols); }
            AssertGrad(NumericGrad(x, g, v => SoftmaxRows(v, rows, cols, log)), dx, log ? "log-softmax" : "softmax");
        }
    }

    [Fact]
    public void LayerNormInputGammaAndBeta()
    {
        var rng = new Random(2);
        int rows = 3, cols = 21; const double eps = 1e-5;
        var x = Rand(rng, rows * cols, 2); var gamma = Rand(rng, cols, 1); var beta = Rand(rng, cols, 1); var g = Rand(rng, rows * cols);
        double[] Ln(double[] xv, double[] gv, double[] bv)
        {
            var y = new double[xv.Length];
            for (int r = 0; r < rows; r++)
            {
                double m = 0; for (int j = 0; j < cols; j++) m += xv[r * cols + j]; m /= cols;
                double v = 0; for (int j = 0; j < cols; j++) v += Math.Pow(xv[r * cols + j] - m, 2); v /= cols;
                for (int j = 0; j < cols; j++) y[r * cols + j] = (xv[r * cols + j] - m) / Math.Sqrt(v + eps) * gv[j] + bv[j];
            }
            return y;
        }
        var yk = new float[x.Length]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNorm.Forward(F(x), F(gamma), F(beta), yk, rows, cols, (float)eps, mean, rstd);
        var dx = new float[x.Length]; var dgamma = new float[cols]; var dbeta = new float[cols];
        LayerNorm.Backward(F(x), F(gamma), mean, rstd, F(g), dx, dgamma, dbeta, rows, cols);
        AssertGrad(NumericGrad(x, g, v => Ln(v, gamma, beta)), dx, "layer norm dx");
        AssertGrad(NumericGrad(gamma, g, v => Ln(x, v, beta)), dgamma, "layer norm dgamma");
        AssertGrad(NumericGrad(beta, g, v => Ln(x, gamma, v)), dbeta, "layer norm dbeta");
    }

    [Fact]
    public void Activations()
    {
        var rng = new Random(3);
        int n = 37;
        var x = Rand(rng, n, 4).Select(v => Math.Abs(v) < 1e-3 ? 0.5 : v).ToArray(); // keep away from ReLU's kink
        var g = Rand(rng, n);
        var dx = new float[n];

        Sharpformer.Kernels.Activations.GeluErf(F(x), new float[n]);
        Sharpformer.Kernels.Activations.GeluErfBackward(F(x), F(g), dx);
        AssertGrad(NumericGrad(x, g, v => v.Select(t => 0.5 * t * (1 + ActivationTests.RefErf(t / Math.Sqrt(2)))).ToArray()), dx, "gelu erf");

        Sharpformer.Kernels.Activations.GeluTanhBackward(F(x), F(g), dx);
        AssertGrad(NumericGrad(x, g, v => v.Select(t => 0.5 * t * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (t + 0.044715 * t * t * t)))).ToArray()), dx, "gelu tanh");

        var y = new float[n];
        Sharpformer.Kernels.Activations.Tanh(F(x), y);
        Sharpformer.Kernels.Activations.TanhBackward(y, F(g), dx);
        AssertGrad(NumericGrad(x, g, v => v.Select(Math.Tanh).ToArray()), dx, "tanh");

        Sharpformer.Kernels.Activations.ReluBackward(F(x), F(g), dx);
        AssertGrad(NumericGrad(x, g, v => v.Select(t => Math.Max(t, 0)).ToArray()), dx, "relu");
    }
}
