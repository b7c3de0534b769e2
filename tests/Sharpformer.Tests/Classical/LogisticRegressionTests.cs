using Sharpformer.Classical;
using Sharpformer.Data;

namespace Sharpformer.Tests.Classical;

public class LogisticRegressionTests
{
    // Same recipe as sklearn_reference.py (SplitMix64 + Box-Muller), so both sides fit identical numbers.
    static readonly double[][] Centres = [[5.0, 3.4, 1.5, 0.25], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.5, 2.0]];
    static readonly double[][] Spread = [[0.35, 0.38, 0.17, 0.1], [0.5, 0.31, 0.47, 0.2], [0.63, 0.32, 0.55, 0.27]];

    static (double[,] X, int[] Y) IrisLike(int perClass, ulong seed)
    {
        var rng = new SplitMix64(seed);
        double Normal()
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        }
        var x = new double[perClass * 3, 4];
        var y = new int[perClass * 3];
        for (int i = 0; i < perClass * 3; i++)
        {
            int c = i % 3;
            for (int j = 0; j < 4; j++) x[i, j] = Centres[c][j] + Spread[c][j] * Normal();
            y[i] = c;
        }
        return (x, y);
    }

    static double[,] Rows(double[,] x, IReadOnlyList<int> rows)
    {
        var r = new double[rows.Count, x.GetLength(1)];
        for (int i = 0; i < rows.Count; i++) for (int j = 0; j < x.GetLength(1); j++) r[i, j] = x[rows[i], j];
        return r;
    }

    [Fact]
    public void GeneratorMatchesThePythonReference()
    {
        var (x, _) = IrisLike(50, 42);
        double[] expected = [5.308787117177794, 3.228677047226833, 1.5320199477997083, 0.2719586379190761];
        for (int j = 0; j < 4; j++) Assert.Equal(expected[j], x[0, j], 1e-14);
    }

    [Theory]
    [InlineData(3, 1.0, true)]
    [InlineData(1, 0.3, true)]
    [InlineData(3, 2.0, false)]
    public void GradientMatchesFiniteDifferences(int rows, double c, bool intercept)
    {
        var (x, y) = IrisLike(6, 3);
        int[] yIdx = rows == 1 ? y.Select(v => v == 2 ? 1 : 0).ToArray() : y;
        int d = x.GetLength(1), n = rows * (d + 1);
        var rng = new SplitMix64(11);
        var theta = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        if (!intercept) for (int k = 0; k < rows; k++) theta[k * (d + 1) + d] = 0;
        var grad = new double[n];
        LogisticRegression.Objective(x, yIdx, rows, c, intercept, theta, grad);
        var scratch = new double[n];
        const double h = 1e-6;
        for (int i = 0; i < n; i++)
        {
            if (!intercept && i % (d + 1) == d) { Assert.Equal(0.0, grad[i]); continue; }
            var plus = (double[])theta.Clone(); plus[i] += h;
            var minus = (double[])theta.Clone(); minus[i] -= h;
            double numeric = (LogisticRegression.Objective(x, yIdx, rows, c, intercept, plus, scratch)
                              - LogisticRegression.Objective(x, yIdx, rows, c, intercept, minus, scratch)) / (2 * h);
            Assert.True(Math.Abs(numeric - grad[i]) <= 1e-6 * Math.Max(1, Math.Abs(numeric)), $"θ[{i}]: analytic {grad[i]}, numeric {numeric}");
        }
    }

    [Fact]
    public void BinaryFitEqualsNewtonSolution()
    {
        // Binary logistic with L2 has a unique optimum; solve it independently by Newton's method on the same objective.
        var (x, y) = IrisLike(20, 5);
        var keep = Enumerable.Range(0, y.Length).Where(i => y[i] > 0).ToArray();
        var xb = new StandardScaler().FitTransform(Rows(x, keep));
        var yb = keep.Select(i => y[i]).ToArray();
        const double C = 0.7;
        var model = new LogisticRegression(new LogisticRegressionOptions(C: C, Tolerance: 1e-9, MaxIterations: 1000, RelativeReductionTolerance: 0)).Fit(xb, yb);
        var newton = NewtonBinary(xb, yb.Select(v => v == 2 ? 1.0 : 0.0).ToArray(), C);
        int d = xb.GetLength(1);
        for (int j = 0; j < d; j++) Assert.Equal(newton[j], model.Coefficients[0, j], 1e-6);
        Assert.Equal(newton[d], model.Intercepts[0], 1e-6);
        Assert.Equal([1, 2], model.Classes);
    }

    static double[] NewtonBinary(double[,] x, double[] t, double c)
    {
        int n = x.GetLength(0), d = x.GetLength(1), p = d + 1;
        var w = new double[p];
        for (int iter = 0; iter < 50; iter++)
        {
            var g = new double[p];
            var h = new double[p, p];
            for (int i = 0; i < n; i++)
            {
                var xi = Enumerable.Range(0, p).Select(j => j < d ? x[i, j] : 1.0).ToArray();
                double z = xi.Zip(w, (a, b) => a * b).Sum(), s = 1 / (1 + Math.Exp(-z));
                for (int a = 0; a < p; a++)
                {
                    g[a] += (s - t[i]) * xi[a];
                    for (int b = 0; b < p; b++) h[a, b] += s * (1 - s) * xi[a] * xi[b];
                }
            }
            for (int a = 0; a < d; a++) { g[a] += w[a] / c; h[a, a] += 1 / c; }
            var step = Solve(h, g);
            for (int a = 0; a < p; a++) w[a] -= step[a];
            if (step.Max(Math.Abs) < 1e-14) break;
        }
        return w;
    }

    static double[] Solve(double[,] a, double[] b)
    {
        int n = b.Length;
        var m = (double[,])a.Clone();
        var v = (double[])b.Clone();
        for (int col = 0; col < n; col++)
        {
            int piv = Enumerable.Range(col, n - col).MaxBy(r => Math.Abs(m[r, col]));
            for (int k = 0; k < n; k++) (m[col, k], m[piv, k]) = (m[piv, k], m[col, k]);
            (v[col], v[piv]) = (v[piv], v[col]);
            for (int r = col + 1; r < n; r++)
            {
                double f = m[r, col] / m[col, col];
                for (int k = col; k < n; k++) m[r, k] -= f * m[col, k];
                v[r] -= f * v[col];
            }
        }
        var x = new double[n];
        for (int r = n - 1; r >= 0; r--)
        {
            double s = v[r];
            for (int k = r + 1; k < n; k++) s -= m[r, k] * x[k];
            x[r] = s / m[r, r];
        }
        return x;
    }

    [Fact]
    public void MultinomialFitIsFirstOrderOptimal()
    {
        var (x, y) = IrisLike(50, 42);
        var xs = new StandardScaler().FitTransform(x);
        var model = new LogisticRegression(new LogisticRegressionOptions(C: 0.1, Tolerance: 1e-8, MaxIterations: 1000, RelativeReductionTolerance: 0)).Fit(xs, y);
        Assert.Equal(LbfgsStop.GradientTolerance, model.Optimization!.Stop);
        var theta = new double[3 * 5];
        for (int k = 0; k < 3; k++) { for (int j = 0; j < 4; j++) theta[k * 5 + j] = model.Coefficients[k, j]; theta[k * 5 + 4] = model.Intercepts[k]; }
        var grad = new double[theta.Length];
        LogisticRegression.Objective(xs, y, 3, 0.1, true, theta, grad);
        Assert.True(grad.Max(Math.Abs) < 1e-5, $"max |∇f| = {grad.Max(Math.Abs)}");
    }

    [Fact]
    public void MatchesScikitLearnOnIrisLikeData()
    {
        // sklearn_reference.py: LogisticRegression(C=0.1, tol=1e-10, max_iter=10000) on StandardScaler output.
        var (x, y) = IrisLike(50, 42);
        var xs = new StandardScaler().FitTransform(x);
        var model = new LogisticRegression(new LogisticRegressionOptions(C: 0.1, Tolerance: 1e-10, MaxIterations: 10000)).Fit(xs, y);
        double[,] coef =
        {
            { -0.5591358279393533, 0.46553088068855575, -0.8575437831519445, -0.7652555314666126 },
            { 0.10306379083429845, -0.4870188129350234, 0.06903828691700466, -0.29719522785814295 },
            { 0.4560720371050548, 0.021487932246467743, 0.7885054962349403, 1.0624507593247554 },
        };
        double[] intercept = [-0.34596219647450277, 0.741517237955522, -0.3955550414810197];
        // scipy stops on its relative-reduction test (ftol 2.2e-9), so its point is optimal only to ~1e-4.
        for (int k = 0; k < 3; k++)
        {
            for (int j = 0; j < 4; j++) Assert.Equal(coef[k, j], model.Coefficients[k, j], 2e-4);
            Assert.Equal(intercept[k], model.Intercepts[k], 2e-4);
        }
        Assert.Equal(0.9733333333333334, model.Score(xs, y), 1e-12);
        var p = model.PredictProba(Rows(xs, [0]));
        double[] p0 = [0.8203388148114297, 0.17552391283220817, 0.004137272356362198];
        for (int k = 0; k < 3; k++) Assert.Equal(p0[k], p[0, k], 1e-4);
    }

    [Fact]
    public void DefaultOptionsMatchScikitLearnAccuracyAndCoefficients()
    {
        var (x, y) = IrisLike(50, 42);
        var scaler = new StandardScaler().Fit(x);
        var model = new LogisticRegression().Fit(scaler.Transform(x), y);
        Assert.Equal(1.0, model.Score(scaler.Transform(x), y));
        // C=1 nearly separates the classes: the objective is flat, so compare with a looser tolerance.
        Assert.Equal(-1.0697224208411302, model.Coefficients[0, 0], 5e-3);
        Assert.Equal(2.7903193144395666, model.Coefficients[2, 3], 5e-3);
        Assert.Equal(2.0708231315985057, model.Intercepts[1], 5e-3);
        var (xt, yt) = IrisLike(30, 7);
        Assert.Equal(0.9888888888888889, model.Score(scaler.Transform(xt), yt), 1e-12);
    }

    [Fact]
    public void BinaryMatchesScikitLearn()
    {
        var (x, y) = IrisLike(50, 42);
        var xs = new StandardScaler().FitTransform(x);
        var keep = Enumerable.Range(0, y.Length).Where(i => y[i] > 0).ToArray();
        var model = new LogisticRegression(new LogisticRegressionOptions(C: 0.5, Tolerance: 1e-10, MaxIterations: 10000))
            .Fit(Rows(xs, keep), keep.Select(i => y[i]).ToArray());
        double[] coef = [0.614896775026529, 0.22801030580284876, 1.693138435938091, 2.5360050521787447];
        Assert.Equal(1, model.Coefficients.GetLength(0));
        for (int j = 0; j < 4; j++) Assert.Equal(coef[j], model.Coefficients[0, j], 2e-4);
        Assert.Equal(-2.809494470829496, model.Intercepts[0], 2e-4);
        Assert.Equal(0.99, model.Score(Rows(xs, keep), keep.Select(i => y[i]).ToArray()), 1e-12);
    }

    [Fact]
    public void ResultDoesNotDependOnTheThreadCount()
    {
        var (x, y) = IrisLike(2000, 9); // 6,000 rows → the objective is summed in 2 fixed chunks
        var one = new LogisticRegression(new LogisticRegressionOptions(Threads: 1)).Fit(x, y);
        var two = new LogisticRegression(new LogisticRegressionOptions(Threads: 2)).Fit(x, y);
        Assert.Equal(one.Coefficients, two.Coefficients);
        Assert.Equal(one.Intercepts, two.Intercepts);
        Assert.Equal(one.Optimization!.Iterations, two.Optimization!.Iterations);
    }

    [Fact]
    public void MaxIterationsIsReportedAsNotConverged()
    {
        var (x, y) = IrisLike(50, 42);
        var model = new LogisticRegression(new LogisticRegressionOptions(MaxIterations: 2)).Fit(x, y);
        Assert.Equal(LbfgsStop.MaxIterations, model.Optimization!.Stop);
        Assert.False(model.Optimization.Converged);
        Assert.Equal(2, model.Optimization.Iterations);
    }

    [Fact]
    public void FloatRowsGiveTheSameModel()
    {
        var (x, y) = IrisLike(10, 1);
        var rows = Enumerable.Range(0, y.Length).Select(i => Enumerable.Range(0, 4).Select(j => (float)x[i, j]).ToArray()).ToArray();
        var asDouble = new double[y.Length, 4];
        for (int i = 0; i < y.Length; i++) for (int j = 0; j < 4; j++) asDouble[i, j] = rows[i][j];
        var a = new LogisticRegression().Fit(rows, y);
        var b = new LogisticRegression().Fit(asDouble, y);
        Assert.Equal(b.Coefficients, a.Coefficients);
        Assert.Equal(b.Predict(asDouble), a.Predict(rows));
    }

    [Fact]
    public void BadInputIsRejectedWithClearErrors()
    {
        var x = new double[,] { { 1, 2 }, { 3, double.NaN } };
        var e = Assert.Throws<ArgumentException>(() => new LogisticRegression().Fit(x, [0, 1]));
        Assert.Contains("row 1, column 1", e.Message);
        Assert.Throws<ArgumentException>(() => new LogisticRegression().Fit(new double[,] { { 1 }, { 2 } }, [0, 0]));
        Assert.Throws<InvalidOperationException>(() => new LogisticRegression().Predict(new double[,] { { 1 } }));
    }
}

