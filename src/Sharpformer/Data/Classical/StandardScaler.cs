namespace Sharpformer.Classical;

/// <summary>Standardises features: z = (x − mean) / scale, as scikit-learn's <c>StandardScaler</c>.</summary>
/// <remarks>
/// mean_j = (1/n) Σ_i x_ij; scale_j = sqrt((1/n) Σ_i (x_ij − mean_j)²) (population std, ddof = 0).
/// A column is constant when var_j ≤ n·ε·var_j + (n·mean_j·ε)² (sklearn's <c>_is_constant_feature</c>, ε = 2.22e-16): its scale
/// is 1, so it maps to 0 instead of dividing by zero, as sklearn does.
/// </remarks>
public sealed class StandardScaler
{
    public double[] Mean { get; private set; } = [];
    public double[] Scale { get; private set; } = [];
    public bool IsFitted => Mean.Length > 0;

    public StandardScaler Fit(double[,] x) => Fit(Matrix.From(x));
    public StandardScaler Fit(IReadOnlyList<float[]> rows) => Fit(Matrix.From(rows));
    public double[,] Transform(double[,] x) => Transform(Matrix.From(x)).To2D();
    public double[,] Transform(IReadOnlyList<float[]> rows) => Transform(Matrix.From(rows)).To2D();
    public double[,] FitTransform(double[,] x) { var m = Matrix.From(x); Fit(m); return Transform(m).To2D(); }

    internal StandardScaler Fit(Matrix x)
    {
        if (x.Rows == 0) throw new ArgumentException("Cannot fit a scaler on zero rows.");
        int d = x.Cols;
        var mean = new double[d];
        var scale = new double[d];
        for (int i = 0; i < x.Rows; i++) { var r = x.Row(i); for (int j = 0; j < d; j++) mean[j] += r[j]; }
        for (int j = 0; j < d; j++) mean[j] /= x.Rows;
        for (int i = 0; i < x.Rows; i++) { var r = x.Row(i); for (int j = 0; j < d; j++) { double c = r[j] - mean[j]; scale[j] += c * c; } }
        for (int j = 0; j < d; j++)
        {
            double variance = scale[j] / x.Rows;
            // sklearn's _is_constant_feature: round-off in the mean leaves a tiny variance for a constant column.
            const double eps = 2.220446049250313e-16;
            double bound = x.Rows * eps * variance + Math.Pow(x.Rows * mean[j] * eps, 2);
            scale[j] = variance <= bound ? 1.0 : Math.Sqrt(variance);
        }
        Mean = mean;
        Scale = scale;
        return this;
    }

    internal Matrix Transform(Matrix x)
    {
        if (!IsFitted) throw new InvalidOperationException("StandardScaler is not fitted; call Fit first.");
        if (x.Cols != Mean.Length) throw new ArgumentException($"Input has {x.Cols} features but the scaler was fitted on {Mean.Length}.");
        var result = new Matrix(x.Rows, x.Cols);
        for (int i = 0; i < x.Rows; i++)
        {
            var src = x.Row(i);
            var dst = result.Row(i);
            for (int j = 0; j < x.Cols; j++) dst[j] = (src[j] - Mean[j]) / Scale[j];
        }
        return result;
    }
}

/// <summary>Dense row-major matrix of doubles used inside Sharpformer.Classical.</summary>
internal sealed partial class Matrix(int rows, int cols)
{
    public int Rows { get; } = rows;
    public int Cols { get; } = cols;
    public double[] Data { get; } = new double[checked(rows * cols)];

    public Span<double> Row(int i) => Data.AsSpan(i * Cols, Cols);

    public static Matrix From(double[,] x)
    {
        var m = new Matrix(x.GetLength(0), x.GetLength(1));
        for (int i = 0; i < m.Rows; i++) for (int j = 0; j < m.Cols; j++) m.Data[i * m.Cols + j] = x[i, j];
        m.CheckFinite();
        return m;
    }

    public static Matrix From(IReadOnlyList<float[]> rows)
    {
        int d = rows.Count == 0 ? 0 : rows[0].Length;
        var m = new Matrix(rows.Count, d);
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].Length != d) throw new ArgumentException($"Row {i} has {rows[i].Length} features but row 0 has {d}; all rows must have the same length.");
            for (int j = 0; j < d; j++) m.Data[i * d + j] = rows[i][j];
        }
        m.CheckFinite();
        return m;
    }

    public double[,] To2D()
    {
        var r = new double[Rows, Cols];
        for (int i = 0; i < Rows; i++) for (int j = 0; j < Cols; j++) r[i, j] = Data[i * Cols + j];
        return r;
    }

    void CheckFinite()
    {
        for (int k = 0; k < Data.Length; k++)
            if (!double.IsFinite(Data[k]))
                throw new ArgumentException($"Input has a non-finite value ({Data[k]}) at row {k / Math.Max(Cols, 1)}, column {k % Math.Max(Cols, 1)}; clean or impute it first.");
    }
}
