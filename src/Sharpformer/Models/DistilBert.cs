using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

// DistilBERT (Sanh et al. 2019) as transformers 4.30 implements it (models/distilbert/modeling_distilbert.py).
// Same post-norm encoder as BERT but no token types and no pooler, queries scaled before the product, and
// padded keys masked with masked_fill(mask == 0, finfo.min).

/// <summary>Multi-head self-attention: P = softmax(masked_fill((Q/√d)·Kᵀ, mask = 0, float32.min)); out = W_o·(P·V) + b_o.</summary>
public sealed class MultiHeadSelfAttention : EncoderSelfAttention
{
    internal MultiHeadSelfAttention(VarBuilder vb, DistilBertConfig c, WeightInit init)
        : base(vb, c.Dim, c.NHeads, c.AttentionDropout, init, Kernels.AttentionScaling.ScaleQueries,
            ("q_lin", "k_lin", "v_lin", "out_lin"), ("dim", "n_heads")) { }
}

/// <summary>Position-wise feed-forward: dropout(W₂·act(W₁·x + b₁) + b₂).</summary>
public sealed class FFN : Module
{
    public Linear Lin1 { get; }
    public Linear Lin2 { get; }
    public Dropout Dropout { get; }
    public HiddenActivation Activation { get; }

    internal FFN(VarBuilder vb, DistilBertConfig c, WeightInit init)
    {
        Lin1 = RegisterModule("lin1", new Linear(vb.Push("lin1"), c.Dim, c.HiddenDim, init));
        Lin2 = RegisterModule("lin2", new Linear(vb.Push("lin2"), c.HiddenDim, c.Dim, init));
        Dropout = RegisterModule("dropout", new Dropout((float)c.Dropout));
        Activation = PretrainedModel.ParseActivation(c.Activation, "activation");
    }

    public Tensor Forward(Tensor x)
    {
        var y = Dropout.Forward(Lin2.Forward(PretrainedModel.Activate(Lin1.Forward(x), Activation)));
        return Forwarded(y);
    }
}

/// <summary>Post-norm block: a = LN_sa(Attn(x) + x); y = LN_out(FFN(a) + a).</summary>
public sealed class TransformerBlock : EncoderLayer
{
    public MultiHeadSelfAttention Attention { get; }
    public LayerNorm SaLayerNorm { get; }
    public FFN Ffn { get; }
    public LayerNorm OutputLayerNorm { get; }

    internal TransformerBlock(VarBuilder vb, DistilBertConfig c)
    {
        var init = WeightInit.Normal(c.InitializerRange);
        Attention = RegisterModule("attention", new MultiHeadSelfAttention(vb.Push("attention"), c, init));
        SaLayerNorm = RegisterModule("sa_layer_norm", new LayerNorm(vb.Push("sa_layer_norm"), c.Dim, (float)DistilBertConfig.LayerNormEps));
        Ffn = RegisterModule("ffn", new FFN(vb.Push("ffn"), c, init));
        OutputLayerNorm = RegisterModule("output_layer_norm", new LayerNorm(vb.Push("output_layer_norm"), c.Dim, (float)DistilBertConfig.LayerNormEps));
    }

    public override (Tensor Hidden, Tensor Probabilities) Forward(Tensor x, Tensor? additiveMask)
    {
        var (sa, probs) = Attention.Forward(x, additiveMask);
        sa = SaLayerNorm.Forward(sa.Add(x));
        var y = OutputLayerNorm.Forward(Ffn.Forward(sa).Add(sa));
        return (Forwarded(y), probs);
    }

    internal override EncoderLayerWeights FastWeights() => new(
        PretrainedModel.Dense(Attention.Query), PretrainedModel.Dense(Attention.Key), PretrainedModel.Dense(Attention.Value),
        PretrainedModel.Dense(Attention.Out!), PretrainedModel.Norm(SaLayerNorm),
        PretrainedModel.Dense(Ffn.Lin1), PretrainedModel.Dense(Ffn.Lin2), PretrainedModel.Norm(OutputLayerNorm));
}

/// <summary>The bare DistilBERT encoder (HF <c>DistilBertModel</c>): embeddings and <c>transformer.layer.N</c>, no pooler.</summary>
public sealed class DistilBertModel : TransformerEncoder
{
    /// <summary>The encoder with parameters from <paramref name="vb"/> (a checkpoint, or the initialiser).</summary>
    public DistilBertModel(DistilBertConfig config, VarBuilder vb)
        : base(vb, config, SpecOf(config), addPoolingLayer: false, layer => new TransformerBlock(layer, config)) { }

