using Sharpformer.Nn;
using Sharpformer.Tensors;
using NnLayerNorm = Sharpformer.Nn.LayerNorm;
using NnEmbedding = Sharpformer.Nn.Embedding;

namespace Sharpformer.Models;

// DistilBERT (Sanh et al. 2019) as transformers 4.30 implements it (models/distilbert/modeling_distilbert.py).
// Same post-norm encoder as BERT but no token types and no pooler, queries scaled before the product, and
// padded keys masked with masked_fill(mask == 0, finfo.min).

/// <summary>word + position embeddings, LayerNorm (ε = 1e-12), dropout: e = LN(W_word[ids] + W_pos[0..S)).</summary>
public sealed class DistilBertEmbeddings : Module
{
    public NnEmbedding WordEmbeddings { get; }
    public NnEmbedding PositionEmbeddings { get; }
    public NnLayerNorm LayerNorm { get; }
    public Dropout Dropout { get; }

    public DistilBertEmbeddings(DistilBertConfig c)
    {
        WordEmbeddings = RegisterModule("word_embeddings", new NnEmbedding(c.VocabSize, c.Dim, c.PadTokenId));
        PositionEmbeddings = RegisterModule("position_embeddings", new NnEmbedding(c.MaxPositionEmbeddings, c.Dim));
        LayerNorm = RegisterModule("LayerNorm", new NnLayerNorm(c.Dim, 1e-12f));
        Dropout = RegisterModule("dropout", new Dropout((float)c.Dropout));
    }

    public Tensor Forward(EncoderInput input)
    {
        int b = input.BatchSize, s = input.SequenceLength;
        var word = WordEmbeddings.Forward(input.InputIds, b, s);
        var pos = PositionEmbeddings.Forward(Enumerable.Range(0, s).ToArray(), 1, s);
        var y = Dropout.Forward(LayerNorm.Forward(word.Add(pos)));
        LastOutputShape = y.ShapeArray;
        return y;
    }

    /// <summary>Fast path: LN(word + pos) of token rows [row0, row0 + rows) into <paramref name="output"/> [rows, dim].</summary>
    internal void ForwardInto(EncoderInput input, int row0, int rows, Span<float> temp, Span<float> output)
    {
        int s = input.SequenceLength, h = WordEmbeddings.Weight.Value.Dim(1);
        var word = WordEmbeddings.Weight.Value.AsSpan(); var pos = PositionEmbeddings.Weight.Value.AsSpan();
        for (int t = row0; t < row0 + rows; t++)
            System.Numerics.Tensors.TensorPrimitives.Add(word.Slice(input.InputIds[t] * h, h), pos.Slice(t % s * h, h), temp.Slice((t - row0) * h, h));
        var ln = PretrainedModel.Norm(LayerNorm);
        Kernels.LayerNorm.Forward(temp.Slice(0, rows * h), ln.Weight.Span, ln.Bias.Span, output, rows, h, ln.Eps);
    }
}

/// <summary>Multi-head self-attention: P = softmax(masked_fill((Q/√d)·Kᵀ, mask = 0, float32.min)); out = W_o·(P·V) + b_o.</summary>
public sealed class MultiHeadSelfAttention : Module
{
    public Linear QLin { get; }
    public Linear KLin { get; }
    public Linear VLin { get; }
    public Linear OutLin { get; }
    public Dropout Dropout { get; }
    public int NumHeads { get; }

    public MultiHeadSelfAttention(DistilBertConfig c)
    {
        if (c.Dim % c.NHeads != 0) throw new ArgumentException($"config.json dim {c.Dim} is not a multiple of n_heads {c.NHeads}.");
        NumHeads = c.NHeads;
        QLin = RegisterModule("q_lin", new Linear(c.Dim, c.Dim));
        KLin = RegisterModule("k_lin", new Linear(c.Dim, c.Dim));
        VLin = RegisterModule("v_lin", new Linear(c.Dim, c.Dim));
        OutLin = RegisterModule("out_lin", new Linear(c.Dim, c.Dim));
        Dropout = RegisterModule("dropout", new Dropout((float)c.AttentionDropout));
    }

