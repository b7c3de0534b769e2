namespace Sharpformer.Classical;

/// <summary>Computes f(x) and writes ∇f(x) into <c>gradient</c> (same length as x).</summary>
public delegate double Objective(ReadOnlySpan<double> x, Span<double> gradient);

/// <summary>Options for <see cref="Lbfgs.Minimize"/>; defaults follow scipy's L-BFGS-B as scikit-learn calls it.</summary>
/// <param name="MaxIterations">Maximum iterations (sklearn <c>max_iter</c>, default 100).</param>
/// <param name="GradientTolerance">Stop when max_i |∂f/∂x_i| ≤ this (scipy <c>gtol</c> = sklearn <c>tol</c>, default 1e-4).</param>
/// <param name="RelativeReductionTolerance">Stop when (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ this (scipy <c>ftol</c> = factr·eps = 2.22e-9); 0 disables this test.</param>
/// <param name="History">Number of (s, y) pairs kept (m, default 10).</param>
/// <param name="MaxLineSearchSteps">Function evaluations allowed per line search (scipy <c>maxls</c>, default 20).</param>
public sealed record LbfgsOptions(
    int MaxIterations = 100,
    double GradientTolerance = 1e-4,
    double RelativeReductionTolerance = 2.220446049250313e-9,
    int History = 10,
    int MaxLineSearchSteps = 20);

/// <summary>Why <see cref="Lbfgs.Minimize"/> stopped.</summary>
public enum LbfgsStop
{
    /// <summary>Gradient max-norm below <see cref="LbfgsOptions.GradientTolerance"/>.</summary>
    GradientTolerance,
    /// <summary>Relative reduction of f below <see cref="LbfgsOptions.RelativeReductionTolerance"/>.</summary>
    RelativeReduction,
    /// <summary><see cref="LbfgsOptions.MaxIterations"/> reached (not converged; sklearn warns ConvergenceWarning).</summary>
    MaxIterations,
    /// <summary>The line search found no step satisfying the Wolfe conditions (usually at round-off level).</summary>
    LineSearchFailed,
}

/// <summary>Result of a minimisation: the point, its value and gradient norm, and how it stopped.</summary>
public sealed record LbfgsResult(double[] X, double Value, double GradientMaxNorm, int Iterations, int FunctionEvaluations, LbfgsStop Stop)
{
    /// <summary>True when a tolerance was met (not the iteration cap or a line-search failure).</summary>
    public bool Converged => Stop is LbfgsStop.GradientTolerance or LbfgsStop.RelativeReduction;
}

/// <summary>
/// Limited-memory BFGS (Nocedal 1980; Liu &amp; Nocedal 1989) with a strong-Wolfe line search
/// (Nocedal &amp; Wright, Numerical Optimization, 2nd ed., Algorithms 3.5/3.6, cubic interpolation in zoom).
/// </summary>
/// <remarks>
/// Direction d = −H·g by the two-loop recursion over the last m pairs s = x_{k+1} − x_k, y = g_{k+1} − g_k with
/// H₀ = (sᵀy / yᵀy)·I; a pair with sᵀy ≤ 1e-10·yᵀy is not stored (keeps H positive definite).
/// Line search: c₁ = 1e-4, c₂ = 0.9, first trial step 1 (1/‖g‖₂ on the first iteration); where |f(x+αd) − f(x)| is at
/// round-off level (≤ 1e-12·|f|) Hager–Zhang's approximate Wolfe test (2c₁−1)·φ'(0) ≥ φ'(α) ≥ c₂·φ'(0) is accepted instead.
/// </remarks>
public static class Lbfgs
{
    const double C1 = 1e-4, C2 = 0.9;

