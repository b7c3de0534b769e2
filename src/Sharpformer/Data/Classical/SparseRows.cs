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
        var widened = new double[values.Length];
        for (int k = 0; k < values.Length; k++) widened[k] = values[k];
        return Add(indices, widened);
    }

    /// <summary>The stored entries of row <paramref name="row"/>.</summary>
    public SparseRow Row(int row)
    {
        if ((uint)row >= (uint)_rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"Row must be in 0..{_rows - 1}.");
        int start = _rowStart[row], end = _rowStart[row + 1];
        return new SparseRow(_indices.AsSpan(start, end - start), _values.AsSpan(start, end - start));
    }

    /// <summary>
    /// Term counts per document (scikit-learn <c>CountVectorizer</c> output) from token ids in 0..featureCount−1;
    /// ids listed in <paramref name="skipIds"/> (e.g. padding, out-of-vocabulary) are not counted.
    /// </summary>
    /// <param name="documents">Token ids per document.</param>
    /// <param name="featureCount">Vocabulary size.</param>
    /// <param name="binary">Count each term at most once per document (sklearn <c>binary=True</c>).</param>
    /// <param name="skipIds">Ids not to count.</param>
    public static SparseRows FromTokenIds(IEnumerable<IReadOnlyList<int>> documents, int featureCount, bool binary = false, IReadOnlyCollection<int>? skipIds = null)
    {
        var rows = new SparseRows(featureCount);
        var counts = new SortedDictionary<int, double>();
        foreach (var doc in documents)
        {
            counts.Clear();
            foreach (var id in doc)
            {
                if (skipIds is not null && skipIds.Contains(id)) continue;
                if ((uint)id >= (uint)featureCount) throw new ArgumentException($"Document {rows.Rows}: token id {id} is outside 0..{featureCount - 1}.");
                counts[id] = binary ? 1 : counts.GetValueOrDefault(id) + 1;
            }
            rows.Add(counts.Keys.ToArray(), counts.Values.ToArray());
        }
        return rows;
    }

    /// <summary>Appends a row of double values (same rules as the float overload).</summary>
    public SparseRows Add(ReadOnlySpan<int> indices, ReadOnlySpan<double> values)
    {
        if (indices.Length != values.Length)
            throw new ArgumentException($"Row {Rows}: {indices.Length} indices but {values.Length} values.");
        var seen = new HashSet<int>();
        for (int k = 0; k < indices.Length; k++)
        {
            if ((uint)indices[k] >= (uint)Cols) throw new ArgumentException($"Row {Rows}: column {indices[k]} is outside 0..{Cols - 1}.");
            if (!seen.Add(indices[k])) throw new ArgumentException($"Row {Rows}: column {indices[k]} appears twice; sum the values first.");
            if (!double.IsFinite(values[k])) throw new ArgumentException($"Row {Rows}, column {indices[k]}: value {values[k]} is not finite.");
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

/// <summary>One row of <see cref="SparseRows"/>: column indices and their values.</summary>
public readonly ref struct SparseRow(ReadOnlySpan<int> indices, ReadOnlySpan<double> values)
{
    public ReadOnlySpan<int> Indices { get; } = indices;
    public ReadOnlySpan<double> Values { get; } = values;

    public void Deconstruct(out ReadOnlySpan<int> indices, out ReadOnlySpan<double> values)
    {
        indices = Indices;
        values = Values;
    }
}

internal sealed partial class Matrix : IFeatureRows
{
    public double Dot(int row, ReadOnlySpan<double> w) => TensorPrimitives.Dot(Row(row), w);
    public void AddScaled(int row, double a, Span<double> g) => TensorPrimitives.MultiplyAdd(Row(row), a, g, g);
}