    /// <summary>hidden [B, S, D], additive mask [B, 1, 1, S] (0 / float32 min) or null → (output [B, S, D], probabilities [B, heads, S, S]).</summary>
    /// <remarks>Adding float32 min to a finite score rounds to float32 min, exactly what masked_fill writes.</remarks>
    public (Tensor Output, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        int b = hidden.Dim(0), s = hidden.Dim(1), dim = hidden.Dim(2), d = dim / NumHeads;
        Tensor Heads(Linear l) => l.Forward(hidden).Reshape(b, s, NumHeads, d).Permute(0, 2, 1, 3);
        var q = Heads(QLin).Div(MathF.Sqrt(d)); var k = Heads(KLin); var v = Heads(VLin);
        var scores = q.MatMul(k.Transpose(-1, -2));
        if (additiveMask != null) scores = scores.Add(additiveMask);
        var probs = scores.Softmax(-1);
        var context = Dropout.Forward(probs).MatMul(v).Permute(0, 2, 1, 3).Contiguous().Reshape(b, s, dim);
        var y = OutLin.Forward(context);
        LastOutputShape = y.ShapeArray;
        return (y, probs);
    }
}

/// <summary>Position-wise feed-forward: dropout(W₂·act(W₁·x + b₁) + b₂).</summary>
public sealed class FFN : Module
{
    public Linear Lin1 { get; }
    public Linear Lin2 { get; }
    public Dropout Dropout { get; }
    public HiddenActivation Activation { get; }

    public FFN(DistilBertConfig c)
    {
        Lin1 = RegisterModule("lin1", new Linear(c.Dim, c.HiddenDim));
        Lin2 = RegisterModule("lin2", new Linear(c.HiddenDim, c.Dim));
        Dropout = RegisterModule("dropout", new Dropout((float)c.Dropout));
        Activation = PretrainedModel.ParseActivation(c.Activation, "activation");
    }

