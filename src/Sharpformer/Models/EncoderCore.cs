using System.Globalization;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using NnEmbedding = Sharpformer.Nn.Embedding;
using NnLayerNorm = Sharpformer.Nn.LayerNorm;

namespace Sharpformer.Models;

// The one encoder core of the BERT family. A family file (Bert.cs, DistilBert.cs) contributes only what differs: its
// config → EncoderSpec mapping and its post-norm layer module under HF's names. Embeddings, the layer loop, the mask,
// hidden-state/attention collection, the pooler and the fast/autograd dispatch live here once.

/// <summary>A BERT-family encoder as data: sizes, naming and numerics that differ between families.</summary>
/// <remarks>
/// StackName is the HF attribute of the layer stack ("encoder" in BERT, "transformer" in DistilBERT); TypeVocabSize is null
/// when the family has no token-type table (DistilBERT); SavesPositionIds: transformers 4.30 saves BERT's
/// <c>embeddings.position_ids</c> buffer, so it is written for byte-identical files.
/// </remarks>
internal sealed record EncoderSpec(
    string ModelType, string BasePrefix, string Architecture, string StackName,
    int VocabSize, int? TypeVocabSize, int MaxPositions, int? PadTokenId, bool SinusoidalPositions,
    int Hidden, int Intermediate, int Heads, int Layers, HiddenActivation Activation, AttentionScaling Scaling,
    float LayerNormEps, float HiddenDropout, double InitializerRange, bool SavesPositionIds)
{
    public EncoderShape Shape => new(Hidden, Intermediate, Heads, Activation, Scaling);
    public WeightInit Init => WeightInit.Normal(InitializerRange);
}

/// <summary>
/// Self-attention of the BERT family: query/key/value projections under the family's HF names, the one attention op with the
/// family's scaling, and — where HF keeps it in the same module (DistilBERT's <c>out_lin</c>) — the output projection.
/// BERT keeps its output projection in <c>attention.output.dense</c> (BertSelfOutput), so it passes no output name.
/// </summary>
public abstract class EncoderSelfAttention : Module
{
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    /// <summary>The output projection when it belongs to this module (DistilBERT), else null (BERT).</summary>
    public Linear? Out { get; }
    public Dropout Dropout { get; }
    public int NumHeads { get; }
    public AttentionScaling Scaling { get; }

    // names: HF attribute names of the query, key, value and (or null) output projections; sizeKeys: the config.json keys of
    // hidden and heads, for the error
    private protected EncoderSelfAttention(VarBuilder vb, int hidden, int heads, double dropout, WeightInit init, AttentionScaling scaling,
        (string Query, string Key, string Value, string? Out) names, (string Hidden, string Heads) sizeKeys)
    {
        if (hidden % heads != 0) throw new ArgumentException($"config.json {sizeKeys.Hidden} {hidden} is not a multiple of {sizeKeys.Heads} {heads}.");
        NumHeads = heads; Scaling = scaling;
        Linear Projection(string name) => RegisterModule(name, new Linear(vb.Push(name), hidden, hidden, init));
        Query = Projection(names.Query);
        Key = Projection(names.Key);
        Value = Projection(names.Value);
        if (names.Out is { } o) Out = Projection(o);
        Dropout = RegisterModule("dropout", new Dropout((float)dropout));
    }

    /// <summary>hidden [B, S, H], additive mask [B, 1, 1, S] (0 / float32 min) or null → (context, or its output projection, [B, S, H]; probabilities [B, heads, S, S]).</summary>
    /// <remarks>Fused: Q·Kᵀ scaling, mask, softmax, dropout and ·V in one op that keeps only row statistics for the backward.
    /// Adding float32 min to a finite score rounds to float32 min, exactly what DistilBERT's masked_fill writes.</remarks>
    public (Tensor Output, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask)
    {
        var r = Functional.Attention(Query.Forward(hidden), Key.Forward(hidden), Value.Forward(hidden), NumHeads, additiveMask,
            Dropout.P, Dropout.Training, Dropout.Rng, returnProbabilities: true, scaling: Scaling);
        var y = Out is null ? r.Context : Out.Forward(r.Context);
        return (Forwarded(y), r.Probabilities!);
    }
}

