using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

// BERT (Devlin et al. 2019) as Hugging Face transformers 4.30 implements it (models/bert/modeling_bert.py):
// each HF submodule is one class here with the same attribute names, so parameter names equal checkpoint keys.

/// <summary>Multi-head scaled dot-product self-attention (query/key/value projections); Forward gives the context.</summary>
/// <remarks>P = softmax(Q·Kᵀ/√d + M) with M = (1 − mask)·float32.min per key; context = P·V, heads concatenated.</remarks>
public sealed class BertSelfAttention : EncoderSelfAttention
{
    internal BertSelfAttention(VarBuilder vb, BertConfig c, WeightInit init)
        : base(vb, c.HiddenSize, c.NumAttentionHeads, c.AttentionProbsDropoutProb, init, Kernels.AttentionScaling.DivideScores,
            ("query", "key", "value", null), ("hidden_size", "num_attention_heads")) { }
}

/// <summary>Dense projection, dropout, residual and LayerNorm: LN(dropout(W·x + b) + input) — HF's BertSelfOutput and BertOutput.</summary>
public abstract class BertResidualOutput : Module
{
    public Linear Dense { get; }
    public LayerNorm LayerNorm { get; }
    public Dropout Dropout { get; }

    private protected BertResidualOutput(VarBuilder vb, BertConfig c, WeightInit init, int inputSize)
    {
        Dense = RegisterModule("dense", new Linear(vb.Push("dense"), inputSize, c.HiddenSize, init));
        LayerNorm = RegisterModule("LayerNorm", new LayerNorm(vb.Push("LayerNorm"), c.HiddenSize, (float)c.LayerNormEps));
        Dropout = RegisterModule("dropout", new Dropout((float)c.HiddenDropoutProb));
    }

    public Tensor Forward(Tensor hidden, Tensor input)
    {
        var y = LayerNorm.Forward(Dropout.Forward(Dense.Forward(hidden)).Add(input));
        return Forwarded(y);
    }
}

/// <summary>Attention output block: LN(dropout(W_o·context + b_o) + input).</summary>
public sealed class BertSelfOutput : BertResidualOutput
{
    internal BertSelfOutput(VarBuilder vb, BertConfig c, WeightInit init) : base(vb, c, init, c.HiddenSize) { }
}

/// <summary>Feed-forward output block: LN(dropout(W₂·x + b₂) + input), x the intermediate activations.</summary>
public sealed class BertOutput : BertResidualOutput
{
    internal BertOutput(VarBuilder vb, BertConfig c, WeightInit init) : base(vb, c, init, c.IntermediateSize) { }
}

/// <summary>Self-attention plus its output block.</summary>
public sealed class BertAttention : Module
{
    public BertSelfAttention Self { get; }
    public BertSelfOutput Output { get; }

    internal BertAttention(VarBuilder vb, BertConfig c, WeightInit init)
    {
        Self = RegisterModule("self", new BertSelfAttention(vb.Push("self"), c, init));
        Output = RegisterModule("output", new BertSelfOutput(vb.Push("output"), c, init));
    }

    public (Tensor Output, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        var (context, probs) = Self.Forward(hidden, additiveMask);
        var y = Output.Forward(context, hidden);
        return (Forwarded(y), probs);
    }
}

/// <summary>First feed-forward layer and activation: act(W₁·x + b₁).</summary>
public sealed class BertIntermediate : Module
{
    public Linear Dense { get; }
    public HiddenActivation Activation { get; }

    internal BertIntermediate(VarBuilder vb, BertConfig c, WeightInit init)
    {
        Dense = RegisterModule("dense", new Linear(vb.Push("dense"), c.HiddenSize, c.IntermediateSize, init));
        Activation = PretrainedModel.ParseActivation(c.HiddenAct, "hidden_act");
    }

    public Tensor Forward(Tensor hidden)
    {
        // exact GELU (BERT's default) fuses bias and activation after the GEMM; same arithmetic as Linear then Gelu
        var y = Activation == HiddenActivation.Gelu && !Dense.Weight.Value.IsReleased
            ? Functional.LinearGelu(hidden, Dense.Weight.Value, Dense.Bias?.Value)
            : PretrainedModel.Activate(Dense.Forward(hidden), Activation);
        Dense.Forwarded(y);   // the fused GEMM + GELU ran on Dense's behalf
        return Forwarded(y);
    }
}

/// <summary>One post-norm transformer layer: attention block then feed-forward block.</summary>
public sealed class BertLayer : EncoderLayer
{
    public BertAttention Attention { get; }
    public BertIntermediate Intermediate { get; }
    public BertOutput Output { get; }

    internal BertLayer(VarBuilder vb, BertConfig c)
    {
        var init = WeightInit.Normal(c.InitializerRange);
        Attention = RegisterModule("attention", new BertAttention(vb.Push("attention"), c, init));
        Intermediate = RegisterModule("intermediate", new BertIntermediate(vb.Push("intermediate"), c, init));
        Output = RegisterModule("output", new BertOutput(vb.Push("output"), c, init));
    }

    public override (Tensor Hidden, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        var (attn, probs) = Attention.Forward(hidden, additiveMask);
        var y = Output.Forward(Intermediate.Forward(attn), attn);
        return (Forwarded(y), probs);
    }

