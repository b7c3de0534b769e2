using System.Globalization;
using Sharpformer.Tensors;

namespace Sharpformer.Nn;

// The encoder–decoder Transformer of Vaswani et al. 2017 ("Attention Is All You Need") as PyTorch's nn.Transformer builds it
// (torch/nn/modules/transformer.py, activation.py; 1.13): post-norm layers (norm_first=False), ReLU feed-forward, batch_first,
// a final LayerNorm after each stack. Parameter names are its state_dict keys (encoder.layers.0.self_attn.in_proj_weight, …),
// so a state dict loads by name. Every attention — encoder self, decoder causal self, decoder cross — is the one fused op
// (Functional.SelfAttention / Functional.CrossAttention over Kernels.Attention). Scores are (1/√d)·(q·k); PyTorch divides q by
// √d first, which gives the same bits when √d is a power of two (d = 4, 16, 64) and differs by round-off otherwise.

/// <summary>Sizes of an <see cref="Transformer"/> (nn.Transformer's constructor arguments).</summary>
/// <param name="DModel">d_model, the width of every residual stream.</param>
/// <param name="Heads">nhead; d_model must be divisible by it.</param>
/// <param name="EncoderLayers">num_encoder_layers.</param>
/// <param name="DecoderLayers">num_decoder_layers.</param>
/// <param name="FeedForward">dim_feedforward.</param>
/// <param name="Dropout">dropout on attention probabilities, sublayer outputs and inside the feed-forward (training only).</param>
/// <param name="LayerNormEps">layer_norm_eps.</param>
public sealed record TransformerOptions(int DModel, int Heads, int EncoderLayers, int DecoderLayers, int FeedForward, float Dropout = 0f, float LayerNormEps = 1e-5f)
{
    internal void Check()
    {
        if (DModel <= 0 || Heads <= 0 || DModel % Heads != 0 || EncoderLayers < 0 || DecoderLayers < 0 || FeedForward <= 0)
            throw new ArgumentOutOfRangeException(nameof(DModel), $"Transformer(d_model={DModel}, nhead={Heads}, layers {EncoderLayers}+{DecoderLayers}, dim_feedforward={FeedForward}): sizes must be positive and d_model divisible by nhead.");
        if (Dropout < 0f || Dropout >= 1f) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "Transformer dropout must be in [0, 1).");
    }
}

/// <summary>
/// nn.MultiheadAttention with equal query/key/value widths: <c>in_proj_weight</c> [3d, d] = rows [W_q; W_k; W_v],
/// <c>in_proj_bias</c> [3d], <c>out_proj</c> Linear(d, d).
/// </summary>
public sealed class MultiheadAttention : Module
{
    public MultiheadAttention(VarBuilder vb, int embedDim, int heads, float dropout = 0f)
    {
        if (embedDim <= 0 || heads <= 0 || embedDim % heads != 0)
            throw new ArgumentOutOfRangeException(nameof(heads), $"MultiheadAttention(embed_dim={embedDim}, num_heads={heads}): embed_dim must be divisible by num_heads.");
        EmbedDim = embedDim; Heads = heads;
        // PyTorch's _reset_parameters: xavier_uniform_ on in_proj_weight (fan_in d, fan_out 3d), zero biases.
        InProjWeight = RegisterParameter("in_proj_weight", vb.Get("in_proj_weight", [3 * embedDim, embedDim], WeightInit.Uniform(Math.Sqrt(6.0 / (4 * embedDim)))));
        InProjBias = RegisterParameter("in_proj_bias", vb.Get("in_proj_bias", [3 * embedDim], WeightInit.Zeros));
        OutProj = RegisterModule("out_proj", new Linear(vb.Push("out_proj"), embedDim, embedDim, WeightInit.Uniform(1 / Math.Sqrt(embedDim))));
        AttnDropout = RegisterModule("dropout", new Dropout(dropout));
    }