    public Tensor Forward(Tensor x)
    {
        var y = Dropout.Forward(Lin2.Forward(PretrainedModel.Activate(Lin1.Forward(x), Activation)));
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>Post-norm block: a = LN_sa(Attn(x) + x); y = LN_out(FFN(a) + a).</summary>
public sealed class TransformerBlock : Module
{
    public MultiHeadSelfAttention Attention { get; }
    public NnLayerNorm SaLayerNorm { get; }
    public FFN Ffn { get; }
    public NnLayerNorm OutputLayerNorm { get; }

    public TransformerBlock(DistilBertConfig c)
    {
        Attention = RegisterModule("attention", new MultiHeadSelfAttention(c));
        SaLayerNorm = RegisterModule("sa_layer_norm", new NnLayerNorm(c.Dim, 1e-12f));
        Ffn = RegisterModule("ffn", new FFN(c));
        OutputLayerNorm = RegisterModule("output_layer_norm", new NnLayerNorm(c.Dim, 1e-12f));
    }

    public (Tensor Hidden, Tensor Probabilities) Forward(Tensor x, Tensor? additiveMask)
    {
        var (sa, probs) = Attention.Forward(x, additiveMask);
        sa = SaLayerNorm.Forward(sa.Add(x));
        var y = OutputLayerNorm.Forward(Ffn.Forward(sa).Add(sa));
        LastOutputShape = y.ShapeArray;
        return (y, probs);
    }

    internal EncoderLayerWeights FastWeights() => new(
        PretrainedModel.Dense(Attention.QLin), PretrainedModel.Dense(Attention.KLin), PretrainedModel.Dense(Attention.VLin),
        PretrainedModel.Dense(Attention.OutLin), PretrainedModel.Norm(SaLayerNorm),
        PretrainedModel.Dense(Ffn.Lin1), PretrainedModel.Dense(Ffn.Lin2), PretrainedModel.Norm(OutputLayerNorm));
}

/// <summary>The stack of <see cref="TransformerBlock"/>s, named <c>layer.0</c> … .</summary>
public sealed class Transformer : Module
{
    public IReadOnlyList<TransformerBlock> Layer { get; }

    public Transformer(DistilBertConfig c)
    {
        Layer = RegisterModule("layer", new ModuleList<TransformerBlock>(Enumerable.Range(0, c.NLayers).Select(_ => new TransformerBlock(c))));
    }

    /// <summary>Runs every block; collects each block's output and attention probabilities when asked.</summary>
    public Tensor Forward(Tensor hidden, Tensor? additiveMask, List<Tensor>? hiddenStates, List<Tensor>? attentions)
    {
        foreach (var layer in Layer)
        {
            (hidden, var probs) = layer.Forward(hidden, additiveMask);
            hiddenStates?.Add(hidden);
            attentions?.Add(probs);
        }
        LastOutputShape = hidden.ShapeArray;
        return hidden;
    }
}

/// <summary>The bare DistilBERT encoder (HF <c>DistilBertModel</c>).</summary>
public sealed class DistilBertModel : PretrainedModel, IEncoderModel
{
    public DistilBertConfig Config { get; }
    public DistilBertEmbeddings Embeddings { get; }
    public Transformer Transformer { get; }
    readonly HiddenActivation _act;

    /// <summary>A freshly initialised DistilBertModel.</summary>
    public DistilBertModel(DistilBertConfig config, int seed = 0) : this(config, initialise: true)
        => ModelInit.Init(this, config.InitializerRange, seed, config.SinusoidalPosEmbds);

    internal DistilBertModel(DistilBertConfig config, bool initialise)
    {
        Config = config;
        Embeddings = RegisterModule("embeddings", new DistilBertEmbeddings(config));
        Transformer = RegisterModule("transformer", new Transformer(config));
        _act = ParseActivation(config.Activation, "activation");
    }

    public override string ModelType => "distilbert";
    public override string Architecture => "DistilBertModel";
    public override string BaseModelPrefix => "distilbert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);

    /// <summary>Runs the encoder; kernel fast path in eval mode under <see cref="Autograd.NoGrad"/>, autograd path otherwise.</summary>
    public EncoderOutput Forward(EncoderInput input, ForwardOptions? options = null)
    {
        options ??= ForwardOptions.Default;
        CheckInput(input, Config.VocabSize, int.MaxValue, Config.MaxPositionEmbeddings);
        if (input.TokenTypeIds is { } tt && tt.Any(t => t != 0))
            throw new ModelInputException("DistilBERT has no token type embeddings, but token_type_ids other than 0 were given; drop them (the DistilBERT tokenizer does not return them).");
        return UseFastPath ? ForwardFast(input, options) : ForwardAutograd(input, options);
    }

    EncoderOutput ForwardAutograd(EncoderInput input, ForwardOptions options)
    {
        var hidden = Embeddings.Forward(input);
        var mask = BertModel.AdditiveMask(input);
        var states = options.OutputHiddenStates ? new List<Tensor> { hidden } : null;
        var attentions = options.OutputAttentions ? new List<Tensor>() : null;
        hidden = Transformer.Forward(hidden, mask, states, attentions);
        LastOutputShape = hidden.ShapeArray;
        return new EncoderOutput(hidden, null, states, attentions);
    }

    EncoderOutput ForwardFast(EncoderInput input, ForwardOptions options)
    {
        int b = input.BatchSize, s = input.SequenceLength, h = Config.Dim, heads = Config.NHeads;
        var layers = Transformer.Layer.Select(l => l.FastWeights()).ToArray();
        var shape = new EncoderShape(h, Config.HiddenDim, heads, _act, AttentionScaling.ScaleQueries);
        var ws = RentWorkspace();
        float[] last; float[][]? states, attentions;
        try
        {
            (last, states, attentions) = EncoderFastPath.Run(input, options, shape, layers,
                (row0, rows, temp, output) => Embeddings.ForwardInto(input, row0, rows, temp, output), ws);
        }
        finally { ReturnWorkspace(ws); }
        return new EncoderOutput(Tensor.FromArray(last, b, s, h), null,
            states?.Select(a => Tensor.FromArray(a, b, s, h)).ToArray(), attentions?.Select(a => Tensor.FromArray(a, b, heads, s, s)).ToArray());
    }
}

/// <summary>DistilBERT sequence classifier: logits = W_c·dropout(relu(W_p·h[:, 0] + b_p)) + b_c (HF <c>DistilBertForSequenceClassification</c>).</summary>
public sealed class DistilBertForSequenceClassification : PretrainedModel, ISequenceClassificationModel
{
    public DistilBertModel DistilBert { get; }
    public Linear PreClassifier { get; }
    public Linear Classifier { get; }
    public Dropout Dropout { get; }
    public int NumLabels { get; }

    public DistilBertForSequenceClassification(DistilBertConfig config, int seed = 0)
    {
        NumLabels = config.NumLabels;
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, initialise: false));
        PreClassifier = RegisterModule("pre_classifier", new Linear(config.Dim, config.Dim));
        Classifier = RegisterModule("classifier", new Linear(config.Dim, NumLabels));
        Dropout = RegisterModule("dropout", new Dropout((float)config.SeqClassifDropout));
        ModelInit.Init(this, config.InitializerRange, seed, config.SinusoidalPosEmbds);
    }

    public DistilBertConfig Config => DistilBert.Config;
    public override string ModelType => "distilbert";
    public override string Architecture => "DistilBertForSequenceClassification";
    public override string BaseModelPrefix => "distilbert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);

