using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Output of <see cref="MultiHeadAttention.Forward(Tensor, Tensor?, bool)"/>.</summary>
/// <param name="Output">[B, Sq, hidden] after the output projection.</param>
/// <param name="Probabilities">[B, heads, Sq, Sk] attention probabilities (before attention dropout, not differentiable) when requested.</param>
public sealed record AttentionOutput(Tensor Output, Tensor? Probabilities);

/// <summary>
/// Multi-head attention with separate Q/K/V projections hidden → heads·keyDim and an output projection heads·keyDim → hidden
/// (keyDim need not be hidden/heads, as Keras' key_dim). Parameter names follow DistilBERT: q_lin, k_lin, v_lin, out_lin.
/// </summary>
/// <remarks>
/// Attention(Q, K, V) = softmax(Q·Kᵀ/√keyDim + mask)·V per head; the additive mask broadcasts to [B, heads, Sq, Sk]
/// (use <see cref="Functional.AdditiveMask"/> for a padding mask). Runs through the fused <see cref="Functional.Attention"/>.
/// </remarks>
public sealed class MultiHeadAttention : Module, IStochastic
{
    public MultiHeadAttention(int hidden, int heads, int? keyDim = null, float attentionDropout = 0f, bool bias = true)
    {
        if (heads <= 0) throw new ArgumentOutOfRangeException(nameof(heads), heads, "heads must be positive.");
        int kd = keyDim ?? (hidden % heads == 0 ? hidden / heads
            : throw new ArgumentException($"hidden size {hidden} is not divisible by {heads} heads; pass keyDim explicitly."));
        Hidden = hidden; Heads = heads; KeyDim = kd; AttentionDropout = attentionDropout;
        Query = RegisterModule("q_lin", new Linear(hidden, heads * kd, bias));
        Key = RegisterModule("k_lin", new Linear(hidden, heads * kd, bias));
        Value = RegisterModule("v_lin", new Linear(hidden, heads * kd, bias));
        Out = RegisterModule("out_lin", new Linear(heads * kd, hidden, bias));
    }

    public int Hidden { get; }
    public int Heads { get; }
    public int KeyDim { get; }
    public float AttentionDropout { get; }
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    public Linear Out { get; }
    public Random Rng { get; set; } = new(0);

    /// <summary>Self-attention over x [B, S, hidden].</summary>
    public AttentionOutput Forward(Tensor x, Tensor? additiveMask = null, bool returnProbabilities = false) =>
        Forward(x, x, additiveMask, returnProbabilities);

    /// <summary>Attention of <paramref name="query"/> [B, Sq, hidden] over <paramref name="keyValue"/> [B, Sk, hidden].</summary>
    public AttentionOutput Forward(Tensor query, Tensor keyValue, Tensor? additiveMask, bool returnProbabilities = false)
    {
        var q = Query.Forward(query);
        var k = Key.Forward(keyValue);
        var v = Value.Forward(keyValue);
        var a = Functional.Attention(q, k, v, Heads, additiveMask, AttentionDropout, Training, Rng, returnProbabilities);
        var y = Out.Forward(a.Context);
        return new AttentionOutput(Forwarded(y), a.Probabilities);
    }
}
