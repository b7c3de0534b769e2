using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>Embedding table lookups (gather) and their gradient (scatter-add).</summary>
public static class Embedding
{
    /// <summary>y[i, :] = table[ids[i], :] for a rows×dim table. Throws when an id is out of range, naming it.</summary>
    public static void Gather(ReadOnlySpan<float> table, int rows, int dim, ReadOnlySpan<int> ids, Span<float> y) =>
        GatherAdd(table, rows, dim, ids, default, 0, y);

    /// <summary>
    /// y[i, :] = table[ids[i], :] + addend[i mod period, :] (token plus position embeddings in one pass over y);
    /// an empty <paramref name="addend"/> (period 0) adds nothing. Throws when an id is out of range, naming it.
    /// </summary>
    public static void GatherAdd(ReadOnlySpan<float> table, int rows, int dim, ReadOnlySpan<int> ids, ReadOnlySpan<float> addend, int period, Span<float> y)
    {
        CheckTable(table.Length, rows, dim, nameof(table));
        if (y.Length < (long)ids.Length * dim)
            throw new ArgumentException($"Embedding output holds {y.Length} floats; {ids.Length} ids × dim {dim} = {(long)ids.Length * dim} needed.", nameof(y));
        bool add = period > 0;
        if (add && addend.Length < (long)period * dim)
            throw new ArgumentException($"Embedding addend holds {addend.Length} floats; period {period} × dim {dim} = {(long)period * dim} needed.", nameof(addend));
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {i} is outside the embedding table of {rows} rows.");
            var src = table.Slice(id * dim, dim); var dst = y.Slice(i * dim, dim);
            if (add) TensorPrimitives.Add(src, addend.Slice(i % period * dim, dim), dst);
            else src.CopyTo(dst);
        }
    }

    /// <summary>dAddend[t, :] += Σ dy[i, :] over the rows i ≡ t (mod period) of an n×dim gradient: the addend's gradient of <see cref="GatherAdd"/>.</summary>
    public static void SumPeriodicRows(ReadOnlySpan<float> dy, int n, int period, int dim, Span<float> dAddend)
    {
        if (period <= 0 || dim < 0 || n % period != 0) throw new ArgumentOutOfRangeException(nameof(period), period, $"{n} rows do not split into whole periods of {period}.");
        if (dy.Length < (long)n * dim || dAddend.Length < (long)period * dim)
            throw new ArgumentException($"Gradient buffers hold {dy.Length} and {dAddend.Length} floats; {n}×{dim} and {period}×{dim} needed.", nameof(dy));
        var dst = dAddend[..(period * dim)];
        for (int r = 0; r < n; r += period) TensorPrimitives.Add(dst, dy.Slice(r * dim, period * dim), dst);
    }

    /// <summary>dTable[ids[i], :] += dy[i, :]; rows equal to <paramref name="skipId"/> (e.g. a padding index) are skipped.</summary>
    public static void ScatterAdd(ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, Span<float> dTable, int rows, int dim, int skipId = -1)
    {
        CheckTable(dTable.Length, rows, dim, nameof(dTable));
        if (dy.Length < (long)ids.Length * dim)
            throw new ArgumentException($"Embedding gradient holds {dy.Length} floats; {ids.Length} ids × dim {dim} = {(long)ids.Length * dim} needed.", nameof(dy));
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id == skipId) continue;
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {i} is outside the embedding table of {rows} rows.");
            var dst = dTable.Slice(id * dim, dim); var src = dy.Slice(i * dim, dim);
            TensorPrimitives.Add(dst, src, dst);
        }
    }

    static void CheckTable(int len, int rows, int dim, string name)
    {
        if (rows < 0 || dim < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"Embedding table shape {rows}×{dim} must be non-negative.");
        if (len < (long)rows * dim)
            throw new ArgumentException($"Embedding table holds {len} floats, fewer than {rows} rows × dim {dim}.", name);
    }
}
