using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>LayerNorm forward/backward against double twins (two-pass variance), every row length 1–256.</summary>
public class LayerNormTests
{
    static float[] Values(Random rng, int n, double spread, double shift = 0)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * spread + shift);
        return x;
    }

    [Fact]
    public void ForwardAndBackwardMatchReference()
    {
        var rng = new Random(1);
        const float eps = 1e-12f;
        for (int cols = 1; cols <= 256; cols++)
        {
            int rows = 3;
            var x = Values(rng, rows * cols, 2, shift: 3); var g = Values(rng, cols, 0.3, 1); var b = Values(rng, cols, 0.1);
            var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
            LayerNorm.Forward(x, g, b, y, rows, cols, eps, mean, rstd);
            var dy = Values(rng, rows * cols, 1); var dx = new float[rows * cols];
            var dg = Enumerable.Repeat(0.5f, cols).ToArray(); var db = Enumerable.Repeat(-0.25f, cols).ToArray();
            LayerNorm.Backward(x, g, mean, rstd, dy, dx, dg, db, rows, cols);

            var refDg = new double[cols]; var refDb = new double[cols];
            for (int r = 0; r < rows; r++)
            {
                double m = 0; for (int j = 0; j < cols; j++) m += x[r * cols + j]; m /= cols;
                double v = 0; for (int j = 0; j < cols; j++) v += (x[r * cols + j] - m) * (x[r * cols + j] - m); v /= cols;
                double rs = 1 / Math.Sqrt(v + eps);
                Assert.True(Math.Abs(mean[r] - m) <= 1e-6 * (Math.Abs(m) + 1), $"mean cols={cols}");
                Assert.True(Math.Abs(rstd[r] - rs) <= 2e-6 * rs, $"rstd cols={cols}: {rstd[r]} vs {rs}");
                double sg = 0, sgx = 0;
                for (int j = 0; j < cols; j++)
                {
                    double xh = (x[r * cols + j] - m) * rs;
                    double want = xh * g[j] + b[j];
                    // float rounding of x (|x| up to 5) and of the mean shows up scaled by rstd·γ
                    Assert.True(Math.Abs(y[r * cols + j] - want) <= 4e-7 * (Math.Abs(x[r * cols + j]) * rs + Math.Abs(xh) + 1) * Math.Abs(g[j]) + 2e-7 * Math.Abs(b[j]), $"y cols={cols} [{r},{j}] {y[r * cols + j]} vs {want}");
                    double gg = dy[r * cols + j] * g[j];
                    sg += gg; sgx += gg * xh;
                    refDg[j] += dy[r * cols + j] * xh; refDb[j] += dy[r * cols + j];
                }
                for (int j = 0; j < cols; j++)
                {
                    double xh = (x[r * cols + j] - m) * rs;
                    double want = rs * (dy[r * cols + j] * g[j] - (sg + xh * sgx) / cols);
                    Assert.True(Math.Abs(dx[r * cols + j] - want) <= 2e-5 * rs * (1 + Math.Abs(xh)), $"dx cols={cols} [{r},{j}] {dx[r * cols + j]} vs {want}");
                }
            }
            for (int j = 0; j < cols; j++)
            {
                Assert.True(Math.Abs(dg[j] - (0.5 + refDg[j])) <= 1e-5, $"dgamma cols={cols} [{j}]");
                Assert.True(Math.Abs(db[j] - (-0.25 + refDb[j])) <= 1e-5, $"dbeta cols={cols} [{j}]");
            }
        }
    }

    [Fact]
    public void ForwardInPlaceWithoutCachesAndBackwardWithoutParameterGrads()
    {
        var rng = new Random(2);
        int rows = 4, cols = 50;
        var x = Values(rng, rows * cols, 1); var g = Values(rng, cols, 0.2, 1); var b = Values(rng, cols, 0.1);
        var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNorm.Forward(x, g, b, y, rows, cols, 1e-5f, mean, rstd);
        var inPlace = (float[])x.Clone();
        LayerNorm.Forward(inPlace, g, b, inPlace, rows, cols, 1e-5f);
        Assert.Equal(y, inPlace);
        var dy = Values(rng, rows * cols, 1); var dx1 = new float[rows * cols]; var dg = new float[cols]; var db = new float[cols];
        LayerNorm.Backward(x, g, mean, rstd, dy, dx1, dg, db, rows, cols);
        var dx2 = new float[rows * cols];
        LayerNorm.Backward(x, g, mean, rstd, dy, dx2, default, default, rows, cols);
        Assert.Equal(dx1, dx2);
    }

    [Fact]
    public void BadShapesThrow()
    {
        var e = Assert.Throws<ArgumentException>(() => LayerNorm.Forward(new float[12], new float[3], new float[4], new float[12], 3, 4, 1e-5f));
        Assert.Contains("gamma", e.Message);
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(new float[11], new float[4], new float[4], new float[12], 3, 4, 1e-5f));
    }
}
