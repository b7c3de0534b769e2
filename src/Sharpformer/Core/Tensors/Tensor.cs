using System.Runtime.CompilerServices;
using System.Text;

namespace Sharpformer.Tensors;

/// <summary>
/// A float32 N-dimensional array with shape, strides and an offset into a shared <c>float[]</c>, recording the
/// operations applied to it for reverse-mode automatic differentiation.
/// </summary>
/// <remarks>
/// Element (i₀, …, iₙ₋₁) lives at <c>Data[Offset + Σ iₖ·Strides[k]]</c>. Views (Reshape of contiguous data, Transpose,
/// Permute, Slice, Select, Unsqueeze, Squeeze, BroadcastTo) share <see cref="Data"/>; every other op allocates.
/// Tensors are not thread-safe for concurrent mutation, but reading one tensor from several threads is fine.
/// Mutating a tensor in place after it has been used by a recorded op makes that op's gradient wrong
/// (there is no version counter); optimizers mutate parameters only between forward passes.
/// </remarks>
public sealed partial class Tensor
{
    readonly int[] _shape;
    readonly int[] _strides;

    // autograd state
    bool _requiresGrad;
    internal Node? GradFn;
    Tensor? _grad;

    // null once released by the TensorScope it was created in (its buffer went back to the pool)
    float[]? _data;

    /// <summary>The storage; may be shared by several views.</summary>
    /// <exception cref="TensorReleasedException">The tensor was created inside a <see cref="TensorScope"/> that has ended.</exception>
    public float[] Data => _data ?? ThrowReleased();
    internal float[]? DataOrNull => _data;
    /// <summary>Index in <see cref="Data"/> of element (0, …, 0).</summary>
    public int Offset { get; }
    /// <summary>Optional name used in error messages (e.g. a parameter's dotted checkpoint key).</summary>
    public string? Name { get; set; }