/// <summary>A post-norm encoder layer of one family (BertLayer, TransformerBlock): autograd forward plus its weights for the fast path.</summary>
public abstract class EncoderLayer : Module
{
    /// <summary>hidden [B, S, H], additive mask [B, 1, 1, S] or null → (hidden [B, S, H], attention probabilities [B, heads, S, S]).</summary>
    public abstract (Tensor Hidden, Tensor Probabilities) Forward(Tensor hidden, Tensor? additiveMask);

    internal abstract EncoderLayerWeights FastWeights();
}

/// <summary>The layer stack (HF's BertEncoder / DistilBERT's Transformer), layers named <c>layer.0</c> … <c>layer.{N−1}</c>.</summary>
public sealed class EncoderStack : Module
{
    internal EncoderStack(VarBuilder vb, int layers, Func<VarBuilder, EncoderLayer> create)
    {
        var list = vb.Push("layer");
        Layer = RegisterModule("layer", new ModuleList<EncoderLayer>(
            Enumerable.Range(0, layers).Select(i => create(list.Push(i.ToString(CultureInfo.InvariantCulture))))));
    }

    public ModuleList<EncoderLayer> Layer { get; }
}

/// <summary>word + (token type) + absolute position embeddings, LayerNorm, dropout (BERT and DistilBERT embeddings).</summary>
/// <remarks>e = LN((W_word[ids] + W_type[types]) + W_pos[0..S)); the sum order is HF's. DistilBERT has no type table.</remarks>
public sealed class EncoderEmbeddings : Module
{
    internal EncoderEmbeddings(VarBuilder vb, EncoderSpec s)
    {
        WordEmbeddings = RegisterModule("word_embeddings", new NnEmbedding(vb.Push("word_embeddings"), s.VocabSize, s.Hidden, s.Init, s.PadTokenId));
        PositionEmbeddings = RegisterModule("position_embeddings", new NnEmbedding(vb.Push("position_embeddings"), s.MaxPositions, s.Hidden,
            s.SinusoidalPositions ? WeightInit.Sinusoidal(s.MaxPositions, s.Hidden) : s.Init));
        if (s.TypeVocabSize is int types)
            TokenTypeEmbeddings = RegisterModule("token_type_embeddings", new NnEmbedding(vb.Push("token_type_embeddings"), types, s.Hidden, s.Init));
        LayerNorm = RegisterModule("LayerNorm", new NnLayerNorm(vb.Push("LayerNorm"), s.Hidden, s.LayerNormEps));
        Dropout = RegisterModule("dropout", new Dropout(s.HiddenDropout));
    }

    public NnEmbedding WordEmbeddings { get; }
    public NnEmbedding PositionEmbeddings { get; }
    public NnEmbedding? TokenTypeEmbeddings { get; }
    public NnLayerNorm LayerNorm { get; }
    public Dropout Dropout { get; }

    /// <summary>[batch, seq] ids → [batch, seq, hidden].</summary>
    public Tensor Forward(EncoderInput input)
    {
        int b = input.BatchSize, s = input.SequenceLength;
        var x = WordEmbeddings.Forward(input.InputIds, b, s);
        if (TokenTypeEmbeddings != null) x = x.Add(TokenTypeEmbeddings.Forward(input.TokenTypeIds ?? new int[b * s], b, s));
        x = x.Add(PositionEmbeddings.Forward(Enumerable.Range(0, s).ToArray(), 1, s));
        var y = Dropout.Forward(LayerNorm.Forward(x));
        return Forwarded(y);
    }

