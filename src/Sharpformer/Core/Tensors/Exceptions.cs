namespace Sharpformer.Tensors;

/// <summary>Two tensors' shapes do not fit an operation; the message names the op and both shapes.</summary>
public sealed class ShapeMismatchException : SharpformerException
{
    public ShapeMismatchException(string message) : base(message) { }

    internal static ShapeMismatchException For(string op, ReadOnlySpan<int> a, ReadOnlySpan<int> b, string why) =>
        new($"{op}: shapes {Tensor.FormatShape(a)} and {Tensor.FormatShape(b)} do not fit: {why}");
}

/// <summary>Misuse of automatic differentiation: backward through a freed graph, a non-scalar root without a gradient, etc.</summary>
public sealed class AutogradException : SharpformerException
{
    public AutogradException(string message) : base(message) { }
}

/// <summary>A tensor's data was read after the <see cref="TensorScope"/> it was created in ended and recycled its buffer.</summary>
public sealed class TensorReleasedException : SharpformerException
{
    public TensorReleasedException(string message) : base(message) { }
}

/// <summary>A tensor holds NaN or ±∞ where finite values were required; names the tensor and the first bad index.</summary>
public sealed class NonFiniteException : SharpformerException
{
    public NonFiniteException(string message, string tensorName, int[] index, float value) : base(message)
    {
        TensorName = tensorName; Index = index; Value = value;
    }

    public string TensorName { get; }
    public IReadOnlyList<int> Index { get; }
    public float Value { get; }
}