    internal Tensor(float[] data, int offset, int[] shape, int[] strides)
    {
        _data = data; Offset = offset; _shape = shape; _strides = strides;
        long size = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), $"Negative dimension in shape {FormatShape(shape)}.");
            size *= d;
        }
        if (size > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(shape), $"Shape {FormatShape(shape)} holds more than 2³¹−1 elements.");
        Size = (int)size;
        TensorScope.Track(this);
    }

    internal Tensor(float[] data, int[] shape) : this(data, 0, shape, ContiguousStrides(shape)) { }

    /// <summary>The dimensions.</summary>
    public ReadOnlySpan<int> Shape => _shape;
    /// <summary>The strides in elements, one per dimension.</summary>
    public ReadOnlySpan<int> Strides => _strides;
    /// <summary>A copy of the shape as an array.</summary>
    public int[] ShapeArray => (int[])_shape.Clone();
    internal int[] ShapeRef => _shape;
    internal int[] StridesRef => _strides;
    public int Rank => _shape.Length;
    /// <summary>Number of elements.</summary>
    public int Size { get; }
    /// <summary>Size of dimension <paramref name="d"/>; negative counts from the end.</summary>
    public int Dim(int d) => _shape[NormDim(d, Rank, "Dim")];

    /// <summary>True when the elements are laid out row-major without gaps (views may still start at an offset).</summary>
    public bool IsContiguous
    {
        get
        {
            int expected = 1;
            for (int i = _shape.Length - 1; i >= 0; i--)
            {
                if (_shape[i] == 1) continue;
                if (_strides[i] != expected) return false;
                expected *= _shape[i];
            }
            return true;
        }
    }

    // ---------------------------------------------------------------- creation

    public static Tensor Zeros(params int[] shape)
    {
        if (TensorScope.Current == null) return new(new float[CheckedSize(shape)], (int[])shape.Clone());
        var t = Empty((int[])shape.Clone());
        t._data.AsSpan().Clear();   // a pooled buffer holds an earlier step's values
        return t;
    }
    public static Tensor Ones(params int[] shape) => Full(1f, shape);

    public static Tensor Full(float value, params int[] shape)
    {
        var t = Empty((int[])shape.Clone());
        t._data.AsSpan().Fill(value);
        return t;
    }

    /// <summary>A scalar (rank-0) tensor.</summary>
    public static Tensor Scalar(float value) => new([value], []);

    /// <summary>Wraps <paramref name="data"/> without copying; its length must equal the product of <paramref name="shape"/>.</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (shape.Length == 0 && data.Length != 1) shape = [data.Length];
        long n = CheckedSize(shape);
        if (n != data.Length)
            throw new ShapeMismatchException($"FromArray: {data.Length} values cannot fill shape {FormatShape(shape)} ({n} elements).");
        return new Tensor(data, (int[])shape.Clone());
    }

    /// <summary>Normal(mean, std²) samples drawn from <paramref name="rng"/> (Box–Muller, so a seeded Random reproduces them).</summary>
    public static Tensor Normal(Random rng, float mean, float std, params int[] shape)
    {
        var t = Empty(shape);
        FillNormal(rng, t.Data, mean, std);
        return t;
    }

    /// <summary>Uniform samples in [low, high) drawn from <paramref name="rng"/>.</summary>
    public static Tensor Uniform(Random rng, float low, float high, params int[] shape)
    {
        var t = Empty(shape);
        var d = t.Data;
        float w = high - low;
        for (int i = 0; i < d.Length; i++) d[i] = low + w * rng.NextSingle();
        return t;
    }

    /// <summary>0, 1, …, n−1 as a 1-D tensor.</summary>
    public static Tensor Arange(int n)
    {
        var t = Empty(n);
        for (int i = 0; i < n; i++) t.Data[i] = i;
        return t;
    }

    internal static void FillNormal(Random rng, Span<float> d, float mean, float std)
    {
        for (int i = 0; i < d.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)), th = 2.0 * Math.PI * u2;
            d[i] = (float)(mean + std * r * Math.Cos(th));
            if (i + 1 < d.Length) d[i + 1] = (float)(mean + std * r * Math.Sin(th));
        }
    }

    /// <summary>A new contiguous tensor whose contents are unspecified (to be fully overwritten); pooled inside a <see cref="TensorScope"/>.</summary>
    internal static Tensor Empty(params int[] shape) => new(TensorScope.RentArray(CheckedSize(shape)), shape);

    // ---------------------------------------------------------------- element access

    /// <summary>Element at a full index (slow; for tests and small lookups).</summary>
    [IndexerName("At")]
    public float this[params int[] index]
    {
        get => Data[FlatIndex(index)];
        set => Data[FlatIndex(index)] = value;
    }

    int FlatIndex(int[] index)
    {
        if (index.Length != Rank) throw new ArgumentException($"Index of rank {index.Length} for a tensor of shape {FormatShape(_shape)}.");
        int o = Offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)_shape[i]) throw new IndexOutOfRangeException($"Index {index[i]} out of range for dimension {i} of shape {FormatShape(_shape)}.");
            o += index[i] * _strides[i];
        }
        return o;
    }

    /// <summary>The single element of a one-element tensor.</summary>
    public float Item()
    {
        if (Size != 1) throw new ShapeMismatchException($"Item: tensor of shape {FormatShape(_shape)} has {Size} elements, not 1.");
        return Data[Offset];
    }

    /// <summary>The contiguous storage span of this tensor; throws for non-contiguous views (call <see cref="Contiguous"/>).</summary>
    public Span<float> AsSpan()
    {
        if (!IsContiguous) throw new InvalidOperationException($"AsSpan needs a contiguous tensor; this {FormatShape(_shape)} view has strides {FormatShape(_strides)}. Call Contiguous() first.");
        return Data.AsSpan(Offset, Size);
    }

    /// <summary>A fresh row-major copy of the elements.</summary>
    public float[] ToArray()
    {
        if (IsContiguous) return Data.AsSpan(Offset, Size).ToArray();
        var r = new float[Size];
        CopyStridedTo(r);
        return r;
    }

    /// <summary>This tensor if contiguous, else a contiguous copy (recorded for autograd).</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var r = Empty(ShapeArray);
        CopyStridedTo(r.Data);
        return Record(r, "Contiguous", static (g, s) => s.Add(0, g, owned: false), this);
    }

    internal void CopyStridedTo(Span<float> dst)
    {
        if (Size == 0) return;
        int rank = Rank;
        if (rank == 0) { dst[0] = Data[Offset]; return; }
        int inner = _shape[rank - 1], innerStride = _strides[rank - 1];
        Span<int> idx = stackalloc int[rank];
        int src = Offset, w = 0;
        var data = Data;
        while (true)
        {
            if (innerStride == 1) { data.AsSpan(src, inner).CopyTo(dst.Slice(w, inner)); w += inner; }
            else for (int j = 0, p = src; j < inner; j++, p += innerStride) dst[w++] = data[p];
            int d = rank - 2;
            for (; d >= 0; d--)
            {
                idx[d]++; src += _strides[d];
                if (idx[d] < _shape[d]) break;
                src -= idx[d] * _strides[d]; idx[d] = 0;
            }
            if (d < 0) break;
        }
    }

    /// <summary>Copies <paramref name="src"/>'s values into this tensor in place (shapes must match; not recorded by autograd).</summary>
    public void CopyFrom(Tensor src)
    {
        if (!_shape.AsSpan().SequenceEqual(src._shape)) throw ShapeMismatchException.For("CopyFrom", _shape, src._shape, "shapes must be equal");
        if (!IsContiguous) throw new InvalidOperationException("CopyFrom needs a contiguous destination.");
        if (src.IsContiguous) src.Data.AsSpan(src.Offset, src.Size).CopyTo(AsSpan());
        else src.CopyStridedTo(AsSpan());
    }

    /// <summary>Sets every element to <paramref name="value"/> in place (not recorded by autograd).</summary>
    public void Fill(float value) => AsSpan().Fill(value);

    // ---------------------------------------------------------------- autograd surface

    /// <summary>
    /// Whether gradients flow to this tensor. Settable on leaves only (tensors not produced by a recorded op);
    /// op results require grad when any input does and recording is enabled.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad || GradFn != null;
        set
        {
            if (GradFn != null) throw new AutogradException($"RequiresGrad can only be changed on leaf tensors; {Describe()} was produced by {GradFn.Op}. Call Detach() first.");
            // a leaf whose gradient flag is managed (a parameter, frozen or not) is long-lived: never recycled by a scope
            Keep();
            _requiresGrad = value;
        }
    }

    /// <summary>True when not produced by a recorded op.</summary>
    public bool IsLeaf => GradFn == null;

    /// <summary>The accumulated gradient of a leaf tensor (same shape, contiguous), or null before the first backward / after <see cref="ZeroGrad"/>.</summary>
    /// <remarks>A gradient stored here outlives any <see cref="TensorScope"/> it was computed in (it is kept).</remarks>
    public Tensor? Grad
    {
        get => _grad;
        set { value?.Keep(); _grad = value; }
    }

    /// <summary>
    /// Lets this tensor (and every view of its storage) outlive the <see cref="TensorScope"/> it was created in: its buffer is
    /// not recycled and the tensor is not released when the scope ends. Its graph is still freed then (values, not history,
    /// escape). No effect outside a scope. Returns this tensor.
    /// </summary>
    public Tensor Keep()
    {
        TensorScope.Escape(Data);
        return this;
    }

    /// <summary>True when the <see cref="TensorScope"/> this tensor was created in has ended and taken its buffer back.</summary>
    public bool IsReleased => _data == null;

    internal void Release() => _data = null;

    // why a tensor released outside a TensorScope has no storage (see ReleaseStorage)
    string? _releasedBecause;

    /// <summary>Drops the storage of a tensor whose values live elsewhere from now on (an int8-quantized weight);
    /// reading it then throws with <paramref name="because"/>.</summary>
    internal void ReleaseStorage(string because) { _data = null; _releasedBecause = because; }

    // out of line so the Data getter stays a field load and a null check that the JIT inlines
    [MethodImpl(MethodImplOptions.NoInlining)]
    float[] ThrowReleased() => throw new TensorReleasedException(_releasedBecause != null ? $"{Describe()} has no fp32 values: {_releasedBecause}" :
        $"{Describe()} was created inside a TensorScope that has ended, so its buffer was recycled. " +
        "Read what you need inside the scope (Item(), ToArray()) or call Keep() on the tensor before the scope ends.");

    /// <summary>
    /// Called by <see cref="Autograd.Backward"/> once this leaf's gradient for that backward pass is final (every op that
    /// feeds it has run), with the leaf — as torch's <c>register_post_accumulate_grad_hook</c>. Null: no hook.
    /// </summary>
    /// <remarks>
    /// Data-parallel training starts the all-reduce of a gradient bucket here, so communication overlaps the rest of the
    /// backward pass. The hook runs on the thread that called Backward, between two ops; it must not run ops that record.
    /// </remarks>
    public Action<Tensor>? GradReadyHook { get; set; }

    /// <summary>Drops the accumulated gradient (the next backward allocates a fresh one), as torch's set_to_none.</summary>
    public void ZeroGrad() => _grad = null;

    /// <summary>A tensor sharing this one's storage that records no history and requires no grad.</summary>
    public Tensor Detach() => new(Data, Offset, _shape, _strides) { Name = Name };

    /// <summary>Back-propagates from this tensor; see <see cref="Autograd.Backward"/>.</summary>
    public void Backward(Tensor? gradOutput = null, bool retainGraph = false) => Autograd.Backward(this, gradOutput, retainGraph);

    /// <summary>Attaches a graph node to <paramref name="result"/> when recording is on and any input requires grad.</summary>
    internal static Tensor Record(Tensor result, string op, BackwardFn backward, params Tensor?[] inputs)
    {
        if (!Autograd.IsEnabled) return result;
        OpProfile.LapActive("fwd", op);
        bool any = false;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] is { } t && t.RequiresGrad) any = true;
            else inputs[i] = null;
        }
        if (!any) return result;
        result.GradFn = new Node(op, backward, inputs, result.ShapeArray);
        return result;
    }

    internal static bool NeedsGrad(Tensor a) => a.RequiresGrad && Autograd.IsEnabled;
    internal static bool NeedsGrad(Tensor a, Tensor b) => (a.RequiresGrad || b.RequiresGrad) && Autograd.IsEnabled;

    // ---------------------------------------------------------------- helpers

    internal static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    internal static int CheckedSize(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), $"Negative dimension in shape {FormatShape(shape)}.");
            n *= d;
            if (n > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(shape), $"Shape {FormatShape(shape)} holds more than 2³¹−1 elements.");
        }
        return (int)n;
    }

    internal static int NormDim(int d, int rank, string op)
    {
        int r = d < 0 ? d + rank : d;
        if ((uint)r >= (uint)Math.Max(rank, 0) ) throw new ArgumentOutOfRangeException(nameof(d), d, $"{op}: dimension {d} is out of range for rank {rank}.");
        return r;
    }

    /// <summary>"[2, 3, 4]".</summary>
    public static string FormatShape(ReadOnlySpan<int> shape)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < shape.Length; i++) { if (i > 0) sb.Append(", "); sb.Append(shape[i]); }
        return sb.Append(']').ToString();
    }

    internal string Describe() => Name != null ? $"tensor '{Name}' {FormatShape(_shape)}" : $"tensor {FormatShape(_shape)}";

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Tensor").Append(FormatShape(_shape));
        if (Name != null) sb.Append(" '").Append(Name).Append('\'');
        if (GradFn != null) sb.Append(" grad_fn=").Append(GradFn.Op);
        else if (_requiresGrad) sb.Append(" requires_grad");
        if (_data == null) sb.Append(" (released)");
        else if (Size <= 16)
        {
            var a = ToArray();
            sb.Append(" {").Append(string.Join(", ", a.Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)))).Append('}');
        }
        return sb.ToString();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReadOnlySpan<float> ContiguousSpan() => Data.AsSpan(Offset, Size);
}