public class StandardScalerTests
{
    [Fact]
    public void UsesPopulationStdAndLeavesConstantColumnsAtScaleOne()
    {
        var x = new double[,] { { 1, 5, 0.1 }, { 2, 5, 0.1 }, { 3, 5, 0.1 }, { 6, 5, 0.1 } };
        var s = new StandardScaler().Fit(x);
        Assert.Equal(3.0, s.Mean[0], 1e-15);
        Assert.Equal(Math.Sqrt((4 + 1 + 0 + 9) / 4.0), s.Scale[0], 1e-15); // ddof = 0
        Assert.Equal(1.0, s.Scale[1]);
        Assert.Equal(1.0, s.Scale[2]); // 0.1 is not exact in binary: round-off variance must still count as zero
        var z = s.Transform(x);
        Assert.Equal((1 - 3) / Math.Sqrt(3.5), z[0, 0], 1e-15);
        Assert.Equal(0.0, z[2, 1]);
        Assert.Equal(0.0, z[3, 2], 1e-15);
    }

    [Fact]
    public void TransformChecksTheFeatureCount()
    {
        var s = new StandardScaler().Fit(new double[,] { { 1, 2 }, { 3, 4 } });
        var e = Assert.Throws<ArgumentException>(() => s.Transform(new double[,] { { 1, 2, 3 } }));
        Assert.Contains("3 features", e.Message);
    }
}

