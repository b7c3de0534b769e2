using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>A trainable tensor owned by a module. Freezing (<see cref="Trainable"/> = false) stops gradients and optimizers skip it.</summary>
public sealed class Parameter
{
    public Parameter(Tensor value, bool trainable = true)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!value.IsLeaf) value = value.Detach();
        if (!value.IsContiguous) value = value.Detach().Contiguous();
        Value = value;
        Value.RequiresGrad = trainable;
    }

    /// <summary>
    /// A parameter over existing buffers, without copying: <paramref name="value"/> is the parameter and
    /// <paramref name="grad"/> its gradient (both hold the product of <paramref name="shape"/> elements).
    /// </summary>
    /// <remarks>For code that computes gradients itself into flat arrays (the trainer's flat buffers) and hands them to an optimizer.</remarks>
    public static Parameter FromBuffers(string name, float[] value, float[] grad, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(grad);
        var p = new Parameter(Tensor.FromArray(value, shape)) { Value = { Name = name } };
        p.Value.Grad = Tensor.FromArray(grad, shape);
        p._callerOwnedGrad = grad;
        return p;
    }

    // Set by FromBuffers: the caller reads gradients from this array, so clearing must keep it attached.
    float[]? _callerOwnedGrad;

    /// <summary>
    /// Clears the gradient. A parameter made by <see cref="FromBuffers"/> keeps its caller's gradient array (zeroed in
    /// place), so an optimizer's <c>ZeroGrad</c> cannot silently detach it from the buffers the caller fills.
    /// </summary>
    public void ZeroGrad()
    {
        if (_callerOwnedGrad is { } g && Value.RequiresGrad)
        {
            Array.Clear(g);
            if (Value.Grad is null || !ReferenceEquals(Value.Grad.Data, g)) Value.Grad = Tensor.FromArray(g, Value.ShapeArray);
        }
        else Value.ZeroGrad();
    }

    /// <summary>The tensor (a leaf; its <see cref="Tensor.Name"/> is the dotted checkpoint key once registered under a model).</summary>
    public Tensor Value { get; }

    /// <summary>Whether gradients are computed for this parameter; setting false also drops its gradient.</summary>
    public bool Trainable
    {
        get => Value.RequiresGrad;
        set { Value.RequiresGrad = value; if (!value) Value.Grad = null; }
    }

    /// <summary>The accumulated gradient, or null.</summary>
    public Tensor? Grad => Value.Grad;

    public ReadOnlySpan<int> Shape => Value.Shape;
    public int Size => Value.Size;

    public static implicit operator Tensor(Parameter p) => p.Value;

    public override string ToString() => $"Parameter {Value.Name ?? ""}{Tensor.FormatShape(Value.Shape)}{(Trainable ? "" : " frozen")}";
}