    public int EmbedDim { get; }
    public int Heads { get; }
    public Parameter InProjWeight { get; }
    public Parameter InProjBias { get; }
    public Linear OutProj { get; }
    /// <summary>Dropout on the attention probabilities (no parameters; in PyTorch a float attribute named dropout).</summary>
    public Dropout AttnDropout { get; }

    /// <summary>x [B, T, d] → q | k | v [B, T, 3d] (one GEMM).</summary>
    public Tensor ProjectQkv(Tensor x) => Functional.Linear(x, InProjWeight.Value, InProjBias.Value);

    /// <summary>Decoder states [B, T, d] → queries [B, T, d] (the first d rows of in_proj).</summary>
    public Tensor ProjectQuery(Tensor x) => Functional.Linear(x, InProjWeight.Value.Slice(0, 0, EmbedDim), InProjBias.Value.Slice(0, 0, EmbedDim));

    /// <summary>Encoder memory [B, S, d] → keys | values [B, S, 2d] (the last 2d rows of in_proj), computed once per source.</summary>
    public Tensor ProjectMemory(Tensor memory) =>
        Functional.Linear(memory, InProjWeight.Value.Slice(0, EmbedDim, 2 * EmbedDim), InProjBias.Value.Slice(0, EmbedDim, 2 * EmbedDim));

    /// <summary>Self-attention of x [B, T, d] with an additive key-padding mask [B, T] (or null), causal for a decoder; returns out_proj(context) and, when asked, the probabilities [B, H, T, T].</summary>
    public (Tensor Output, Tensor? Probabilities) SelfAttention(Tensor x, Tensor? keyPaddingMask, bool causal, bool returnProbabilities = false)
    {
        var r = Functional.SelfAttention(ProjectQkv(x), Heads, keyPaddingMask, AttnDropout.P, Training, AttnDropout.Rng, returnProbabilities, causal);
        return (Forwarded(OutProj.Forward(r.Context)), r.Probabilities);
    }

    /// <summary>Cross-attention of decoder states x [B, T, d] over <see cref="ProjectMemory"/>(memory) with the memory's additive padding mask [B, S]; returns out_proj(context) and, when asked, the probabilities [B, H, T, S].</summary>
    public (Tensor Output, Tensor? Probabilities) CrossAttention(Tensor x, Tensor memoryKeysValues, Tensor? memoryPaddingMask, bool returnProbabilities = false)
    {
        var r = Functional.CrossAttention(ProjectQuery(x), memoryKeysValues, Heads, memoryPaddingMask, AttnDropout.P, Training, AttnDropout.Rng, returnProbabilities);
        return (Forwarded(OutProj.Forward(r.Context)), r.Probabilities);
    }
}

/// <summary>The two-layer ReLU feed-forward of a Transformer layer with its dropouts: linear2(dropout(relu(linear1(x)))).</summary>
internal static class FeedForward
{
    public static Linear Linear1(VarBuilder vb, TransformerOptions o) => new(vb.Push("linear1"), o.DModel, o.FeedForward, WeightInit.Uniform(1 / Math.Sqrt(o.DModel)));
    public static Linear Linear2(VarBuilder vb, TransformerOptions o) => new(vb.Push("linear2"), o.FeedForward, o.DModel, WeightInit.Uniform(1 / Math.Sqrt(o.FeedForward)));
    public static Tensor Forward(Linear linear1, Dropout dropout, Linear linear2, Tensor x) =>
        linear2.Forward(dropout.Forward(Functional.LinearRelu(x, linear1.Weight.Value, linear1.Bias?.Value)));
}

