using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Tensors;

public sealed partial class Tensor
{
    // (outer, n, inner) split around dimension d of a contiguous tensor
    (int Outer, int N, int Inner) Split(int d)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= _shape[i];
        for (int i = d + 1; i < Rank; i++) inner *= _shape[i];
        return (outer, _shape[d], inner);
    }

    int[] ReducedShape(int d, bool keepDim)
    {
        var s = new List<int>(_shape);
        if (keepDim) s[d] = 1; else s.RemoveAt(d);
        return [.. s];
    }

    /// <summary>Sum over dimension <paramref name="dim"/>.</summary>
    public Tensor Sum(int dim, bool keepDim = false) => SumScaled(dim, keepDim, 1f, "Sum");

    /// <summary>Mean over dimension <paramref name="dim"/>.</summary>
    public Tensor Mean(int dim, bool keepDim = false)
    {
        int d = NormDim(dim, Rank, "Mean");
        return SumScaled(d, keepDim, _shape[d] == 0 ? float.NaN : 1f / _shape[d], "Mean");
    }

    /// <summary>Sum of all elements (a scalar tensor of shape []).</summary>
    public Tensor Sum() => SumAll(1f, "SumAll");

    /// <summary>Mean of all elements (a scalar tensor).</summary>
    public Tensor Mean() => SumAll(Size == 0 ? float.NaN : 1f / Size, "MeanAll");

    Tensor SumAll(float scale, string op)
    {
        var x = Contiguous();
        var r = Scalar(TP.Sum(x.ContiguousSpan()) * scale);
        var shape = ShapeArray;
        return Record(r, op, (g, s) => s.Add(0, Full(g.Data[g.Offset] * scale, shape), owned: true), x);
    }

    Tensor SumScaled(int dim, bool keepDim, float scale, string op)
    {
        int d = NormDim(dim, Rank, op);
        var x = Contiguous();
        var (outer, n, inner) = x.Split(d);
        var r = Zeros(ReducedShape(d, keepDim));
        var src = x.ContiguousSpan(); var dst = r.Data.AsSpan();
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1) dst[o] = TP.Sum(src.Slice(o * n, n));
            else
            {
                var acc = dst.Slice(o * inner, inner);
                for (int j = 0; j < n; j++) TP.Add(acc, src.Slice((o * n + j) * inner, inner), acc);
            }
        }
        if (scale != 1f) TP.Multiply(dst, scale, dst);
        var inShape = ShapeArray;
        return Record(r, op, (g, s) =>
        {
            var dx = Empty(inShape);
            var gs = g.ContiguousSpan(); var ds = dx.Data.AsSpan();
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < n; j++)
                {
                    var row = ds.Slice((o * n + j) * inner, inner);
                    if (scale == 1f) gs.Slice(o * inner, inner).CopyTo(row);
                    else TP.Multiply(gs.Slice(o * inner, inner), scale, row);
                }
            s.Add(0, dx, owned: true);
        }, x);
    }

    /// <summary>Maximum over dimension <paramref name="dim"/>; the gradient flows to the (first) arg-max.</summary>
    public Tensor Max(int dim, bool keepDim = false)
    {
        int d = NormDim(dim, Rank, "Max");
        var x = Contiguous();
        var (outer, n, inner) = x.Split(d);
        if (n == 0) throw new ShapeMismatchException($"Max: dimension {d} of shape {FormatShape(_shape)} is empty.");
        var idx = ArgMaxCore(x, outer, n, inner);
        var r = Empty(ReducedShape(d, keepDim));
        var src = x.ContiguousSpan();
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) r.Data[o * inner + i] = src[(o * n + idx[o * inner + i]) * inner + i];
        var inShape = ShapeArray;
        return Record(r, "Max", (g, s) =>
        {
            var dx = s.TargetZeroed(0);
            var gs = g.ContiguousSpan();
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++) dx[(o * n + idx[o * inner + i]) * inner + i] += gs[o * inner + i];
        }, x);
    }

    /// <summary>Index of the maximum along <paramref name="dim"/> (first one on ties), flattened row-major over the other dimensions.</summary>
    public int[] ArgMax(int dim = -1)
    {
        int d = NormDim(dim, Rank, "ArgMax");
        var x = Contiguous();
        var (outer, n, inner) = x.Split(d);
        if (n == 0) throw new ShapeMismatchException($"ArgMax: dimension {d} of shape {FormatShape(_shape)} is empty.");
        return ArgMaxCore(x, outer, n, inner);
    }

    static int[] ArgMaxCore(Tensor x, int outer, int n, int inner)
    {
        var idx = new int[outer * inner];
        var src = x.ContiguousSpan();
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                var row = src.Slice(o * n, n);
                int best = 0; float bv = row[0];
                for (int j = 1; j < n; j++) if (row[j] > bv || (float.IsNaN(row[j]) && !float.IsNaN(bv))) { bv = row[j]; best = j; }
                idx[o] = best;
                continue;
            }
            for (int i = 0; i < inner; i++)
            {
                int best = 0; float bv = src[o * n * inner + i];
                for (int j = 1; j < n; j++)
                {
                    float v = src[(o * n + j) * inner + i];
                    if (v > bv || (float.IsNaN(v) && !float.IsNaN(bv))) { bv = v; best = j; }
                }
                idx[o * inner + i] = best;
            }
        }
        return idx;
    }
}
