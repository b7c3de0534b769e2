using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Tensors;

public sealed partial class Tensor
{
    /// <summary>Softmax along <paramref name="dim"/> (see <see cref="Functional.Softmax"/>).</summary>
    public Tensor Softmax(int dim = -1) => Functional.Softmax(this, dim);

    /// <summary>Log-softmax along <paramref name="dim"/> (see <see cref="Functional.LogSoftmax"/>).</summary>
    public Tensor LogSoftmax(int dim = -1) => Functional.LogSoftmax(this, dim);

    /// <summary>Joins tensors along an existing dimension; all other dimensions must agree.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (tensors.Count == 0) throw new ArgumentException("Concat needs at least one tensor.", nameof(tensors));
        var first = tensors[0];
        int d = NormDim(dim, first.Rank, "Concat");
        var shape = first.ShapeArray; int total = 0;
        foreach (var t in tensors)
        {
            if (t.Rank != first.Rank) throw ShapeMismatchException.For("Concat", first.Shape, t.Shape, "ranks differ");
            for (int i = 0; i < t.Rank; i++)
                if (i != d && t._shape[i] != shape[i]) throw ShapeMismatchException.For("Concat", first.Shape, t.Shape, $"dimension {i} differs");
            total += t._shape[d];
        }
        shape[d] = total;
        var r = Empty(shape);
        var rs = ContiguousStrides(shape);
        int outer = 1; for (int i = 0; i < d; i++) outer *= shape[i];
        int innerUnit = d + 1 < shape.Length ? rs[d] : 1;   // elements per index of dim d
        int pos = 0;
        var parts = new Tensor[tensors.Count]; var starts = new int[tensors.Count];
        for (int ti = 0; ti < tensors.Count; ti++)
        {
            var t = tensors[ti].Contiguous();
            parts[ti] = t; starts[ti] = pos;
            int block = t._shape[d] * innerUnit;
            var src = t.ContiguousSpan();
            for (int o = 0; o < outer; o++) src.Slice(o * block, block).CopyTo(r.Data.AsSpan(o * total * innerUnit + pos * innerUnit, block));
            pos += t._shape[d];
        }
        return Record(r, "Concat", (g, s) =>
        {
            var gs = g.ContiguousSpan();
            for (int ti = 0; ti < parts.Length; ti++)
            {
                if (!s.Needs(ti)) continue;
                int block = parts[ti]._shape[d] * innerUnit;
                var dst = s.Target(ti, out float beta);
                for (int o = 0; o < outer; o++)
                {
                    var src = gs.Slice(o * total * innerUnit + starts[ti] * innerUnit, block);
                    var dd = dst.Slice(o * block, block);
                    if (beta == 0f) src.CopyTo(dd); else TP.Add(dd, src, dd);
                }
            }
        }, (Tensor?[])parts.Clone());
    }

    /// <summary>Stacks equally shaped tensors along a new dimension.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (tensors.Count == 0) throw new ArgumentException("Stack needs at least one tensor.", nameof(tensors));
        int rank = tensors[0].Rank;
        int d = dim < 0 ? dim + rank + 1 : dim;
        foreach (var t in tensors)
            if (!t.Shape.SequenceEqual(tensors[0].Shape)) throw ShapeMismatchException.For("Stack", tensors[0].Shape, t.Shape, "all tensors must have the same shape");
        return Concat(tensors.Select(t => t.Unsqueeze(d)).ToList(), d);
    }

    /// <summary>Elements where <paramref name="mask"/> (broadcast to this shape) is non-zero are replaced by <paramref name="value"/>.</summary>
    public Tensor MaskedFill(Tensor mask, float value)
    {
        var m = mask.Detach().BroadcastTo(ShapeArray).ToArray();
        var x = Contiguous();
        var r = Empty(ShapeArray);
        var xs = x.ContiguousSpan();
        for (int i = 0; i < m.Length; i++) r.Data[i] = m[i] != 0f ? value : xs[i];
        return Record(r, "MaskedFill", (g, s) =>
        {
            var gs = g.ContiguousSpan();
            var dx = s.Target(0, out float beta);
            for (int i = 0; i < m.Length; i++) dx[i] = (beta == 0f ? 0f : dx[i]) + (m[i] != 0f ? 0f : gs[i]);
        }, x);
    }

    /// <summary>
    /// torch.gather: out[i₀…iₙ] = this[i₀…index[i₀…iₙ]…iₙ] with the index replacing position <paramref name="dim"/>.
    /// <paramref name="index"/> has shape <paramref name="indexShape"/> (same rank as this; other dimensions ≤ this one's).
    /// </summary>
    public Tensor Gather(int dim, int[] index, params int[] indexShape)
    {
        int d = NormDim(dim, Rank, "Gather");
        if (indexShape.Length != Rank) throw ShapeMismatchException.For("Gather", _shape, indexShape, "index must have the same rank");
        if (CheckedSize(indexShape) != index.Length) throw new ShapeMismatchException($"Gather: {index.Length} indices do not fill {FormatShape(indexShape)}.");
        for (int i = 0; i < Rank; i++)
            if (i != d && indexShape[i] > _shape[i]) throw ShapeMismatchException.For("Gather", _shape, indexShape, $"index dimension {i} exceeds the input's");
        var x = Contiguous();
        var xs = ContiguousStrides(_shape);
        var src = new int[index.Length];   // flat source position of each output element
        var idx = new int[Rank];
        for (int p = 0; p < index.Length; p++)
        {
            int rem = p, off = 0;
            for (int i = Rank - 1; i >= 0; i--) { idx[i] = rem % indexShape[i]; rem /= indexShape[i]; }
            for (int i = 0; i < Rank; i++)
            {
                int v = i == d ? index[p] : idx[i];
                if (i == d && (uint)v >= (uint)_shape[d]) throw new IndexOutOfRangeException($"Gather: index {v} at position {p} is outside dimension {d} of size {_shape[d]}.");
                off += v * xs[i];
            }
            src[p] = off;
        }
        var r = Empty((int[])indexShape.Clone());
        var xd = x.ContiguousSpan();
        for (int p = 0; p < src.Length; p++) r.Data[p] = xd[src[p]];
        return Record(r, "Gather", (g, s) =>
        {
            var dx = s.TargetZeroed(0); var gs = g.ContiguousSpan();
            for (int p = 0; p < src.Length; p++) dx[src[p]] += gs[p];
        }, x);
    }

    /// <summary>torch.index_select: the entries <paramref name="indices"/> of dimension <paramref name="dim"/>, in that order (repeats allowed).</summary>
    public Tensor IndexSelect(int dim, int[] indices)
    {
        int d = NormDim(dim, Rank, "IndexSelect");
        var x = Contiguous();
        var (outer, n, inner) = x.Split(d);
        foreach (var i in indices)
            if ((uint)i >= (uint)n) throw new IndexOutOfRangeException($"IndexSelect: index {i} is outside dimension {d} of size {n} (shape {FormatShape(_shape)}).");
        var shape = ShapeArray; shape[d] = indices.Length;
        var r = Empty(shape);
        var src = x.ContiguousSpan();
        int m = indices.Length;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < m; j++) src.Slice((o * n + indices[j]) * inner, inner).CopyTo(r.Data.AsSpan((o * m + j) * inner, inner));
        var idx = (int[])indices.Clone();
        return Record(r, "IndexSelect", (g, s) =>
        {
            var dx = s.TargetZeroed(0); var gs = g.ContiguousSpan();
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < m; j++)
                {
                    var dst = dx.Slice((o * n + idx[j]) * inner, inner);
                    TP.Add(dst, gs.Slice((o * m + j) * inner, inner), dst);
                }
        }, x);
    }

    /// <summary>Elementwise choice: <paramref name="a"/> where <paramref name="condition"/> ≠ 0, else <paramref name="b"/> (all three broadcast together).</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        var shape = BroadcastShapes(BroadcastShapes(condition.Shape, a.Shape, "Where"), b.Shape, "Where");
        var c = condition.Detach().BroadcastTo(shape).ToArray();
        var av = a.Detach().BroadcastTo(shape).ToArray();
        var bv = b.Detach().BroadcastTo(shape).ToArray();
        var r = Empty(shape);
        for (int i = 0; i < c.Length; i++) r.Data[i] = c[i] != 0f ? av[i] : bv[i];
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        return Record(r, "Where", (g, s) =>
        {
            var gs = g.ContiguousSpan();
            for (int side = 0; side < 2; side++)
            {
                if (!s.Needs(side)) continue;
                var full = Empty(shape);
                for (int i = 0; i < c.Length; i++) full.Data[i] = (c[i] != 0f) == (side == 0) ? gs[i] : 0f;
                s.Add(side, SumToShape(full, side == 0 ? sa : sb), owned: true);
            }
        }, a, b);
    }
}