    /// <summary>Fast path: writes the embeddings of token rows [row0, row0 + rows) into <paramref name="output"/> [rows, hidden].</summary>
    internal void ForwardInto(EncoderInput input, int row0, int rows, Span<float> temp, Span<float> output, int threads)
    {
        int s = input.SequenceLength, h = WordEmbeddings.Dim;
        var word = WordEmbeddings.Weight.Value.AsSpan(); var pos = PositionEmbeddings.Weight.Value.AsSpan();
        var type = TokenTypeEmbeddings is { } tt ? tt.Weight.Value.AsSpan() : default;
        var types = input.TokenTypeIds;
        for (int t = row0; t < row0 + rows; t++)
        {
            var dst = temp.Slice((t - row0) * h, h);
            var w = word.Slice(input.InputIds[t] * h, h);
            if (type.IsEmpty) w.CopyTo(dst);
            else System.Numerics.Tensors.TensorPrimitives.Add(w, type.Slice((types?[t] ?? 0) * h, h), dst);
            System.Numerics.Tensors.TensorPrimitives.Add(dst, pos.Slice(t % s * h, h), dst);
        }
        var ln = PretrainedModel.Norm(LayerNorm);
        Kernels.LayerNorm.Forward(temp.Slice(0, rows * h), ln.Weight.Span, ln.Bias.Span, output, rows, h, ln.Eps, threads: threads);
    }
}

/// <summary>tanh(W·h[:, 0] + b): the [CLS] representation BERT's sequence classifier reads (HF <c>BertPooler</c>).</summary>
public sealed class EncoderPooler : Module
{
    internal EncoderPooler(VarBuilder vb, EncoderSpec s) => Dense = RegisterModule("dense", new Linear(vb.Push("dense"), s.Hidden, s.Hidden, s.Init));

    public Linear Dense { get; }

    public Tensor Forward(Tensor hidden)
    {
        var y = Dense.Forward(hidden.Select(1, 0)).Tanh();
        return Forwarded(y);
    }
}

/// <summary>
/// The bare encoder of the BERT family (HF <c>BertModel</c>, <c>DistilBertModel</c>): embeddings, the layer stack and an
/// optional pooler, and the one forward. In eval mode inside <see cref="Autograd.NoGrad"/> it runs the kernel fast path
/// (reused buffers, no autograd state); otherwise the module path, with dropout active in training mode.
/// </summary>
public abstract class TransformerEncoder : PretrainedModel
{
    readonly EncoderSpec _spec;
    EncoderWorkspace? _workspace;

    private protected TransformerEncoder(VarBuilder vb, ModelConfig config, EncoderSpec spec, bool addPoolingLayer, Func<VarBuilder, EncoderLayer> layer)
    {
        _spec = spec;
        ModelConfig = config;
        Embeddings = RegisterModule("embeddings", new EncoderEmbeddings(vb.Push("embeddings"), spec));
        Stack = RegisterModule(spec.StackName, new EncoderStack(vb.Push(spec.StackName).Quantizable(), spec.Layers, layer));
        if (addPoolingLayer) Pooler = RegisterModule("pooler", new EncoderPooler(vb.Push("pooler"), spec));
    }

    internal EncoderSpec Spec => _spec;
    public EncoderEmbeddings Embeddings { get; }
    /// <summary>The layers (HF attribute <c>encoder</c> in BERT, <c>transformer</c> in DistilBERT).</summary>
    public EncoderStack Stack { get; }
    public EncoderPooler? Pooler { get; }

    public override TransformerEncoder BaseModel => this;
    public override ModelConfig ModelConfig { get; }
    public override string Architecture => _spec.Architecture;

    /// <summary>Runs the encoder; see the class remarks for which path runs.</summary>
    public EncoderOutput Forward(EncoderInput input, ForwardOptions? options = null)
    {
        options ??= ForwardOptions.Default;
        CheckInput(input);
        using var scope = ExecutionScope.Enter(Execution);
        return !Training && !Autograd.IsEnabled ? ForwardFast(input, options) : ForwardAutograd(input, options);
    }

    public override ModelOutput Run(EncoderInput input, ForwardOptions? options = null, SequenceLabels? labels = null)
    {
        if (labels != null) throw new ModelInputException($"{Architecture} has no head, so it takes no labels; load a *For… head model to compute a loss.");
        return new ModelOutput(null, null, Forward(input, options));
    }

