namespace Sharpformer.Tensors;

public sealed partial class Tensor
{
    /// <summary>Same elements in a new shape (one dimension may be −1). A view when contiguous, else a copy.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var target = ResolveShape(shape, Size, "Reshape", _shape);
        var src = IsContiguous ? this : Contiguous();
        var r = new Tensor(src.Data, src.Offset, target, ContiguousStrides(target));
        var inShape = src.ShapeArray;
        return Record(r, "Reshape", (g, s) => s.Add(0, g.Detach().Contiguous().ViewAs(inShape), owned: false), src);
    }

    /// <summary>Alias of <see cref="Reshape"/> (torch naming).</summary>
    public Tensor View(params int[] shape) => Reshape(shape);

    /// <summary>Flattens dimensions [startDim, endDim] into one.</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        int s = NormDim(startDim, Rank, "Flatten"), e = NormDim(endDim, Rank, "Flatten");
        var shape = new List<int>();
        for (int i = 0; i < s; i++) shape.Add(_shape[i]);
        int m = 1; for (int i = s; i <= e; i++) m *= _shape[i];
        shape.Add(m);
        for (int i = e + 1; i < Rank; i++) shape.Add(_shape[i]);
        return Reshape([.. shape]);
    }

    // an untracked reshape of contiguous data (used inside backward rules)
    internal Tensor ViewAs(int[] shape) => new(Data, Offset, shape, ContiguousStrides(shape));

    internal static int[] ResolveShape(int[] shape, int size, string op, ReadOnlySpan<int> from)
    {
        int infer = -1; long known = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == -1)
            {
                if (infer >= 0) throw new ShapeMismatchException($"{op}: only one dimension may be -1 in {FormatShape(shape)}.");
                infer = i;
            }
            else if (shape[i] < 0) throw new ShapeMismatchException($"{op}: invalid dimension {shape[i]} in {FormatShape(shape)}.");
            else known *= shape[i];
        }
        var r = (int[])shape.Clone();
        if (infer >= 0)
        {
            if (known == 0 || size % known != 0) throw ShapeMismatchException.For(op, from, shape, $"{size} elements cannot be arranged so");
            r[infer] = (int)(size / known);
        }
        else if (known != size) throw ShapeMismatchException.For(op, from, shape, $"element counts differ ({size} vs {known})");
        return r;
    }

    /// <summary>Swaps two dimensions (a view).</summary>
    public Tensor Transpose(int d0, int d1)
    {
        int a = NormDim(d0, Rank, "Transpose"), b = NormDim(d1, Rank, "Transpose");
        var perm = new int[Rank];
        for (int i = 0; i < Rank; i++) perm[i] = i;
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>Reorders dimensions (a view): result dim i is input dim dims[i].</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank) throw new ShapeMismatchException($"Permute: {dims.Length} dimensions given for shape {FormatShape(_shape)}.");
        var shape = new int[Rank]; var strides = new int[Rank]; var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = NormDim(dims[i], Rank, "Permute");
            if (seen[d]) throw new ArgumentException($"Permute: dimension {d} repeated in {FormatShape(dims)}.");
            seen[d] = true;
            shape[i] = _shape[d]; strides[i] = _strides[d];
        }
        var r = new Tensor(Data, Offset, shape, strides);
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++) inverse[NormDim(dims[i], Rank, "Permute")] = i;
        return Record(r, "Permute", (g, s) => s.Add(0, g.Detach().Permute(inverse), owned: false), this);
    }

    /// <summary>The last two dimensions swapped (matrix transpose over a batch).</summary>
    public Tensor T => Transpose(-2, -1);

    /// <summary>Elements start..start+length−1 along <paramref name="dim"/> (a view).</summary>
    public Tensor Slice(int dim, int start, int length)
    {
        int d = NormDim(dim, Rank, "Slice");
        if (start < 0 || length < 0 || start + length > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"Slice: [{start}, {start + length}) is outside dimension {d} of size {_shape[d]} (shape {FormatShape(_shape)}).");
        var shape = ShapeArray; shape[d] = length;
        var r = new Tensor(Data, Offset + start * _strides[d], shape, (int[])_strides.Clone());
        var inShape = ShapeArray;
        return Record(r, "Slice", (g, s) =>
        {
            // the input's gradient is g inside the window and zero outside
            var dst = s.TargetZeroed(0);
            var inStrides = ContiguousStrides(inShape);
            int off = start * inStrides[d];
            var gs = g.ShapeRef;
            int outer = 1; for (int i = 0; i < d; i++) outer *= gs[i];
            int block = inStrides[d] * length; // contiguous run per outer index in the input
            var src = g.ContiguousSpan();
            for (int o = 0; o < outer; o++)
            {
                var a = dst.Slice(o * inStrides[d] * inShape[d] + off, block);
                System.Numerics.Tensors.TensorPrimitives.Add(a, src.Slice(o * block, block), a);
            }
        }, this);
    }

    /// <summary>Index <paramref name="index"/> of dimension <paramref name="dim"/>, removing that dimension (a view).</summary>
    public Tensor Select(int dim, int index)
    {
        int d = NormDim(dim, Rank, "Select");
        if (index < 0) index += _shape[d];
        return Slice(d, index, 1).Squeeze(d);
    }

    /// <summary>Inserts a dimension of size 1 at <paramref name="dim"/> (−1 appends).</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = dim < 0 ? dim + Rank + 1 : dim;
        if (d < 0 || d > Rank) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Unsqueeze: dimension out of range for rank {Rank}.");
        var shape = new List<int>(_shape); shape.Insert(d, 1);
        var strides = new List<int>(_strides); strides.Insert(d, d < Rank ? _strides[d] * _shape[d] : 1);
        var r = new Tensor(Data, Offset, [.. shape], [.. strides]);
        var inShape = ShapeArray;
        return Record(r, "Unsqueeze", (g, s) => s.Add(0, g.ViewAs(inShape), owned: false), this);
    }

    /// <summary>Removes dimension <paramref name="dim"/>, which must have size 1.</summary>
    public Tensor Squeeze(int dim)
    {
        int d = NormDim(dim, Rank, "Squeeze");
        if (_shape[d] != 1) throw new ShapeMismatchException($"Squeeze: dimension {d} of shape {FormatShape(_shape)} has size {_shape[d]}, not 1.");
        var shape = new List<int>(_shape); shape.RemoveAt(d);
        var strides = new List<int>(_strides); strides.RemoveAt(d);
        var r = new Tensor(Data, Offset, [.. shape], [.. strides]);
        var inShape = ShapeArray;
        return Record(r, "Squeeze", (g, s) => s.Add(0, g.ViewAs(inShape), owned: false), this);
    }

    /// <summary>A broadcast view (numpy rules: size-1 or missing leading dimensions repeat with stride 0).</summary>
    public Tensor BroadcastTo(params int[] shape)
    {
        var strides = BroadcastStrides(this, shape, "BroadcastTo");
        var r = new Tensor(Data, Offset, (int[])shape.Clone(), strides);
        var inShape = ShapeArray;
        // SumToShape returns g itself when nothing was broadcast; it must then not be mutated in place
        return Record(r, "BroadcastTo", (g, s) => s.Add(0, SumToShape(g, inShape), owned: !g.ShapeRef.AsSpan().SequenceEqual(inShape)), this);
    }

    /// <summary>Strides of <paramref name="t"/> viewed as <paramref name="shape"/> under broadcasting (0 on repeated dimensions).</summary>
    internal static int[] BroadcastStrides(Tensor t, ReadOnlySpan<int> shape, string op)
    {
        int rank = shape.Length, off = rank - t.Rank;
        if (off < 0) throw ShapeMismatchException.For(op, t.Shape, shape, "cannot broadcast to fewer dimensions");
        var s = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int j = i - off;
            if (j < 0) { s[i] = 0; continue; }
            int dim = t._shape[j];
            if (dim == shape[i]) s[i] = dim == 1 ? 0 : t._strides[j];
            else if (dim == 1) s[i] = 0;
            else throw ShapeMismatchException.For(op, t.Shape, shape, $"dimension {j} has size {dim}, target {shape[i]}");
        }
        return s;
    }

    /// <summary>numpy broadcast of two shapes.</summary>
    internal static int[] BroadcastShapes(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da == db || db == 1) r[i] = da;
            else if (da == 1) r[i] = db;
            else throw ShapeMismatchException.For(op, a, b, $"sizes {da} and {db} at aligned dimension {i} are not broadcast-compatible");
        }
        return r;
    }
}
