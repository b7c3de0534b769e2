namespace Sharpformer.Tensors;

/// <summary>Validation helpers for tensors.</summary>
public static class TensorChecks
{
    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="name"/> and the index of the first NaN or ±∞.</summary>
    public static void ThrowIfNonFinite(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t);
        var data = t.IsContiguous ? t.Data.AsSpan(t.Offset, t.Size) : t.ToArray();
        for (int i = 0; i < data.Length; i++)
        {
            if (float.IsFinite(data[i])) continue;
            var idx = new int[t.Rank];
            int rem = i;
            for (int d = t.Rank - 1; d >= 0; d--) { idx[d] = rem % t.Shape[d]; rem /= t.Shape[d]; }
            string what = float.IsNaN(data[i]) ? "NaN" : data[i] > 0 ? "+Infinity" : "-Infinity";
            throw new NonFiniteException(
                $"Tensor '{name}' {Tensor.FormatShape(t.Shape)} holds {what} at index [{string.Join(", ", idx)}]. " +
                "Check the learning rate, the inputs and the loss for overflow.", name, idx, data[i]);
        }
    }
}
