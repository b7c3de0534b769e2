using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Position-wise feed-forward: lin2(dropout?(act(lin1(x)))) then dropout, as DistilBERT's FFN ("lin1", "lin2").</summary>
public sealed class FeedForward : Module
{
    public FeedForward(int hidden, int intermediate, Activation activation = Activation.Gelu, float dropout = 0f)
    {
        Activation = activation;
        Lin1 = RegisterModule("lin1", new Linear(hidden, intermediate));
        Lin2 = RegisterModule("lin2", new Linear(intermediate, hidden));
        Dropout = RegisterModule("dropout", new Dropout(dropout));
    }

    public Activation Activation { get; }
    public Linear Lin1 { get; }
    public Linear Lin2 { get; }
    public Dropout Dropout { get; }

    public Tensor Forward(Tensor x)
    {
        var h = Activation == Activation.Gelu
            ? Functional.LinearGelu(x, Lin1.Weight.Value, Lin1.Bias?.Value)   // bias + GELU fused after the GEMM
            : Activation.Apply(Lin1.Forward(x));
        Lin1.Forwarded(h);   // the fused GEMM + GELU ran on Lin1's behalf
        var y = Dropout.Forward(Lin2.Forward(h));
        return Forwarded(y);
    }
}

/// <summary>Settings of a <see cref="TransformerEncoderLayer"/>.</summary>
/// <param name="Hidden">model width</param>
/// <param name="Heads">attention heads</param>
/// <param name="Intermediate">feed-forward width</param>
/// <param name="KeyDim">per-head width (default hidden/heads)</param>
/// <param name="Activation">feed-forward activation</param>
/// <param name="Dropout">dropout on the attention output (if <paramref name="DropoutAfterAttention"/>) and the feed-forward output</param>
/// <param name="AttentionDropout">dropout on the attention probabilities</param>
/// <param name="LayerNormEps">ε of both layer norms (BERT 1e-12, Keras 1e-6)</param>
/// <param name="DropoutAfterAttention">Keras applies dropout to the attention output before the residual; DistilBERT does not</param>
public sealed record TransformerEncoderLayerOptions(int Hidden, int Heads, int Intermediate, int? KeyDim = null,
    Activation Activation = Activation.Gelu, float Dropout = 0.1f, float AttentionDropout = 0.1f, float LayerNormEps = 1e-12f,
    bool DropoutAfterAttention = true);

/// <summary>Output of a <see cref="TransformerEncoderLayer"/>: hidden states and, on request, attention probabilities.</summary>
public sealed record EncoderLayerOutput(Tensor Hidden, Tensor? AttentionProbabilities);

/// <summary>
/// Post-norm transformer encoder block (BERT/DistilBERT/Keras tutorial):
/// x = LN₁(x + Dropout(MHA(x))); x = LN₂(x + Dropout(FFN(x))). Names follow DistilBERT's TransformerBlock:
/// attention.{q,k,v,out}_lin, sa_layer_norm, ffn.lin1/lin2, output_layer_norm.
/// </summary>
public sealed class TransformerEncoderLayer : Module
{
    public TransformerEncoderLayer(TransformerEncoderLayerOptions options)
    {
        Options = options;
        Attention = RegisterModule("attention", new MultiHeadAttention(options.Hidden, options.Heads, options.KeyDim, options.AttentionDropout));
        AttentionNorm = RegisterModule("sa_layer_norm", new LayerNorm(options.Hidden, options.LayerNormEps));
        Ffn = RegisterModule("ffn", new FeedForward(options.Hidden, options.Intermediate, options.Activation, options.Dropout));
        OutputNorm = RegisterModule("output_layer_norm", new LayerNorm(options.Hidden, options.LayerNormEps));
        AttentionOutputDropout = RegisterModule("dropout", new Dropout(options.DropoutAfterAttention ? options.Dropout : 0f));
    }

    public TransformerEncoderLayerOptions Options { get; }
    public MultiHeadAttention Attention { get; }
    public LayerNorm AttentionNorm { get; }
    public FeedForward Ffn { get; }
    public LayerNorm OutputNorm { get; }
    public Dropout AttentionOutputDropout { get; }

    /// <summary>x [B, S, hidden] with an optional additive mask broadcastable to [B, heads, S, S].</summary>
    public EncoderLayerOutput Forward(Tensor x, Tensor? additiveMask = null, bool returnAttention = false)
    {
        var a = Attention.Forward(x, additiveMask, returnAttention);
        var h = AttentionNorm.Forward(x + AttentionOutputDropout.Forward(a.Output));
        var y = OutputNorm.Forward(h + Ffn.Forward(h));
        return new EncoderLayerOutput(Forwarded(y), a.Probabilities);
    }
}