    internal override EncoderLayerWeights FastWeights() => new(
        PretrainedModel.Dense(Attention.Self.Query), PretrainedModel.Dense(Attention.Self.Key), PretrainedModel.Dense(Attention.Self.Value),
        PretrainedModel.Dense(Attention.Output.Dense), PretrainedModel.Norm(Attention.Output.LayerNorm),
        PretrainedModel.Dense(Intermediate.Dense), PretrainedModel.Dense(Output.Dense), PretrainedModel.Norm(Output.LayerNorm));
}

/// <summary>The bare BERT encoder (HF <c>BertModel</c>): embeddings, <c>encoder.layer.N</c>, optional pooler.</summary>
public sealed class BertModel : TransformerEncoder
{
    /// <summary>The encoder with parameters from <paramref name="vb"/> (a checkpoint, or the initialiser).</summary>
    public BertModel(BertConfig config, VarBuilder vb, bool addPoolingLayer = true)
        : base(vb, config, SpecOf(config), addPoolingLayer, layer => new BertLayer(layer, config)) { }

    /// <summary>A freshly initialised BertModel (normal(0, initializer_range) weights, zero biases, LayerNorm 1/0).</summary>
    public BertModel(BertConfig config, bool addPoolingLayer = true, int seed = 0) : this(config, VarBuilder.Fresh(seed), addPoolingLayer) { }

    public BertConfig Config => (BertConfig)ModelConfig;
    /// <summary>HF's <c>encoder</c> attribute: the layer stack.</summary>
    public EncoderStack Encoder => Stack;

    static EncoderSpec SpecOf(BertConfig c)
    {
        if (c.PositionEmbeddingType != "absolute")
            throw new NotSupportedException($"config.json position_embedding_type = \"{c.PositionEmbeddingType}\" is not supported; only \"absolute\" is.");
        c.CheckSizes();
        return new EncoderSpec("bert", "bert", "BertModel", "encoder", c.VocabSize, c.TypeVocabSize, c.MaxPositionEmbeddings, c.PadTokenId, false,
            c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads, c.NumHiddenLayers, ParseActivation(c.HiddenAct, "hidden_act"), Kernels.AttentionScaling.DivideScores,
            (float)c.LayerNormEps, (float)c.HiddenDropoutProb, c.InitializerRange, SavesPositionIds: true);
    }

    /// <summary>BERT's heads as data (transformers 4.30 modeling_bert.py).</summary>
    internal static HeadSpec HeadFor(HeadKind kind, BertConfig c) => kind switch
    {
        HeadKind.SequenceClassification => new(kind, "BertForSequenceClassification", HeadInput.PoolerOutput, "classifier", c.ClassifierDropout ?? c.HiddenDropoutProb),
        HeadKind.TokenClassification => new(kind, "BertForTokenClassification", HeadInput.Tokens, "classifier", c.ClassifierDropout ?? c.HiddenDropoutProb,
            IgnoredKeys: ["pooler"]),
        _ => new(kind, "BertForMaskedLM", HeadInput.Tokens, "cls.predictions.bias", Dense: "cls.predictions.transform.dense",
            DenseActivation: ParseActivation(c.HiddenAct, "hidden_act"), Norm: "cls.predictions.transform.LayerNorm", NormEps: (float)c.LayerNormEps,
            TiedAliases: new Dictionary<string, string>
            {
                ["cls.predictions.decoder.weight"] = "bert.embeddings.word_embeddings.weight",
                ["cls.predictions.decoder.bias"] = "cls.predictions.bias",
            },
            IgnoredKeys: ["pooler"]),
    };
}

/// <summary>BERT with a linear classifier on the pooled [CLS] output: logits = W·dropout(pooler_output) + b (HF <c>BertForSequenceClassification</c>).</summary>
public sealed class BertForSequenceClassification(BertConfig config, VarBuilder vb)
    : EncoderWithHead(vb, new BertModel(config, vb.Push("bert"), addPoolingLayer: true), BertModel.HeadFor(HeadKind.SequenceClassification, config))
{
    public BertForSequenceClassification(BertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }
    public BertModel Bert => (BertModel)BaseModel;
    public BertConfig Config => Bert.Config;
}

/// <summary>BERT with a per-token linear classifier, no pooler: logits = W·dropout(h) + b (HF <c>BertForTokenClassification</c>).</summary>
public sealed class BertForTokenClassification(BertConfig config, VarBuilder vb)
    : EncoderWithHead(vb, new BertModel(config, vb.Push("bert"), addPoolingLayer: false), BertModel.HeadFor(HeadKind.TokenClassification, config))
{
    public BertForTokenClassification(BertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }
    public BertModel Bert => (BertModel)BaseModel;
    public BertConfig Config => Bert.Config;
}

/// <summary>
/// BERT with the masked-LM head, no pooler (HF <c>BertForMaskedLM</c>): logits = LN(act(W·h + b))·W_wordᵀ + <c>cls.predictions.bias</c>,
/// the decoder weight tied to the word embeddings.
/// </summary>
public sealed class BertForMaskedLM(BertConfig config, VarBuilder vb)
    : EncoderWithHead(vb, new BertModel(config, vb.Push("bert"), addPoolingLayer: false), BertModel.HeadFor(HeadKind.MaskedLM, config))
{
    public BertForMaskedLM(BertConfig config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }
    public BertModel Bert => (BertModel)BaseModel;
    public BertConfig Config => Bert.Config;
}