    public static LbfgsResult Minimize(Objective f, ReadOnlySpan<double> x0, LbfgsOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LbfgsOptions();
        if (options.History <= 0) throw new ArgumentOutOfRangeException(nameof(options), "History must be positive.");
        int n = x0.Length;
        var x = x0.ToArray();
        var g = new double[n];
        int evals = 1;
        double fx = f(x, g);
        CheckFinite(fx, g, 0);
        var s = new double[options.History][];
        var y = new double[options.History][];
        var rho = new double[options.History];
        var alpha = new double[options.History];
        int stored = 0, head = 0; // ring buffer: newest pair at (head − 1)
        var d = new double[n];
        var xNew = new double[n];
        var gNew = new double[n];
        int iter = 0;
        if (MaxAbs(g) <= options.GradientTolerance) return new LbfgsResult(x, fx, MaxAbs(g), 0, evals, LbfgsStop.GradientTolerance);

        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (iter >= options.MaxIterations) return new LbfgsResult(x, fx, MaxAbs(g), iter, evals, LbfgsStop.MaxIterations);

            // Two-loop recursion: d = −H g.
            for (int i = 0; i < n; i++) d[i] = -g[i];
            for (int j = 0; j < stored; j++)
            {
                int k = (head - 1 - j + options.History) % options.History;
                alpha[k] = rho[k] * Dot(s[k], d);
                Axpy(-alpha[k], y[k], d);
            }
            if (stored > 0)
            {
                int newest = (head - 1 + options.History) % options.History;
                double gamma = Dot(s[newest], y[newest]) / Dot(y[newest], y[newest]);
                for (int i = 0; i < n; i++) d[i] *= gamma;
            }
            for (int j = stored - 1; j >= 0; j--)
            {
                int k = (head - 1 - j + options.History) % options.History;
                double beta = rho[k] * Dot(y[k], d);
                Axpy(alpha[k] - beta, s[k], d);
            }
            double dphi0 = Dot(g, d);
            if (!(dphi0 < 0))
            {
                // Not a descent direction (round-off in H): restart from steepest descent.
                stored = 0;
                for (int i = 0; i < n; i++) d[i] = -g[i];
                dphi0 = Dot(g, d);
            }
            double step0 = stored == 0 ? Math.Min(1.0, 1.0 / Math.Sqrt(Dot(g, g))) : 1.0;
            var (ok, step, fNew, used) = LineSearch(f, x, fx, dphi0, d, step0, options.MaxLineSearchSteps, xNew, gNew);
            evals += used;
            if (!ok) return new LbfgsResult(x, fx, MaxAbs(g), iter, evals, LbfgsStop.LineSearchFailed);
            iter++;

            var sNew = s[head] ??= new double[n];
            var yNew = y[head] ??= new double[n];
            for (int i = 0; i < n; i++) { sNew[i] = xNew[i] - x[i]; yNew[i] = gNew[i] - g[i]; }
            double sy = Dot(sNew, yNew), yy = Dot(yNew, yNew);
            if (sy > 1e-10 * yy && sy > 0)
            {
                rho[head] = 1.0 / sy;
                head = (head + 1) % options.History;
                stored = Math.Min(stored + 1, options.History);
            }
            double fOld = fx;
            Array.Copy(xNew, x, n);
            Array.Copy(gNew, g, n);
            fx = fNew;
            double gmax = MaxAbs(g);
            if (gmax <= options.GradientTolerance) return new LbfgsResult(x, fx, gmax, iter, evals, LbfgsStop.GradientTolerance);
            if (options.RelativeReductionTolerance > 0 && (fOld - fx) / Math.Max(Math.Max(Math.Abs(fOld), Math.Abs(fx)), 1.0) <= options.RelativeReductionTolerance)
                return new LbfgsResult(x, fx, gmax, iter, evals, LbfgsStop.RelativeReduction);
        }
    }

    // Strong-Wolfe line search along d from x (Nocedal & Wright Alg. 3.5). On success xOut/gOut hold the accepted point.
    static (bool Ok, double Step, double Value, int Evals) LineSearch(Objective f, double[] x, double f0, double dphi0, double[] d,
        double step, int maxEvals, double[] xOut, double[] gOut)
    {
        int evals = 0;
        double aPrev = 0, fPrev = f0, dPrev = dphi0;
        double Eval(double a, out double dphi)
        {
            for (int i = 0; i < x.Length; i++) xOut[i] = x[i] + a * d[i];
            double v = f(xOut, gOut);
            evals++;
            dphi = Dot(gOut, d);
            return v;
        }
        // Hager & Zhang (2005) approximate Wolfe conditions, used only where f no longer changes beyond round-off:
        // there Armijo's test compares noise, while the slope still tells whether the step is good.
        bool ApproximateWolfe(double fa, double da) =>
            double.IsFinite(fa) && Math.Abs(fa - f0) <= 1e-12 * Math.Max(Math.Abs(f0), 1e-300) && da >= C2 * dphi0 && da <= (2 * C1 - 1) * dphi0;
        for (int i = 0; evals < maxEvals; i++)
        {
            double fa = Eval(step, out double da);
            if (ApproximateWolfe(fa, da)) return (true, step, fa, evals);
            if (!double.IsFinite(fa) || fa > f0 + C1 * step * dphi0 || (i > 0 && fa >= fPrev))
                return Zoom(aPrev, step, fPrev, double.IsFinite(fa) ? fa : double.MaxValue, dPrev, double.IsFinite(da) ? da : double.NaN);
            if (Math.Abs(da) <= -C2 * dphi0) return (true, step, fa, evals);
            if (da >= 0) return Zoom(step, aPrev, fa, fPrev, da, dPrev);
            aPrev = step; fPrev = fa; dPrev = da;
            step *= 2;
        }
        if (aPrev > 0) { double v = Eval(aPrev, out _); return (true, aPrev, v, evals); }
        return (false, 0, f0, evals);

        (bool, double, double, int) Zoom(double lo, double hi, double flo, double fhi, double dlo, double dhi)
        {
            double bestA = lo, bestF = flo;
            while (evals < maxEvals)
            {
                double a = Interpolate(lo, hi, flo, fhi, dlo, dhi);
                double fa = Eval(a, out double da);
                if (ApproximateWolfe(fa, da)) return (true, a, fa, evals);
                if (!double.IsFinite(fa) || fa > f0 + C1 * a * dphi0 || fa >= flo)
                {
                    hi = a; fhi = double.IsFinite(fa) ? fa : double.MaxValue; dhi = double.IsFinite(da) ? da : double.NaN;
                }
                else
                {
                    if (Math.Abs(da) <= -C2 * dphi0) return (true, a, fa, evals);
                    if (da * (hi - lo) >= 0) { hi = lo; fhi = flo; dhi = dlo; }
                    lo = a; flo = fa; dlo = da;
                    bestA = a; bestF = fa;
                }
                if (Math.Abs(hi - lo) <= 1e-16 * Math.Max(Math.Abs(lo), 1)) break;
            }
            // Out of evaluations: accept a point with sufficient decrease if we have one (as scipy does on maxls).
            if (bestA > 0)
            {
                double v = Eval(bestA, out _);
                return (true, bestA, v, evals);
            }
            return (false, 0, f0, evals);
        }
    }

    // Minimiser of the cubic through (lo, flo, dlo) and (hi, fhi, dhi), kept inside the middle 80 % of the interval;
    // bisection when the cubic is not usable.
    static double Interpolate(double lo, double hi, double flo, double fhi, double dlo, double dhi)
    {
        double a = Math.Min(lo, hi), b = Math.Max(lo, hi), width = b - a;
        double t = double.NaN;
        if (double.IsFinite(dhi) && fhi < double.MaxValue)
        {
            double d1 = dlo + dhi - 3 * (flo - fhi) / (lo - hi);
            double disc = d1 * d1 - dlo * dhi;
            if (disc >= 0)
            {
                double d2 = Math.Sign(hi - lo) * Math.Sqrt(disc);
                t = hi - (hi - lo) * (dhi + d2 - d1) / (dhi - dlo + 2 * d2);
            }
        }
        if (!double.IsFinite(t) || t < a + 0.1 * width || t > b - 0.1 * width) t = 0.5 * (lo + hi);
        return t;
    }

    static void CheckFinite(double f, double[] g, int iter)
    {
        if (!double.IsFinite(f)) throw new ArithmeticException($"Objective is not finite ({f}) at iteration {iter}; check the input for NaN/∞ or rescale it.");
        foreach (var v in g) if (!double.IsFinite(v)) throw new ArithmeticException($"Gradient has a non-finite entry at iteration {iter}; check the input for NaN/∞.");
    }

    internal static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
    static void Axpy(double a, double[] x, double[] y) { for (int i = 0; i < y.Length; i++) y[i] += a * x[i]; }
    static double MaxAbs(double[] v) { double m = 0; foreach (var e in v) m = Math.Max(m, Math.Abs(e)); return m; }
}
