using System.Numerics.Tensors;

namespace Sharpformer.Classical;

/// <summary>Options of <see cref="LogisticRegression"/> (scikit-learn names in the docs).</summary>
/// <param name="C">Inverse regularisation strength (sklearn <c>C</c>, default 1).</param>
/// <param name="MaxIterations">L-BFGS iterations (sklearn <c>max_iter</c>, default 100).</param>
/// <param name="Tolerance">Gradient max-norm tolerance (sklearn <c>tol</c>, default 1e-4).</param>
/// <param name="FitIntercept">Fit an unpenalised intercept per class (default true).</param>
/// <param name="RelativeReductionTolerance">Also stop when the relative decrease of the objective is at most this
/// (scipy's ftol, 2.22e-9, which sklearn keeps); 0 stops only on the gradient test or the iteration cap.</param>
/// <param name="Threads">Threads for the objective (0 = all cores); results do not depend on it.</param>
public sealed record LogisticRegressionOptions(double C = 1.0, int MaxIterations = 100, double Tolerance = 1e-4, bool FitIntercept = true,
    double RelativeReductionTolerance = 2.220446049250313e-9, int Threads = 0);

/// <summary>
/// L2-regularised logistic regression trained with <see cref="Lbfgs"/>, as scikit-learn 1.2's
/// <c>LogisticRegression(solver="lbfgs")</c>: binary logistic for 2 classes, multinomial (softmax over all K classes,
/// K full weight rows) for K ≥ 3.
/// </summary>
/// <remarks>
/// Objective (sklearn 1.2 lbfgs form; same minimiser as C·Σ CE + ½‖W‖²):
/// f(W, b) = Σ_i CE_i + (1 / (2C))·‖W‖²_F, intercepts b not penalised.
/// Multinomial: CE_i = logΣ_k exp(z_ik) − z_{i,y_i}, z_ik = w_k·x_i + b_k; ∇_{w_k} = Σ_i (p_ik − [y_i = k]) x_i + w_k / C.
/// Binary: z_i = w·x_i + b, CE_i = log(1 + e^{z_i}) − t_i z_i with t_i = [y_i = classes[1]]; ∇_w = Σ_i (σ(z_i) − t_i) x_i + w / C.
/// Stops when max|∇f| ≤ tol, the relative decrease of f is ≤ 2.22e-9, or after MaxIterations (see <see cref="Optimization"/>).
/// </remarks>
public sealed class LogisticRegression
{
    public LogisticRegression(LogisticRegressionOptions? options = null)
    {
        Options = options ?? new LogisticRegressionOptions();
        if (!(Options.C > 0)) throw new ArgumentOutOfRangeException(nameof(options), Options.C, "C must be positive.");
    }

    public LogisticRegressionOptions Options { get; }

    /// <summary>Sorted distinct labels seen in Fit (sklearn <c>classes_</c>).</summary>
    public int[] Classes { get; private set; } = [];

    /// <summary>Weights [rows, features]: 1 row for binary problems (for classes[1]), K rows otherwise (sklearn <c>coef_</c>).</summary>
    public double[,] Coefficients { get; private set; } = new double[0, 0];

    /// <summary>Intercepts, one per weight row (sklearn <c>intercept_</c>).</summary>
    public double[] Intercepts { get; private set; } = [];

    /// <summary>How the last Fit ended (iterations = sklearn <c>n_iter_</c>, convergence, final gradient norm).</summary>
    public LbfgsResult? Optimization { get; private set; }

    public LogisticRegression Fit(double[,] x, IReadOnlyList<int> y, CancellationToken cancellationToken = default) => Fit(Matrix.From(x), y, cancellationToken);
    public LogisticRegression Fit(IReadOnlyList<float[]> rows, IReadOnlyList<int> y, CancellationToken cancellationToken = default) => Fit(Matrix.From(rows), y, cancellationToken);

    /// <summary>Fits on sparse rows (bag-of-words, TF-IDF); same objective as the dense overloads.</summary>
    public LogisticRegression Fit(SparseRows x, IReadOnlyList<int> y, CancellationToken cancellationToken = default) => Fit((IFeatureRows)x, y, cancellationToken);