/// <summary>nn.TransformerEncoderLayer, post-norm: x = norm1(x + SelfAttn(x)); x = norm2(x + FFN(x)).</summary>
public sealed class TransformerEncoderLayer : Module
{
    public TransformerEncoderLayer(VarBuilder vb, TransformerOptions o)
    {
        SelfAttn = RegisterModule("self_attn", new MultiheadAttention(vb.Push("self_attn"), o.DModel, o.Heads, o.Dropout));
        Linear1 = RegisterModule("linear1", FeedForward.Linear1(vb, o));
        Dropout = RegisterModule("dropout", new Dropout(o.Dropout));
        Linear2 = RegisterModule("linear2", FeedForward.Linear2(vb, o));
        Norm1 = RegisterModule("norm1", new LayerNorm(vb.Push("norm1"), o.DModel, o.LayerNormEps));
        Norm2 = RegisterModule("norm2", new LayerNorm(vb.Push("norm2"), o.DModel, o.LayerNormEps));
        Dropout1 = RegisterModule("dropout1", new Dropout(o.Dropout));
        Dropout2 = RegisterModule("dropout2", new Dropout(o.Dropout));
    }

    public MultiheadAttention SelfAttn { get; }
    public Linear Linear1 { get; }
    public Dropout Dropout { get; }
    public Linear Linear2 { get; }
    public LayerNorm Norm1 { get; }
    public LayerNorm Norm2 { get; }
    public Dropout Dropout1 { get; }
    public Dropout Dropout2 { get; }

    /// <summary>x [B, S, d] with the additive source padding mask [B, S] (or null) → [B, S, d].</summary>
    public Tensor Forward(Tensor x, Tensor? srcKeyPaddingMask)
    {
        x = Norm1.Forward(Dropout1.ForwardAdd(x, SelfAttn.SelfAttention(x, srcKeyPaddingMask, causal: false).Output));
        return Forwarded(Norm2.Forward(Dropout2.ForwardAdd(x, FeedForward.Forward(Linear1, Dropout, Linear2, x))));
    }
}

/// <summary>A decoder layer's output and, when asked, its cross-attention probabilities [B, H, T, S].</summary>
public sealed record TransformerDecoderLayerOutput(Tensor Output, Tensor? CrossAttention);

/// <summary>
/// nn.TransformerDecoderLayer, post-norm: x = norm1(x + SelfAttn(x, causal)); x = norm2(x + CrossAttn(x, memory));
/// x = norm3(x + FFN(x)).
/// </summary>
public sealed class TransformerDecoderLayer : Module
{
    public TransformerDecoderLayer(VarBuilder vb, TransformerOptions o)
    {
        SelfAttn = RegisterModule("self_attn", new MultiheadAttention(vb.Push("self_attn"), o.DModel, o.Heads, o.Dropout));
        MultiheadAttn = RegisterModule("multihead_attn", new MultiheadAttention(vb.Push("multihead_attn"), o.DModel, o.Heads, o.Dropout));
        Linear1 = RegisterModule("linear1", FeedForward.Linear1(vb, o));
        Dropout = RegisterModule("dropout", new Dropout(o.Dropout));
        Linear2 = RegisterModule("linear2", FeedForward.Linear2(vb, o));
        Norm1 = RegisterModule("norm1", new LayerNorm(vb.Push("norm1"), o.DModel, o.LayerNormEps));
        Norm2 = RegisterModule("norm2", new LayerNorm(vb.Push("norm2"), o.DModel, o.LayerNormEps));
        Norm3 = RegisterModule("norm3", new LayerNorm(vb.Push("norm3"), o.DModel, o.LayerNormEps));
        Dropout1 = RegisterModule("dropout1", new Dropout(o.Dropout));
        Dropout2 = RegisterModule("dropout2", new Dropout(o.Dropout));
        Dropout3 = RegisterModule("dropout3", new Dropout(o.Dropout));
    }

    public MultiheadAttention SelfAttn { get; }
    /// <summary>The cross-attention (PyTorch's name).</summary>
    public MultiheadAttention MultiheadAttn { get; }
    public Linear Linear1 { get; }
    public Dropout Dropout { get; }
    public Linear Linear2 { get; }
    public LayerNorm Norm1 { get; }
    public LayerNorm Norm2 { get; }
    public LayerNorm Norm3 { get; }
    public Dropout Dropout1 { get; }
    public Dropout Dropout2 { get; }
    public Dropout Dropout3 { get; }

