namespace Sharpformer.Tensors;

/// <summary>Visits the rows of an N-d iteration space over several strided operands, after merging mergeable dimensions.</summary>
/// <remarks>
/// The callback runs once per innermost row (not per element), receiving the row length, each operand's start offset and
/// its inner stride (0 = broadcast, 1 = contiguous), so the row body can use span kernels.
/// </remarks>
internal static class StridedLoop
{
    public delegate void RowFn(int n, ReadOnlySpan<int> offsets, ReadOnlySpan<int> innerStrides);

    public static void Run(ReadOnlySpan<int> shape, int[][] strides, int[] offsets, RowFn row)
    {
        int k = strides.Length;
        long total = 1;
        foreach (var d in shape) total *= d;
        if (total == 0) return;

        // Drop size-1 dims, then merge dim i into i+1 when every operand's stride[i] == stride[i+1]·shape[i+1].
        var dims = new List<int>(shape.Length);
        var st = new List<int[]>(shape.Length);
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1) continue;
            var col = new int[k];
            for (int j = 0; j < k; j++) col[j] = strides[j][i];
            if (dims.Count > 0)
            {
                int last = dims.Count - 1;
                bool merge = true;
                for (int j = 0; j < k; j++) if (st[last][j] != col[j] * shape[i]) { merge = false; break; }
                if (merge) { dims[last] *= shape[i]; st[last] = col; continue; }
            }
            dims.Add(shape[i]); st.Add(col);
        }
        if (dims.Count == 0) { dims.Add(1); st.Add(new int[k]); }

        int rank = dims.Count, inner = dims[rank - 1];
        var innerStrides = st[rank - 1];
        Span<int> offs = stackalloc int[k];
        offsets.AsSpan().CopyTo(offs);
        Span<int> idx = stackalloc int[rank];
        while (true)
        {
            row(inner, offs, innerStrides);
            int d = rank - 2;
            for (; d >= 0; d--)
            {
                idx[d]++;
                for (int j = 0; j < k; j++) offs[j] += st[d][j];
                if (idx[d] < dims[d]) break;
                for (int j = 0; j < k; j++) offs[j] -= idx[d] * st[d][j];
                idx[d] = 0;
            }
            if (d < 0) break;
        }
    }
}