    public int[] Predict(double[,] x) => Predict(Matrix.From(x));
    public int[] Predict(SparseRows x) => Predict((IFeatureRows)x);
    public int[] Predict(IReadOnlyList<float[]> rows) => Predict(Matrix.From(rows));

    /// <summary>Class probabilities [n, K] in the order of <see cref="Classes"/>.</summary>
    public double[,] PredictProba(double[,] x) => PredictProba(Matrix.From(x)).To2D();
    public double[,] PredictProba(IReadOnlyList<float[]> rows) => PredictProba(Matrix.From(rows)).To2D();
    public double[,] PredictProba(SparseRows x) => PredictProba((IFeatureRows)x).To2D();

    /// <summary>Mean accuracy on (x, y) (sklearn <c>score</c>).</summary>
    public double Score(double[,] x, IReadOnlyList<int> y)
    {
        var p = Predict(x);
        if (p.Length != y.Count) throw new ArgumentException($"{p.Length} rows but {y.Count} labels.");
        return (double)p.Where((v, i) => v == y[i]).Count() / p.Length;
    }

    /// <summary>The objective f(θ) and its gradient for parameters θ laid out as rows [w_k (features), b_k].</summary>
    /// <remarks>Public so tests can check the gradient by finite differences.</remarks>
    public static double Objective(double[,] x, IReadOnlyList<int> yIndex, int rows, double c, bool fitIntercept, ReadOnlySpan<double> theta, Span<double> gradient) =>
        new Problem(Matrix.From(x), yIndex.ToArray(), rows, c, fitIntercept).Evaluate(theta, gradient);

    internal LogisticRegression Fit(IFeatureRows x, IReadOnlyList<int> y, CancellationToken cancellationToken)
    {
        if (x.Rows != y.Count) throw new ArgumentException($"x has {x.Rows} rows but y has {y.Count} labels.", nameof(y));
        if (x.Rows == 0) throw new ArgumentException("Cannot fit on zero rows.", nameof(x));
        var classes = y.Distinct().Order().ToArray();
        if (classes.Length < 2)
            throw new ArgumentException($"Need at least 2 classes in y, found only {(classes.Length == 0 ? "none" : classes[0].ToString(System.Globalization.CultureInfo.InvariantCulture))}.", nameof(y));
        var index = new int[y.Count];
        for (int i = 0; i < y.Count; i++) index[i] = Array.BinarySearch(classes, y[i]);
        int rows = classes.Length == 2 ? 1 : classes.Length;
        var problem = new Problem(x, index, rows, Options.C, Options.FitIntercept, Options.Threads);
        var theta0 = new double[rows * (x.Cols + 1)];
        var result = Lbfgs.Minimize(problem.Evaluate, theta0,
            new LbfgsOptions(MaxIterations: Options.MaxIterations, GradientTolerance: Options.Tolerance,
                RelativeReductionTolerance: Options.RelativeReductionTolerance), cancellationToken);
        var coef = new double[rows, x.Cols];
        var intercepts = new double[rows];
        for (int k = 0; k < rows; k++)
        {
            for (int j = 0; j < x.Cols; j++) coef[k, j] = result.X[k * (x.Cols + 1) + j];
            intercepts[k] = result.X[k * (x.Cols + 1) + x.Cols];
        }
        Classes = classes;
        Coefficients = coef;
        Intercepts = intercepts;
        Optimization = result;
        return this;
    }

    internal int[] Predict(IFeatureRows x)
    {
        var p = PredictProba(x);
        var result = new int[x.Rows];
        for (int i = 0; i < x.Rows; i++) result[i] = Classes[TensorPrimitives.IndexOfMax(p.Row(i))];
        return result;
    }

    internal Matrix PredictProba(IFeatureRows x)
    {
        if (Classes.Length == 0) throw new InvalidOperationException("LogisticRegression is not fitted; call Fit first.");
        int d = Coefficients.GetLength(1), rows = Coefficients.GetLength(0);
        if (x.Cols != d) throw new ArgumentException($"Input has {x.Cols} features but the model was fitted on {d}.");
        var theta = new double[rows * (d + 1)];
        for (int k = 0; k < rows; k++)
        {
            for (int j = 0; j < d; j++) theta[k * (d + 1) + j] = Coefficients[k, j];
            theta[k * (d + 1) + d] = Intercepts[k];
        }
        var proba = new Matrix(x.Rows, Classes.Length);
        var z = new double[rows];
        for (int i = 0; i < x.Rows; i++)
        {
            Problem.Logits(x, i, theta, rows, d, z);
            var p = proba.Row(i);
            if (rows == 1) { p[1] = Sigmoid(z[0]); p[0] = 1 - p[1]; }
            else Softmax(z, p);
        }
        return proba;
    }

