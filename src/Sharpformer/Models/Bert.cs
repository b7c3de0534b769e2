using Sharpformer.Checkpoints;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using NnLayerNorm = Sharpformer.Nn.LayerNorm;
using NnEmbedding = Sharpformer.Nn.Embedding;

namespace Sharpformer.Models;

// BERT (Devlin et al. 2019) as Hugging Face transformers 4.30 implements it (models/bert/modeling_bert.py):
// each HF submodule is one class here with the same attribute names, so parameter names equal checkpoint keys.

/// <summary>word + token-type + absolute position embeddings, then LayerNorm and dropout.</summary>
/// <remarks>e = LN((W_word[ids] + W_type[types]) + W_pos[0..S)); the sum order is HF's.</remarks>
public sealed class BertEmbeddings : Module
{
    public NnEmbedding WordEmbeddings { get; }
    public NnEmbedding PositionEmbeddings { get; }
    public NnEmbedding TokenTypeEmbeddings { get; }
    public NnLayerNorm LayerNorm { get; }
    public Dropout Dropout { get; }

    public BertEmbeddings(BertConfig c)
    {
        if (c.PositionEmbeddingType != "absolute")
            throw new NotSupportedException($"config.json position_embedding_type = \"{c.PositionEmbeddingType}\" is not supported; only \"absolute\" is.");
        WordEmbeddings = RegisterModule("word_embeddings", new NnEmbedding(c.VocabSize, c.HiddenSize, c.PadTokenId));
        PositionEmbeddings = RegisterModule("position_embeddings", new NnEmbedding(c.MaxPositionEmbeddings, c.HiddenSize));
        TokenTypeEmbeddings = RegisterModule("token_type_embeddings", new NnEmbedding(c.TypeVocabSize, c.HiddenSize));
        LayerNorm = RegisterModule("LayerNorm", new NnLayerNorm(c.HiddenSize, (float)c.LayerNormEps));
        Dropout = RegisterModule("dropout", new Dropout((float)c.HiddenDropoutProb));
    }

    /// <summary>[batch, seq] ids → [batch, seq, hidden].</summary>
    public Tensor Forward(EncoderInput input)
    {
        int b = input.BatchSize, s = input.SequenceLength;
        var word = WordEmbeddings.Forward(input.InputIds, b, s);
        var type = TokenTypeEmbeddings.Forward(input.TokenTypeIds ?? new int[b * s], b, s);
        var pos = PositionEmbeddings.Forward(Enumerable.Range(0, s).ToArray(), 1, s);
        return Record(Dropout.Forward(LayerNorm.Forward(word.Add(type).Add(pos))));
    }

    Tensor Record(Tensor y) { LastOutputShape = y.ShapeArray; return y; }

    /// <summary>Fast path: writes LN((word + type) + pos) of token rows [row0, row0 + rows) into <paramref name="output"/> [rows, hidden].</summary>
    internal void ForwardInto(EncoderInput input, int row0, int rows, Span<float> temp, Span<float> output)
    {
        int s = input.SequenceLength, h = WordEmbeddings.Weight.Value.Dim(1);
        var word = WordEmbeddings.Weight.Value.AsSpan(); var type = TokenTypeEmbeddings.Weight.Value.AsSpan(); var pos = PositionEmbeddings.Weight.Value.AsSpan();
        var types = input.TokenTypeIds;
        for (int t = row0; t < row0 + rows; t++)
        {
            var dst = temp.Slice((t - row0) * h, h);
            System.Numerics.Tensors.TensorPrimitives.Add(word.Slice(input.InputIds[t] * h, h), type.Slice((types?[t] ?? 0) * h, h), dst);
            System.Numerics.Tensors.TensorPrimitives.Add(dst, pos.Slice(t % s * h, h), dst);
        }
        var ln = PretrainedModel.Norm(LayerNorm);
        Kernels.LayerNorm.Forward(temp.Slice(0, rows * h), ln.Weight.Span, ln.Bias.Span, output, rows, h, ln.Eps);
    }
}