    /// <summary>A freshly initialised DistilBertModel.</summary>
    public DistilBertModel(DistilBertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }

    public DistilBertConfig Config => (DistilBertConfig)ModelConfig;
    /// <summary>HF's <c>transformer</c> attribute: the layer stack.</summary>
    public EncoderStack Transformer => Stack;

    static EncoderSpec SpecOf(DistilBertConfig c)
    {
        c.CheckSizes();
        return new EncoderSpec("distilbert", "distilbert", "DistilBertModel", "transformer", c.VocabSize, null, c.MaxPositionEmbeddings, c.PadTokenId,
            c.SinusoidalPosEmbds, c.Dim, c.HiddenDim, c.NHeads, c.NLayers, ParseActivation(c.Activation, "activation"), Kernels.AttentionScaling.ScaleQueries,
            (float)DistilBertConfig.LayerNormEps, (float)c.Dropout, c.InitializerRange, SavesPositionIds: false);
    }

    /// <summary>DistilBERT's heads as data (transformers 4.30 modeling_distilbert.py).</summary>
    internal static HeadSpec HeadFor(HeadKind kind, DistilBertConfig c) => kind switch
    {
        // logits = W_c·dropout(relu(W_p·h[:, 0] + b_p)) + b_c
        HeadKind.SequenceClassification => new(kind, "DistilBertForSequenceClassification", HeadInput.FirstToken, "classifier", c.SeqClassifDropout,
            Dense: "pre_classifier", DenseActivation: HiddenActivation.Relu),
        HeadKind.TokenClassification => new(kind, "DistilBertForTokenClassification", HeadInput.Tokens, "classifier", c.Dropout),
        _ => new(kind, "DistilBertForMaskedLM", HeadInput.Tokens, "vocab_projector.bias", Dense: "vocab_transform",
            DenseActivation: ParseActivation(c.Activation, "activation"), Norm: "vocab_layer_norm", NormEps: (float)DistilBertConfig.LayerNormEps,
            TiedAliases: new Dictionary<string, string> { ["vocab_projector.weight"] = "distilbert.embeddings.word_embeddings.weight" }),
    };
}

/// <summary>DistilBERT sequence classifier: logits = W_c·dropout(relu(W_p·h[:, 0] + b_p)) + b_c (HF <c>DistilBertForSequenceClassification</c>).</summary>
public sealed class DistilBertForSequenceClassification(DistilBertConfig config, VarBuilder vb)
    : EncoderWithHead(vb, new DistilBertModel(config, vb.Push("distilbert")), DistilBertModel.HeadFor(HeadKind.SequenceClassification, config))
{
    public DistilBertForSequenceClassification(DistilBertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }
    public DistilBertModel DistilBert => (DistilBertModel)BaseModel;
    public DistilBertConfig Config => DistilBert.Config;
}

/// <summary>DistilBERT token classifier: logits = W·dropout(h) + b (HF <c>DistilBertForTokenClassification</c>).</summary>
public sealed class DistilBertForTokenClassification(DistilBertConfig config, VarBuilder vb)
    : EncoderWithHead(vb, new DistilBertModel(config, vb.Push("distilbert")), DistilBertModel.HeadFor(HeadKind.TokenClassification, config))
{
    public DistilBertForTokenClassification(DistilBertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }
    public DistilBertModel DistilBert => (DistilBertModel)BaseModel;
    public DistilBertConfig Config => DistilBert.Config;
}

/// <summary>
/// DistilBERT MLM: logits = LN(act(W_t·h + b_t))·W_wordᵀ + b_p (HF <c>DistilBertForMaskedLM</c>; <c>vocab_projector.weight</c> is tied to the word embeddings).
/// </summary>
public sealed class DistilBertForMaskedLM(DistilBertConfig config, VarBuilder vb)
    : EncoderWithHead(vb, new DistilBertModel(config, vb.Push("distilbert")), DistilBertModel.HeadFor(HeadKind.MaskedLM, config))
{
    public DistilBertForMaskedLM(DistilBertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }
    public DistilBertModel DistilBert => (DistilBertModel)BaseModel;
    public DistilBertConfig Config => DistilBert.Config;
}