public class LbfgsTests
{
    [Fact]
    public void MinimisesTheRosenbrockFunction()
    {
        // f = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1).
        static double Rosen(ReadOnlySpan<double> p, Span<double> g)
        {
            double x = p[0], y = p[1];
            g[0] = -2 * (1 - x) - 400 * x * (y - x * x);
            g[1] = 200 * (y - x * x);
            return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
        }
        var r = Lbfgs.Minimize(Rosen, [-1.2, 1.0], new LbfgsOptions(MaxIterations: 500, GradientTolerance: 1e-9, RelativeReductionTolerance: 0));
        Assert.Equal(LbfgsStop.GradientTolerance, r.Stop);
        Assert.Equal(1.0, r.X[0], 1e-7);
        Assert.Equal(1.0, r.X[1], 1e-7);
        Assert.True(r.Value < 1e-14);
    }

    [Fact]
    public void SolvesAQuadraticExactly()
    {
        // f = ½ xᵀAx − bᵀx with A = diag(1..20): minimiser x_i = b_i / i.
        int n = 20;
        double Quad(ReadOnlySpan<double> x, Span<double> g)
        {
            double f = 0;
            for (int i = 0; i < n; i++) { g[i] = (i + 1) * x[i] - 1; f += 0.5 * (i + 1) * x[i] * x[i] - x[i]; }
            return f;
        }
        var r = Lbfgs.Minimize(Quad, new double[n], new LbfgsOptions(GradientTolerance: 1e-8, RelativeReductionTolerance: 0));
        Assert.Equal(LbfgsStop.GradientTolerance, r.Stop);
        for (int i = 0; i < n; i++) Assert.Equal(1.0 / (i + 1), r.X[i], 1e-8);
    }
}