    static double Sigmoid(double z) => z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));

    static double Softmax(ReadOnlySpan<double> z, Span<double> p)
    {
        double max = TensorPrimitives.Max(z), sum = 0;
        for (int k = 0; k < z.Length; k++) { p[k] = Math.Exp(z[k] - max); sum += p[k]; }
        for (int k = 0; k < z.Length; k++) p[k] /= sum;
        return max + Math.Log(sum); // log-sum-exp
    }

    sealed class Problem(IFeatureRows x, int[] y, int rows, double c, bool fitIntercept, int threads = 0)
    {
        // Σ CE over rows [from, to) and its gradient (without the penalty), added into grad.
        double Accumulate(double[] theta, double[] grad, int from, int to)
        {
            int d = x.Cols, stride = d + 1;
            double loss = 0;
            Span<double> zBuf = stackalloc double[Math.Max(rows, 2)];
            Span<double> pBuf = stackalloc double[Math.Max(rows, 2)];
            for (int i = from; i < to; i++)
            {
                Logits(x, i, theta, rows, d, zBuf);
                if (rows == 1)
                {
                    double zi = zBuf[0], t = y[i];
                    // log(1 + e^z) computed stably.
                    loss += (zi > 0 ? zi + double.LogP1(Math.Exp(-zi)) : double.LogP1(Math.Exp(zi))) - t * zi;
                    pBuf[0] = Sigmoid(zi) - t;
                }
                else
                {
                    double lse = Softmax(zBuf[..rows], pBuf[..rows]);
                    loss += lse - zBuf[y[i]];
                    pBuf[y[i]] -= 1;
                }
                for (int k = 0; k < rows; k++)
                {
                    double r = pBuf[k];
                    if (r == 0) continue;
                    var g = grad.AsSpan(k * stride, stride);
                    x.AddScaled(i, r, g[..d]);
                    g[d] += r;
                }
            }
            return loss;
        }

        public static void Logits(IFeatureRows x, int i, ReadOnlySpan<double> theta, int rows, int d, Span<double> z)
        {
            for (int k = 0; k < rows; k++)
            {
                var w = theta.Slice(k * (d + 1), d + 1);
                z[k] = x.Dot(i, w[..d]) + w[d];
            }
        }

        public double Evaluate(ReadOnlySpan<double> theta, Span<double> grad)
        {
            int d = x.Cols, stride = d + 1;
            if (theta.Length != rows * stride) throw new ArgumentException($"θ has {theta.Length} entries, expected {rows * stride}.");
            // Rows are split into a fixed number of chunks that depends only on the data size, and the chunk sums are
            // added in chunk order, so the result is bit-identical whatever the thread count.
            int chunks = Math.Clamp(x.Rows / 2048, 1, 8);
            var thetaArr = theta.ToArray();
            var partialGrad = new double[chunks][];
            var partialLoss = new double[chunks];
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount }, chunk =>
            {
                var g = partialGrad[chunk] = new double[rows * stride];
                int from = (int)((long)x.Rows * chunk / chunks), to = (int)((long)x.Rows * (chunk + 1) / chunks);
                partialLoss[chunk] = Accumulate(thetaArr, g, from, to);
            });
            grad.Clear();
            double loss = 0;
            for (int chunk = 0; chunk < chunks; chunk++)
            {
                loss += partialLoss[chunk];
                TensorPrimitives.Add(grad, partialGrad[chunk], grad);
            }
            double penalty = 0;
            for (int k = 0; k < rows; k++)
            {
                var w = theta.Slice(k * stride, d);
                var g = grad.Slice(k * stride, stride);
                penalty += TensorPrimitives.Dot(w, w);
                TensorPrimitives.MultiplyAdd(w, 1.0 / c, g[..d], g[..d]);
                if (!fitIntercept) g[d] = 0;
            }
            return loss + 0.5 / c * penalty;
        }
    }
}
