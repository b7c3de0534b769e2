namespace Sharpformer.Kernels;

/// <summary>Embedding table lookups (gather) and their gradient (scatter-add).</summary>
public static class Embedding
{
    /// <summary>y[i, :] = table[ids[i], :] for a rows×dim table. Throws when an id is out of range, naming it.</summary>
    public static void Gather(ReadOnlySpan<float> table, int rows, int dim, ReadOnlySpan<int> ids, Span<float> y)
    {
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
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id == skipId) continue;
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {i} is outside the embedding table of {rows} rows.");
            var dst = dTable.Slice(id * dim, dim); var src = dy.Slice(i * dim, dim);
            for (int j = 0; j < dim; j++) dst[j] += src[j];
        }
    }
}
