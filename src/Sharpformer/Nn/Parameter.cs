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

    /// <summary>Drops the gradient (the next backward allocates a fresh one).</summary>
    public void ZeroGrad() => Value.ZeroGrad();

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