/// <summary>Multi-head scaled dot-product self-attention (query/key/value projections).</summary>
/// <remarks>P = softmax(Q·Kᵀ/√d + M) with M = (1 − mask)·float32.min per key; context = P·V, heads concatenated.</remarks>
public sealed class BertSelfAttention : Module
{
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    public Dropout Dropout { get; }
    public int NumHeads { get; }

    public BertSelfAttention(BertConfig c)
    {
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new ArgumentException($"config.json hidden_size {c.HiddenSize} is not a multiple of num_attention_heads {c.NumAttentionHeads}.");
        NumHeads = c.NumAttentionHeads;
        Query = RegisterModule("query", new Linear(c.HiddenSize, c.HiddenSize));
        Key = RegisterModule("key", new Linear(c.HiddenSize, c.HiddenSize));
        Value = RegisterModule("value", new Linear(c.HiddenSize, c.HiddenSize));
        Dropout = RegisterModule("dropout", new Dropout((float)c.AttentionProbsDropoutProb));
    }

    /// <summary>hidden [B, S, H], additive mask [B, 1, 1, S] or null → (context [B, S, H], probabilities [B, heads, S, S]).</summary>
    public (Tensor Context, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        // Fused: Q·Kᵀ/√d, mask, softmax, dropout and ·V in one op that keeps one [B, heads, S, S] buffer for the backward
        // (the unfused chain kept six). 1/√d multiplies inside the GEMM: exact for powers of four such as d = 64.
        var r = Functional.Attention(Query.Forward(hidden), Key.Forward(hidden), Value.Forward(hidden), NumHeads, additiveMask,
            Dropout.P, Dropout.Training, Dropout.Rng, returnProbabilities: true);
        var context = r.Context;
        var probs = r.Probabilities!;
        LastOutputShape = context.ShapeArray;
        return (context, probs);
    }
}

/// <summary>Attention output projection, dropout, residual and LayerNorm: LN(dropout(W·x + b) + input).</summary>
public sealed class BertSelfOutput : Module
{
    public Linear Dense { get; }
    public NnLayerNorm LayerNorm { get; }
    public Dropout Dropout { get; }

    public BertSelfOutput(BertConfig c)
    {
        Dense = RegisterModule("dense", new Linear(c.HiddenSize, c.HiddenSize));
        LayerNorm = RegisterModule("LayerNorm", new NnLayerNorm(c.HiddenSize, (float)c.LayerNormEps));
        Dropout = RegisterModule("dropout", new Dropout((float)c.HiddenDropoutProb));
    }

