using System.Numerics.Tensors;

namespace Sharpformer.Classical;

/// <summary>Rows of features as read by <see cref="LogisticRegression"/>: x_i·w and g += a·x_i.</summary>
internal interface IFeatureRows
{
    int Rows { get; }
    int Cols { get; }
    double Dot(int row, ReadOnlySpan<double> w);
    void AddScaled(int row, double a, Span<double> g);
}

/// <summary>
/// Sparse feature rows in compressed-row (CSR) form, e.g. bag-of-words or TF-IDF vectors: add each row as
/// (column indices, values). Absent columns are 0.
/// </summary>
public sealed class SparseRows : IFeatureRows
{
    int[] _rowStart = new int[16];
    int _rows;
    int[] _indices = new int[64];
    double[] _values = new double[64];
    int _nnz;

    public SparseRows(int featureCount)
    {
        if (featureCount <= 0) throw new ArgumentOutOfRangeException(nameof(featureCount), featureCount, "Feature count must be positive.");
        Cols = featureCount;
    }

    public int Rows => _rows;
    public int Cols { get; }
    public long NonZeros => _nnz;

    /// <summary>Appends a row; indices must be in 0..featureCount−1 (any order, no repeats) and values finite.</summary>
    public SparseRows Add(ReadOnlySpan<int> indices, ReadOnlySpan<float> values)
    {
        if (indices.Length != values.Length)
            throw new ArgumentException($"Row {Rows}: {indices.Length} indices but {values.Length} values.");
        var seen = new HashSet<int>();
        for (int k = 0; k < indices.Length; k++)
        {
            if ((uint)indices[k] >= (uint)Cols) throw new ArgumentException($"Row {Rows}: column {indices[k]} is outside 0..{Cols - 1}.");
            if (!seen.Add(indices[k])) throw new ArgumentException($"Row {Rows}: column {indices[k]} appears twice; sum the values first.");
            if (!float.IsFinite(values[k])) throw new ArgumentException($"Row {Rows}, column {indices[k]}: value {values[k]} is not finite.");
        }
        if (_nnz + indices.Length > _indices.Length)
        {
            int size = Math.Max(_indices.Length * 2, _nnz + indices.Length);
            Array.Resize(ref _indices, size);
            Array.Resize(ref _values, size);
        }
        if (_rows + 2 > _rowStart.Length) Array.Resize(ref _rowStart, _rowStart.Length * 2);
        for (int k = 0; k < indices.Length; k++) { _indices[_nnz + k] = indices[k]; _values[_nnz + k] = values[k]; }
        _nnz += indices.Length;
        _rows++;
        _rowStart[_rows] = _nnz;
        return this;
    }

    double IFeatureRows.Dot(int row, ReadOnlySpan<double> w)
    {
        int start = _rowStart[row], end = _rowStart[row + 1];
        var idx = _indices.AsSpan(start, end - start);
        var val = _values.AsSpan(start, end - start);
        double s = 0;
        for (int k = 0; k < idx.Length; k++) s += val[k] * w[idx[k]];
        return s;
    }

    void IFeatureRows.AddScaled(int row, double a, Span<double> g)
    {
        int start = _rowStart[row], end = _rowStart[row + 1];
        var idx = _indices.AsSpan(start, end - start);
        var val = _values.AsSpan(start, end - start);
        for (int k = 0; k < idx.Length; k++) g[idx[k]] += a * val[k];
    }
}

internal sealed partial class Matrix : IFeatureRows
{
    public double Dot(int row, ReadOnlySpan<double> w) => TensorPrimitives.Dot(Row(row), w);
    public void AddScaled(int row, double a, Span<double> g) => TensorPrimitives.MultiplyAdd(Row(row), a, g, g);
}
