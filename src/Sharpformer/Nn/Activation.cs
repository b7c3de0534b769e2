using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Position-wise activation functions by their HF config name.</summary>
public enum Activation
{
    /// <summary>Exact GELU x·Φ(x) ("gelu", BERT).</summary>
    Gelu,
    /// <summary>tanh-approximate GELU ("gelu_new", "gelu_pytorch_tanh").</summary>
    GeluTanh,
    Relu,
    Tanh,
}

public static class ActivationExtensions
{
    public static Tensor Apply(this Activation a, Tensor x) => a switch
    {
        Activation.Gelu => x.Gelu(),
        Activation.GeluTanh => x.GeluTanh(),
        Activation.Relu => x.Relu(),
        Activation.Tanh => x.Tanh(),
        _ => throw new NotSupportedException($"Activation {a} is not supported."),
    };

    /// <summary>Parses an HF config "hidden_act" value ("gelu", "gelu_new", "relu", …).</summary>
    public static Activation Parse(string name) => name.ToLowerInvariant() switch
    {
        "gelu" => Activation.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.GeluTanh,
        "relu" => Activation.Relu,
        "tanh" => Activation.Tanh,
        _ => throw new NotSupportedException($"Activation '{name}' is not supported; use gelu, gelu_new, gelu_pytorch_tanh, relu or tanh."),
    };
}