    public SequenceClassifierOutput Forward(EncoderInput input, SequenceLabels? labels = null, ForwardOptions? options = null)
    {
        var enc = DistilBert.Forward(input, options);
        var pooled = Dropout.Forward(PreClassifier.Forward(enc.LastHiddenState.Select(1, 0)).Relu());
        var logits = Classifier.Forward(pooled);
        LastOutputShape = logits.ShapeArray;
        return new SequenceClassifierOutput(logits, labels == null ? null : HeadLosses.Sequence(logits, labels, NumLabels, Config.ProblemType), enc);
    }
}

/// <summary>DistilBERT token classifier: logits = W·dropout(h) + b (HF <c>DistilBertForTokenClassification</c>).</summary>
public sealed class DistilBertForTokenClassification : PretrainedModel, ITokenClassificationModel
{
    public DistilBertModel DistilBert { get; }
    public Dropout Dropout { get; }
    public Linear Classifier { get; }
    public int NumLabels { get; }

    public DistilBertForTokenClassification(DistilBertConfig config, int seed = 0)
    {
        NumLabels = config.NumLabels;
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, initialise: false));
        Dropout = RegisterModule("dropout", new Dropout((float)config.Dropout));
        Classifier = RegisterModule("classifier", new Linear(config.Dim, NumLabels));
        ModelInit.Init(this, config.InitializerRange, seed, config.SinusoidalPosEmbds);
    }

    public DistilBertConfig Config => DistilBert.Config;
    public override string ModelType => "distilbert";
    public override string Architecture => "DistilBertForTokenClassification";
    public override string BaseModelPrefix => "distilbert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);

    public TokenClassifierOutput Forward(EncoderInput input, int[]? labels = null, ForwardOptions? options = null)
    {
        var enc = DistilBert.Forward(input, options);
        var logits = Classifier.Forward(Dropout.Forward(enc.LastHiddenState));
        LastOutputShape = logits.ShapeArray;
        return new TokenClassifierOutput(logits, labels == null ? null : HeadLosses.Token(logits, labels, input), enc);
    }
}

/// <summary>
/// DistilBERT MLM: logits = LN(act(W_t·h + b_t))·W_wordᵀ + b_p (HF <c>DistilBertForMaskedLM</c>; <c>vocab_projector.weight</c> is tied to the word embeddings).
/// </summary>
public sealed class DistilBertForMaskedLM : PretrainedModel, IMaskedLMModel
{
    public DistilBertModel DistilBert { get; }
    public Linear VocabTransform { get; }
    public NnLayerNorm VocabLayerNorm { get; }
    /// <summary><c>vocab_projector.bias</c>; the projector's weight is the word embedding matrix.</summary>
    public Parameter VocabProjectorBias { get; }
    readonly HiddenActivation _act;

    public DistilBertForMaskedLM(DistilBertConfig config, int seed = 0)
    {
        DistilBert = RegisterModule("distilbert", new DistilBertModel(config, initialise: false));
        VocabTransform = RegisterModule("vocab_transform", new Linear(config.Dim, config.Dim));
        VocabLayerNorm = RegisterModule("vocab_layer_norm", new NnLayerNorm(config.Dim, 1e-12f));
        VocabProjectorBias = RegisterModule("vocab_projector", new BiasOnly(config.VocabSize)).Bias;
        _act = ParseActivation(config.Activation, "activation");
        ModelInit.Init(this, config.InitializerRange, seed, config.SinusoidalPosEmbds);
    }

    public DistilBertConfig Config => DistilBert.Config;
    public override string ModelType => "distilbert";
    public override string Architecture => "DistilBertForMaskedLM";
    public override string BaseModelPrefix => "distilbert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);

    protected internal override IReadOnlyDictionary<string, string> TiedAliases { get; } = new Dictionary<string, string>
    {
        ["vocab_projector.weight"] = "distilbert.embeddings.word_embeddings.weight",
    };

    public MaskedLMOutput Forward(EncoderInput input, int[]? labels = null, ForwardOptions? options = null)
    {
        var enc = DistilBert.Forward(input, options);
        var x = VocabLayerNorm.Forward(Activate(VocabTransform.Forward(enc.LastHiddenState), _act));
        var logits = Functional.Linear(x, DistilBert.Embeddings.WordEmbeddings.Weight.Value, VocabProjectorBias.Value);
        LastOutputShape = logits.ShapeArray;
        return new MaskedLMOutput(logits, labels == null ? null : HeadLosses.Token(logits, labels, input), enc);
    }

    /// <summary>Holds a projector's bias whose weight is tied elsewhere, so the key is <c>vocab_projector.bias</c>.</summary>
    sealed class BiasOnly : Module
    {
        public Parameter Bias { get; }
        public BiasOnly(int n) => Bias = RegisterParameter("bias", Tensor.Zeros(n));
    }
}