    public Tensor Forward(Tensor hidden, Tensor input)
    {
        var y = LayerNorm.Forward(Dropout.Forward(Dense.Forward(hidden)).Add(input));
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>Self-attention plus its output block.</summary>
public sealed class BertAttention : Module
{
    public BertSelfAttention Self { get; }
    public BertSelfOutput Output { get; }

    public BertAttention(BertConfig c)
    {
        Self = RegisterModule("self", new BertSelfAttention(c));
        Output = RegisterModule("output", new BertSelfOutput(c));
    }

    public (Tensor Output, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        var (context, probs) = Self.Forward(hidden, additiveMask);
        var y = Output.Forward(context, hidden);
        LastOutputShape = y.ShapeArray;
        return (y, probs);
    }
}

/// <summary>First feed-forward layer and activation: act(W₁·x + b₁).</summary>
public sealed class BertIntermediate : Module
{
    public Linear Dense { get; }
    public HiddenActivation Activation { get; }

    public BertIntermediate(BertConfig c)
    {
        Dense = RegisterModule("dense", new Linear(c.HiddenSize, c.IntermediateSize));
        Activation = PretrainedModel.ParseActivation(c.HiddenAct, "hidden_act");
    }

    public Tensor Forward(Tensor hidden)
    {
        // exact GELU (BERT's default) fuses bias and activation after the GEMM; same arithmetic as Linear then Gelu
        var y = Activation == HiddenActivation.Gelu
            ? Functional.LinearGelu(hidden, Dense.Weight.Value, Dense.Bias?.Value)
            : PretrainedModel.Activate(Dense.Forward(hidden), Activation);
        Dense.LastOutputShape = y.ShapeArray;
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>Second feed-forward layer, dropout, residual and LayerNorm: LN(dropout(W₂·x + b₂) + input).</summary>
public sealed class BertOutput : Module
{
    public Linear Dense { get; }
    public NnLayerNorm LayerNorm { get; }
    public Dropout Dropout { get; }

    public BertOutput(BertConfig c)
    {
        Dense = RegisterModule("dense", new Linear(c.IntermediateSize, c.HiddenSize));
        LayerNorm = RegisterModule("LayerNorm", new NnLayerNorm(c.HiddenSize, (float)c.LayerNormEps));
        Dropout = RegisterModule("dropout", new Dropout((float)c.HiddenDropoutProb));
    }

    public Tensor Forward(Tensor hidden, Tensor input)
    {
        var y = LayerNorm.Forward(Dropout.Forward(Dense.Forward(hidden)).Add(input));
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>One post-norm transformer layer: attention block then feed-forward block.</summary>
public sealed class BertLayer : Module
{
    public BertAttention Attention { get; }
    public BertIntermediate Intermediate { get; }
    public BertOutput Output { get; }

    public BertLayer(BertConfig c)
    {
        Attention = RegisterModule("attention", new BertAttention(c));
        Intermediate = RegisterModule("intermediate", new BertIntermediate(c));
        Output = RegisterModule("output", new BertOutput(c));
    }

    public (Tensor Hidden, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        var (attn, probs) = Attention.Forward(hidden, additiveMask);
        var y = Output.Forward(Intermediate.Forward(attn), attn);
        LastOutputShape = y.ShapeArray;
        return (y, probs);
    }

    internal EncoderLayerWeights FastWeights() => new(
        PretrainedModel.Dense(Attention.Self.Query), PretrainedModel.Dense(Attention.Self.Key), PretrainedModel.Dense(Attention.Self.Value),
        PretrainedModel.Dense(Attention.Output.Dense), PretrainedModel.Norm(Attention.Output.LayerNorm),
        PretrainedModel.Dense(Intermediate.Dense), PretrainedModel.Dense(Output.Dense), PretrainedModel.Norm(Output.LayerNorm));
}

/// <summary>The stack of <see cref="BertLayer"/>s, named <c>layer.0</c> … <c>layer.{N−1}</c>.</summary>
public sealed class BertEncoder : Module
{
    public IReadOnlyList<BertLayer> Layer { get; }

    public BertEncoder(BertConfig c)
    {
        Layer = RegisterModule("layer", new ModuleList<BertLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new BertLayer(c))));
    }

    /// <summary>Runs every layer; collects each layer's output and attention probabilities when asked.</summary>
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

/// <summary>tanh(W·h[:, 0] + b): the [CLS] representation used by the sequence classifier.</summary>
public sealed class BertPooler : Module
{
    public Linear Dense { get; }

    public BertPooler(BertConfig c) => Dense = RegisterModule("dense", new Linear(c.HiddenSize, c.HiddenSize));

    public Tensor Forward(Tensor hidden)
    {
        var y = Dense.Forward(hidden.Select(1, 0)).Tanh();
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>The bare BERT encoder (HF <c>BertModel</c>).</summary>
public sealed class BertModel : PretrainedModel, IEncoderModel
{
    public BertConfig Config { get; }
    public BertEmbeddings Embeddings { get; }
    public BertEncoder Encoder { get; }
    public BertPooler? Pooler { get; }
    readonly HiddenActivation _act;

    /// <summary>A freshly initialised BertModel (normal(0, initializer_range) weights, zero biases, LayerNorm 1/0).</summary>
    public BertModel(BertConfig config, bool addPoolingLayer = true, int seed = 0) : this(config, addPoolingLayer, initialise: true)
        => ModelInit.Init(this, config.InitializerRange, seed);

    /// <summary>The encoder inside a head model, initialised by the head.</summary>
    internal BertModel(BertConfig config, bool addPoolingLayer, bool initialise)
    {
        Config = config;
        Embeddings = RegisterModule("embeddings", new BertEmbeddings(config));
        Encoder = RegisterModule("encoder", new BertEncoder(config));
        if (addPoolingLayer) Pooler = RegisterModule("pooler", new BertPooler(config));
        _act = ParseActivation(config.HiddenAct, "hidden_act");
    }

    public override string ModelType => "bert";
    public override string Architecture => "BertModel";
    public override string BaseModelPrefix => "bert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);
    protected internal override IEnumerable<CheckpointTensor> ExtraSavedTensors() => [PositionIdsBuffer("embeddings.position_ids", Config.MaxPositionEmbeddings)];

    internal static CheckpointTensor PositionIdsBuffer(string name, int n)
    {
        // transformers 4.30 saves the persistent position_ids buffer (int64 [1, max_positions]); writing it keeps files byte-identical.
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        return CheckpointTensor.FromInt64(name, ids, 1, n);
    }

    /// <summary>
    /// Runs the encoder. In eval mode inside <see cref="Autograd.NoGrad"/> this takes the kernel fast path (reused
    /// buffers, no autograd state); otherwise the autograd path, with dropout active in training mode.
    /// </summary>
    public EncoderOutput Forward(EncoderInput input, ForwardOptions? options = null)
    {
        options ??= ForwardOptions.Default;
        CheckInput(input, Config.VocabSize, Config.TypeVocabSize, Config.MaxPositionEmbeddings);
        return UseFastPath ? ForwardFast(input, options) : ForwardAutograd(input, options);
    }

    EncoderOutput ForwardAutograd(EncoderInput input, ForwardOptions options)
    {
        var hidden = Embeddings.Forward(input);
        var mask = AdditiveMask(input);
        var states = options.OutputHiddenStates ? new List<Tensor> { hidden } : null;
        var attentions = options.OutputAttentions ? new List<Tensor>() : null;
        hidden = Encoder.Forward(hidden, mask, states, attentions);
        LastOutputShape = hidden.ShapeArray;
        return new EncoderOutput(hidden, Pooler?.Forward(hidden), states, attentions);
    }

    /// <summary>[B, 1, 1, S]: 0 for tokens, float32 min for padding — HF's <c>(1 − mask)·finfo.min</c>; null without a mask.</summary>
    internal static Tensor? AdditiveMask(EncoderInput input)
    {
        if (input.AttentionMask == null) return null;
        var m = new float[input.TokenCount];
        EncoderFastPath.BuildMask(input.AttentionMask, m, m.Length);
        return Tensor.FromArray(m, input.BatchSize, 1, 1, input.SequenceLength);
    }

    EncoderOutput ForwardFast(EncoderInput input, ForwardOptions options)
    {
        int b = input.BatchSize, s = input.SequenceLength, h = Config.HiddenSize, heads = Config.NumAttentionHeads;
        var layers = Encoder.Layer.Select(l => l.FastWeights()).ToArray();
        var shape = new EncoderShape(h, Config.IntermediateSize, heads, _act, AttentionScaling.DivideScores);
        var ws = RentWorkspace();
        float[] last; float[][]? states, attentions;
        try
        {
            (last, states, attentions) = EncoderFastPath.Run(input, options, shape, layers,
                (row0, rows, temp, output) => Embeddings.ForwardInto(input, row0, rows, temp, output), ws);
        }
        finally { ReturnWorkspace(ws); }
        Tensor? pooled = null;
        if (Pooler != null)
        {
            var cls = new float[b * h];
            for (int i = 0; i < b; i++) last.AsSpan(i * s * h, h).CopyTo(cls.AsSpan(i * h, h));
            var p = new float[b * h];
            EncoderFastPath.Dense(cls, b, Dense(Pooler.Dense), p, 0);
            Activations.Tanh(p, p);
            pooled = Tensor.FromArray(p, b, h);
        }
        return new EncoderOutput(Tensor.FromArray(last, b, s, h), pooled,
            states?.Select(a => Tensor.FromArray(a, b, s, h)).ToArray(), attentions?.Select(a => Tensor.FromArray(a, b, heads, s, s)).ToArray());
    }
}
/// <summary>BERT with a linear classifier on the pooled [CLS] output (HF <c>BertForSequenceClassification</c>).</summary>
public sealed class BertForSequenceClassification : PretrainedModel, ISequenceClassificationModel
{
    public BertModel Bert { get; }
    public Dropout Dropout { get; }
    public Linear Classifier { get; }
    public int NumLabels { get; }

    public BertForSequenceClassification(BertConfig config, int seed = 0)
    {
        NumLabels = config.NumLabels;
        Bert = RegisterModule("bert", new BertModel(config, addPoolingLayer: true, initialise: false));
        Dropout = RegisterModule("dropout", new Dropout((float)(config.ClassifierDropout ?? config.HiddenDropoutProb)));
        Classifier = RegisterModule("classifier", new Linear(config.HiddenSize, NumLabels));
        ModelInit.Init(this, config.InitializerRange, seed);
    }

    public BertConfig Config => Bert.Config;
    public override string ModelType => "bert";
    public override string Architecture => "BertForSequenceClassification";
    public override string BaseModelPrefix => "bert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);
    protected internal override IEnumerable<CheckpointTensor> ExtraSavedTensors() => [BertModel.PositionIdsBuffer("bert.embeddings.position_ids", Config.MaxPositionEmbeddings)];

    /// <summary>logits = W·dropout(pooler_output) + b; loss by <see cref="HeadLosses.Sequence"/> when labels are given.</summary>
    public SequenceClassifierOutput Forward(EncoderInput input, SequenceLabels? labels = null, ForwardOptions? options = null)
    {
        var enc = Bert.Forward(input, options);
        var logits = Classifier.Forward(Dropout.Forward(enc.PoolerOutput!));
        LastOutputShape = logits.ShapeArray;
        return new SequenceClassifierOutput(logits, labels == null ? null : HeadLosses.Sequence(logits, labels, NumLabels, Config.ProblemType), enc);
    }
}

/// <summary>BERT with a per-token linear classifier (HF <c>BertForTokenClassification</c>, no pooler).</summary>
public sealed class BertForTokenClassification : PretrainedModel, ITokenClassificationModel
{
    public BertModel Bert { get; }
    public Dropout Dropout { get; }
    public Linear Classifier { get; }
    public int NumLabels { get; }

    public BertForTokenClassification(BertConfig config, int seed = 0)
    {
        NumLabels = config.NumLabels;
        Bert = RegisterModule("bert", new BertModel(config, addPoolingLayer: false, initialise: false));
        Dropout = RegisterModule("dropout", new Dropout((float)(config.ClassifierDropout ?? config.HiddenDropoutProb)));
        Classifier = RegisterModule("classifier", new Linear(config.HiddenSize, NumLabels));
        ModelInit.Init(this, config.InitializerRange, seed);
    }

    public BertConfig Config => Bert.Config;
    public override string ModelType => "bert";
    public override string Architecture => "BertForTokenClassification";
    public override string BaseModelPrefix => "bert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);
    protected internal override bool IsIgnoredUnexpected(string key) => base.IsIgnoredUnexpected(key) || key.Contains("pooler", StringComparison.Ordinal);
    protected internal override IEnumerable<CheckpointTensor> ExtraSavedTensors() => [BertModel.PositionIdsBuffer("bert.embeddings.position_ids", Config.MaxPositionEmbeddings)];

    /// <summary>logits[b, s] = W·dropout(h[b, s]) + b; cross-entropy over labels ≠ −100 when given.</summary>
    public TokenClassifierOutput Forward(EncoderInput input, int[]? labels = null, ForwardOptions? options = null)
    {
        var enc = Bert.Forward(input, options);
        var logits = Classifier.Forward(Dropout.Forward(enc.LastHiddenState));
        LastOutputShape = logits.ShapeArray;
        return new TokenClassifierOutput(logits, labels == null ? null : HeadLosses.Token(logits, labels, input), enc);
    }
}

/// <summary>MLM head transform: LN(act(W·h + b)) (HF <c>BertPredictionHeadTransform</c>).</summary>
public sealed class BertPredictionHeadTransform : Module
{
    public Linear Dense { get; }
    public NnLayerNorm LayerNorm { get; }
    public HiddenActivation Activation { get; }

    public BertPredictionHeadTransform(BertConfig c)
    {
        Dense = RegisterModule("dense", new Linear(c.HiddenSize, c.HiddenSize));
        LayerNorm = RegisterModule("LayerNorm", new NnLayerNorm(c.HiddenSize, (float)c.LayerNormEps));
        Activation = PretrainedModel.ParseActivation(c.HiddenAct, "hidden_act");
    }

    public Tensor Forward(Tensor hidden)
    {
        var y = LayerNorm.Forward(PretrainedModel.Activate(Dense.Forward(hidden), Activation));
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>
/// MLM prediction head (HF <c>cls.predictions</c>): logits = transform(h)·W_wordᵀ + bias, the decoder weight tied to the
/// word embeddings and the decoder bias being <c>cls.predictions.bias</c>.
/// </summary>
public sealed class BertLMPredictionHead : Module
{
    public BertPredictionHeadTransform Transform { get; }
    public Parameter Bias { get; }
    readonly Parameter _decoderWeight;

    public BertLMPredictionHead(BertConfig c, Parameter wordEmbeddings)
    {
        Transform = RegisterModule("transform", new BertPredictionHeadTransform(c));
        Bias = RegisterParameter("bias", Tensor.Zeros(c.VocabSize));
        _decoderWeight = wordEmbeddings;
    }

    public Tensor Forward(Tensor hidden)
    {
        var y = Functional.Linear(Transform.Forward(hidden), _decoderWeight.Value, Bias.Value);
        LastOutputShape = y.ShapeArray;
        return y;
    }
}

/// <summary>HF's <c>BertOnlyMLMHead</c>: the attribute level that puts "predictions" into the key names.</summary>
public sealed class BertOnlyMLMHead : Module
{
    public BertLMPredictionHead Predictions { get; }

    public BertOnlyMLMHead(BertConfig c, Parameter wordEmbeddings) => Predictions = RegisterModule("predictions", new BertLMPredictionHead(c, wordEmbeddings));
}

/// <summary>BERT with the masked-language-model head (HF <c>BertForMaskedLM</c>, no pooler).</summary>
public sealed class BertForMaskedLM : PretrainedModel, IMaskedLMModel
{
    public BertModel Bert { get; }
    public BertOnlyMLMHead Cls { get; }

    public BertForMaskedLM(BertConfig config, int seed = 0)
    {
        Bert = RegisterModule("bert", new BertModel(config, addPoolingLayer: false, initialise: false));
        Cls = RegisterModule("cls", new BertOnlyMLMHead(config, Bert.Embeddings.WordEmbeddings.Weight));
        ModelInit.Init(this, config.InitializerRange, seed);
    }

    public BertConfig Config => Bert.Config;
    public override string ModelType => "bert";
    public override string Architecture => "BertForMaskedLM";
    public override string BaseModelPrefix => "bert";
    public override int VocabSize => Config.VocabSize;
    public override ModelConfig ModelConfig => Config;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override string ConfigJson() => AutoModel.ConfigJson(Config, Architecture);
    protected internal override bool IsIgnoredUnexpected(string key) => base.IsIgnoredUnexpected(key) || key.Contains("pooler", StringComparison.Ordinal);
    protected internal override IEnumerable<CheckpointTensor> ExtraSavedTensors() => [BertModel.PositionIdsBuffer("bert.embeddings.position_ids", Config.MaxPositionEmbeddings)];

    protected internal override IReadOnlyDictionary<string, string> TiedAliases { get; } = new Dictionary<string, string>
    {
        ["cls.predictions.decoder.weight"] = "bert.embeddings.word_embeddings.weight",
        ["cls.predictions.decoder.bias"] = "cls.predictions.bias",
    };

    /// <summary>logits [B, S, vocab]; cross-entropy over labels ≠ −100 when given.</summary>
    public MaskedLMOutput Forward(EncoderInput input, int[]? labels = null, ForwardOptions? options = null)
    {
        var enc = Bert.Forward(input, options);
        var logits = Cls.Predictions.Forward(enc.LastHiddenState);
        LastOutputShape = logits.ShapeArray;
        return new MaskedLMOutput(logits, labels == null ? null : HeadLosses.Token(logits, labels, input), enc);
    }
}