    EncoderOutput ForwardAutograd(EncoderInput input, ForwardOptions options)
    {
        var hidden = Embeddings.Forward(input);
        var mask = AdditiveMask(input);
        var states = options.OutputHiddenStates ? new List<Tensor> { hidden } : null;
        var attentions = options.OutputAttentions ? new List<Tensor>() : null;
        foreach (var layer in Stack.Layer)
        {
            (hidden, var probs) = layer.Forward(hidden, mask);
            states?.Add(hidden);
            attentions?.Add(probs);
        }
        Stack.Forwarded(hidden);   // the layer loop above is the stack's forward
        return new EncoderOutput(Forwarded(hidden), Pooler?.Forward(hidden), states, attentions);
    }

    /// <summary>[B, 1, 1, S]: 0 for tokens, float32 min for padding — HF's <c>(1 − mask)·finfo.min</c>; null without a mask.</summary>
    static Tensor? AdditiveMask(EncoderInput input)
    {
        if (input.AttentionMask == null) return null;
        var m = new float[input.TokenCount];
        EncoderFastPath.BuildMask(input.AttentionMask, m, m.Length);
        return Tensor.FromArray(m, input.BatchSize, 1, 1, input.SequenceLength);
    }

    EncoderOutput ForwardFast(EncoderInput input, ForwardOptions options)
    {
        int b = input.BatchSize, s = input.SequenceLength, h = _spec.Hidden, heads = _spec.Heads;
        var layers = Stack.Layer.Select(l => l.FastWeights()).ToArray();
        // One forward holds the workspace at a time; a concurrent one gets its own.
        var ws = Interlocked.Exchange(ref _workspace, null) ?? new EncoderWorkspace();
        float[] last; float[][]? states, attentions;
        int threads = ExecutionScope.Threads;
        try
        {
            (last, states, attentions) = EncoderFastPath.Run(input, options, _spec.Shape, layers,
                (row0, rows, temp, output, th) => Embeddings.ForwardInto(input, row0, rows, temp, output, th), ws, threads);
        }
        finally { _workspace = ws; }
        Tensor? pooled = null;
        if (Pooler != null)
        {
            var cls = new float[b * h];
            for (int i = 0; i < b; i++) last.AsSpan(i * s * h, h).CopyTo(cls.AsSpan(i * h, h));
            var p = new float[b * h];
            EncoderFastPath.Dense(cls, b, Dense(Pooler.Dense), p, threads);
            Activations.Tanh(p, p);
            pooled = Tensor.FromArray(p, b, h);
        }
        return new EncoderOutput(Tensor.FromArray(last, b, s, h), pooled,
            states?.Select(a => Tensor.FromArray(a, b, s, h)).ToArray(), attentions?.Select(a => Tensor.FromArray(a, b, heads, s, s)).ToArray());
    }

    /// <summary>Validates ids against the embedding tables and the sequence length against the position table.</summary>
    void CheckInput(EncoderInput input)
    {
        if (input.SequenceLength > _spec.MaxPositions)
            throw new ModelInputException($"Sequence length {input.SequenceLength} exceeds max_position_embeddings = {_spec.MaxPositions}; truncate the input (tokenizer max_length).");
        var ids = input.InputIds;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)_spec.VocabSize)
                throw new ModelInputException($"input_ids[{i / input.SequenceLength}][{i % input.SequenceLength}] = {ids[i]} is outside the vocabulary of {_spec.VocabSize} tokens; the tokenizer does not match the model.");
        if (input.TokenTypeIds is not { } tt) return;
        int types = _spec.TypeVocabSize ?? 1;
        for (int i = 0; i < tt.Length; i++)
            if ((uint)tt[i] >= (uint)types)
                throw new ModelInputException(_spec.TypeVocabSize is null
                    ? $"{_spec.Architecture} has no token type embeddings, but token_type_ids other than 0 were given; drop them (its tokenizer does not return them)."
                    : $"token_type_ids[{i / input.SequenceLength}][{i % input.SequenceLength}] = {tt[i]} is outside type_vocab_size = {types}.");
    }
}
