using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>Embedding table lookups (gather) and their gradient (scatter-add).</summary>
public static class Embedding
{
    /// <summary>y[i, :] = table[ids[i], :] for a rows×dim table. Throws when an id is out of range, naming it.</summary>
    public static void Gather(ReadOnlySpan<float> table, int rows, int dim, ReadOnlySpan<int> ids, Span<float> y)
    {
        CheckTable(table.Length, rows, dim, nameof(table));
        if (y.Length < (long)ids.Length * dim)
            throw new ArgumentException($"Embedding output holds {y.Length} floats; {ids.Length} ids × dim {dim} = {(long)ids.Length * dim} needed.", nameof(y));
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {i} is outside the embedding table of {rows} rows.");
            table.Slice(id * dim, dim).CopyTo(y.Slice(i * dim, dim));
        }
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