    /// <summary>One decoder layer.</summary>
    /// <param name="x">[B, T, d] target states.</param>
    /// <param name="memoryKeysValues"><see cref="MultiheadAttention.ProjectMemory"/> of the encoder output by this layer's cross-attention, [B, S, 2d].</param>
    /// <param name="memoryKeyPaddingMask">additive [B, S] source padding mask, or null.</param>
    /// <param name="tgtKeyPaddingMask">additive [B, T] target padding mask, or null (the self-attention is always causal).</param>
    /// <param name="returnCrossAttention">also return the cross-attention probabilities.</param>
    /// <param name="cachedSelfAttention">
    /// incremental decoding: turns this step's q | k | v [B, T, 3d] into the context [B, T, d] against the keys and values of
    /// earlier steps (a key/value cache); null attends causally over the T positions given.
    /// </param>
    public TransformerDecoderLayerOutput Forward(Tensor x, Tensor memoryKeysValues, Tensor? memoryKeyPaddingMask, Tensor? tgtKeyPaddingMask,
        bool returnCrossAttention = false, Func<Tensor, Tensor>? cachedSelfAttention = null)
    {
        var self = cachedSelfAttention == null
            ? SelfAttn.SelfAttention(x, tgtKeyPaddingMask, causal: true).Output
            : SelfAttn.OutProj.Forward(cachedSelfAttention(SelfAttn.ProjectQkv(x)));
        x = Norm1.Forward(Dropout1.ForwardAdd(x, self));
        var (cross, probs) = MultiheadAttn.CrossAttention(x, memoryKeysValues, memoryKeyPaddingMask, returnCrossAttention);
        x = Norm2.Forward(Dropout2.ForwardAdd(x, cross));
        x = Norm3.Forward(Dropout3.ForwardAdd(x, FeedForward.Forward(Linear1, Dropout, Linear2, x)));
        return new TransformerDecoderLayerOutput(Forwarded(x), probs);
    }

    /// <summary>The layer on raw memory [B, S, d] (projects it first): nn.TransformerDecoderLayer(tgt, memory, causal tgt_mask, key padding masks).</summary>
    public Tensor Forward(Tensor x, Tensor memory, Tensor? memoryKeyPaddingMask, Tensor? tgtKeyPaddingMask) =>
        Forward(x, MultiheadAttn.ProjectMemory(memory), memoryKeyPaddingMask, tgtKeyPaddingMask, returnCrossAttention: false).Output;
}

/// <summary>An encoder or decoder stack: <c>layers.0</c> … <c>layers.(n−1)</c> and the final <c>norm</c>.</summary>
public abstract class TransformerStack<TLayer> : Module where TLayer : Module
{
    private protected TransformerStack(VarBuilder vb, int count, TransformerOptions o, Func<VarBuilder, TransformerOptions, TLayer> layer)
    {
        var list = vb.Push("layers");
        Layers = RegisterModule("layers", new ModuleList<TLayer>(Enumerable.Range(0, count).Select(i => layer(list.Push(i.ToString(CultureInfo.InvariantCulture)), o))));
        Norm = RegisterModule("norm", new LayerNorm(vb.Push("norm"), o.DModel, o.LayerNormEps));
    }

    public ModuleList<TLayer> Layers { get; }
    public LayerNorm Norm { get; }
}

/// <summary>nn.TransformerEncoder (renamed: Models.TransformerEncoder is the BERT family's base): <c>layers.N</c> and the final <c>norm</c>.</summary>
public sealed class TransformerEncoderStack(VarBuilder vb, TransformerOptions o)
    : TransformerStack<TransformerEncoderLayer>(vb, o.EncoderLayers, o, (v, opt) => new TransformerEncoderLayer(v, opt))
{
    /// <summary>src [B, S, d] with the additive padding mask [B, S] (or null) → memory [B, S, d].</summary>
    public Tensor Forward(Tensor src, Tensor? srcKeyPaddingMask)
    {
        foreach (var layer in Layers) src = layer.Forward(src, srcKeyPaddingMask);
        return Forwarded(Norm.Forward(src));
    }
}

/// <summary>The decoder stack's output and, when asked, every layer's cross-attention probabilities [B, H, T, S].</summary>
public sealed record TransformerDecoderOutput(Tensor Output, IReadOnlyList<Tensor>? CrossAttentions);

/// <summary>nn.TransformerDecoder: <c>layers.N</c> and the final <c>norm</c>.</summary>
public sealed class TransformerDecoderStack(VarBuilder vb, TransformerOptions o)
    : TransformerStack<TransformerDecoderLayer>(vb, o.DecoderLayers, o, (v, opt) => new TransformerDecoderLayer(v, opt))
{
    /// <summary>Every layer's cross-attention keys | values of <paramref name="memory"/> [B, S, d]: computed once per source, read by every step.</summary>
    public Tensor[] ProjectMemory(Tensor memory) => Layers.Select(l => l.MultiheadAttn.ProjectMemory(memory)).ToArray();

    /// <summary>
    /// tgt [B, T, d] over the memory's keys/values (<see cref="ProjectMemory"/>); <paramref name="cachedSelfAttention"/>(layer)
    /// gives a layer's incremental self-attention (see <see cref="TransformerDecoderLayer.Forward(Tensor, Tensor, Tensor?, Tensor?, bool, Func{Tensor, Tensor}?)"/>).
    /// </summary>
    public TransformerDecoderOutput Forward(Tensor tgt, IReadOnlyList<Tensor> memoryKeysValues, Tensor? memoryKeyPaddingMask, Tensor? tgtKeyPaddingMask,
        bool returnCrossAttention = false, Func<int, Func<Tensor, Tensor>>? cachedSelfAttention = null)
    {
        var probs = returnCrossAttention ? new List<Tensor>(Layers.Count) : null;
        for (int i = 0; i < Layers.Count; i++)
        {
            var r = Layers[i].Forward(tgt, memoryKeysValues[i], memoryKeyPaddingMask, tgtKeyPaddingMask, returnCrossAttention, cachedSelfAttention?.Invoke(i));
            tgt = r.Output;
            if (r.CrossAttention != null) probs!.Add(r.CrossAttention);
        }
        return new TransformerDecoderOutput(Forwarded(Norm.Forward(tgt)), probs);
    }
}

/// <summary>
/// nn.Transformer (encoder + decoder, each with its final LayerNorm): <c>encoder.*</c>, <c>decoder.*</c>. Inputs are already
/// embedded; the target self-attention is causal (PyTorch's generate_square_subsequent_mask) and the memory padding mask is the
/// source's.
/// </summary>
public sealed class Transformer : Module
{
    public Transformer(VarBuilder vb, TransformerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Check();
        Options = options;
        Encoder = RegisterModule("encoder", new TransformerEncoderStack(vb.Push("encoder"), options));
        Decoder = RegisterModule("decoder", new TransformerDecoderStack(vb.Push("decoder"), options));
    }

    public TransformerOptions Options { get; }
    public TransformerEncoderStack Encoder { get; }
    public TransformerDecoderStack Decoder { get; }

    /// <summary>
    /// model(src, tgt, tgt_mask = causal, src_key_padding_mask, tgt_key_padding_mask, memory_key_padding_mask = src_key_padding_mask):
    /// src [B, S, d], tgt [B, T, d], additive padding masks [B, S] and [B, T] (or null) → [B, T, d].
    /// </summary>
    public Tensor Forward(Tensor src, Tensor tgt, Tensor? srcKeyPaddingMask, Tensor? tgtKeyPaddingMask)
    {
        var memory = Encoder.Forward(src, srcKeyPaddingMask);
        return Forwarded(Decoder.Forward(tgt, Decoder.ProjectMemory(memory), srcKeyPaddingMask, tgtKeyPaddingMask).Output);
    }
}
