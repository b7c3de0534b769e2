using Sharpformer.Nn;
using Sharpformer.Tensors;
using NnLayerNorm = Sharpformer.Nn.LayerNorm;

namespace Sharpformer.Models;

/// <summary>What a head predicts, and so which loss it takes.</summary>
public enum HeadKind
{
    /// <summary>One row of logits per sequence [B, num_labels]; loss by config.problem_type (<see cref="HeadLosses.Sequence"/>).</summary>
    SequenceClassification,
    /// <summary>Logits per token [B, S, num_labels]; cross-entropy over labels ≠ −100.</summary>
    TokenClassification,
    /// <summary>Vocabulary logits per token [B, S, vocab] through the word embeddings (tied decoder); cross-entropy over labels ≠ −100.</summary>
    MaskedLM,
}

/// <summary>Which encoder output a head reads.</summary>
public enum HeadInput
{
    /// <summary>The pooler's tanh(W·h[:, 0] + b) (BERT sequence classification).</summary>
    PoolerOutput,
    /// <summary>The last hidden state of the first token, h[:, 0] (DistilBERT sequence classification).</summary>
    FirstToken,
    /// <summary>Every token's last hidden state.</summary>
    Tokens,
}

/// <summary>
/// A task head as data: x = input; x = act(Dense(x)) when <paramref name="Dense"/> is set; x = LN(x) when <paramref name="Norm"/>
/// is set; x = dropout(x); logits = Output(x), where Output is a linear classifier to num_labels or, for
/// <see cref="HeadKind.MaskedLM"/>, x·W_wordᵀ + bias with the decoder weight tied to the word embeddings.
/// Module names are HF's dotted paths, so parameter names equal checkpoint keys.
/// </summary>
/// <param name="Kind">What the head predicts; chooses the loss.</param>
/// <param name="Input">Which encoder output the head reads.</param>
/// <param name="Architecture">HF class name written to config.json, e.g. "BertForSequenceClassification".</param>
/// <param name="Output">Path of the classifier ("classifier") or, for masked LM, of the output bias ("cls.predictions.bias").</param>
/// <param name="Dropout">Dropout before the output (0: none).</param>
/// <param name="Dense">Path of a hidden → hidden projection before the output ("pre_classifier", "cls.predictions.transform.dense").</param>
/// <param name="DenseActivation">The activation after <paramref name="Dense"/>.</param>
/// <param name="Norm">Path of a LayerNorm after the projection ("cls.predictions.transform.LayerNorm").</param>
/// <param name="NormEps">Its epsilon.</param>
/// <param name="TiedAliases">Checkpoint keys that alias a parameter (alias → parameter name), e.g. the MLM decoder weight.</param>
/// <param name="IgnoredKeys">Substrings of unused checkpoint keys dropped silently (HF's <c>_keys_to_ignore_on_load_unexpected</c>).</param>
public sealed record HeadSpec(
    HeadKind Kind, string Architecture, HeadInput Input, string Output, double Dropout = 0,
    string? Dense = null, HiddenActivation DenseActivation = HiddenActivation.Relu, string? Norm = null, float NormEps = 1e-12f,
    IReadOnlyDictionary<string, string>? TiedAliases = null, IReadOnlyList<string>? IgnoredKeys = null);

/// <summary>
/// A BERT-family encoder under its base prefix plus a head built from a <see cref="HeadSpec"/>. The HF head classes
/// (BertForSequenceClassification, …) are this with their family's encoder and spec.
/// </summary>
public abstract class EncoderWithHead : PretrainedModel
{
    private protected EncoderWithHead(VarBuilder vb, TransformerEncoder encoder, HeadSpec head)
    {
        Head = head;
        BaseModel = RegisterModule(encoder.Spec.BasePrefix, encoder);
        var spec = encoder.Spec;
        int outputs = head.Kind == HeadKind.MaskedLM ? spec.VocabSize : ModelConfig.NumLabels;
        if (head.Dense is { } dense) HeadDense = Add(dense, new Linear(vb.Push(dense), spec.Hidden, spec.Hidden, spec.Init));
        if (head.Norm is { } norm) HeadNorm = Add(norm, new NnLayerNorm(vb.Push(norm), spec.Hidden, head.NormEps));
        if (head.Dropout > 0) HeadDropout = Add("dropout", new Dropout((float)head.Dropout));
        if (head.Kind == HeadKind.MaskedLM)
        {
            var (scope, leaf) = ScopeOf(head.Output);
            var bias = vb.Get(head.Output, [outputs], WeightInit.Zeros);
            OutputBias = scope == null ? RegisterParameter(leaf, bias) : scope.Parameter(leaf, bias);
            foreach (var (alias, target) in head.TiedAliases ?? new Dictionary<string, string>()) vb.Tie(alias, target);
        }
        else Classifier = Add(head.Output, new Linear(vb.Push(head.Output), spec.Hidden, outputs, spec.Init));
    }

    public override TransformerEncoder BaseModel { get; }
    public override HeadSpec Head { get; }
    public override ModelConfig ModelConfig => BaseModel.ModelConfig;
    public override string Architecture => Head.Architecture;
    public int NumLabels => ModelConfig.NumLabels;

    /// <summary>The projection before the output (<see cref="HeadSpec.Dense"/>), if any.</summary>
    public Linear? HeadDense { get; }
    /// <summary>The LayerNorm after the projection (<see cref="HeadSpec.Norm"/>), if any.</summary>
    public NnLayerNorm? HeadNorm { get; }
    public Dropout? HeadDropout { get; }
    /// <summary>The linear classifier (classification heads).</summary>
    public Linear? Classifier { get; }
    /// <summary>The vocabulary bias of a masked-LM head; its weight is the word embedding matrix.</summary>
    public Parameter? OutputBias { get; }

    /// <summary>Runs encoder and head; the loss when <paramref name="labels"/> are given (class ids per sequence or per token, −100 ignored).</summary>
    public override ModelOutput Run(EncoderInput input, ForwardOptions? options = null, SequenceLabels? labels = null)
    {
        using var scope = ExecutionScope.Enter(Execution);
        var enc = BaseModel.Forward(input, options);
        var x = Head.Input switch
        {
            HeadInput.PoolerOutput => enc.PoolerOutput ?? throw new InvalidOperationException($"{Architecture} reads the pooler, but its encoder has none."),
            HeadInput.FirstToken => enc.LastHiddenState.Select(1, 0),
            _ => enc.LastHiddenState,
        };
        var logits = HeadLogits(x);
        return new ModelOutput(Forwarded(logits), labels == null ? null : Loss(logits, labels, input), enc);
    }

    // The head on rows of hidden states: [..., H] → [..., outputs]. Per row, so it may run on a subset of the tokens.
    Tensor HeadLogits(Tensor x)
    {
        if (HeadDense != null) x = Activate(HeadDense.Forward(x), Head.DenseActivation);
        if (HeadNorm != null) x = HeadNorm.Forward(x);
        if (HeadDropout != null) x = HeadDropout.Forward(x);
        return Classifier?.Forward(x) ?? Functional.Linear(x, BaseModel.Embeddings.WordEmbeddings.Weight.Value, OutputBias!.Value);
    }

    /// <summary>
    /// Masked-LM loss with the head run only at the labelled positions: the encoder over the whole batch, then the rows whose
    /// label is not −100 gathered into [M, H] and sent through the head to vocabulary logits [M, V]; the loss is their mean
    /// cross-entropy — the value <see cref="Run"/> gives with the same labels, without the logits of the ~85 % of positions
    /// that carry no label (with a 16 k vocabulary those dominate the cost of a small model's step).
    /// </summary>
    /// <param name="input">The (masked) batch.</param>
    /// <param name="labels">[B·S] target ids, −100 where nothing is predicted.</param>
    /// <returns>The mean loss (NaN when no position is labelled, as torch), the logits of the labelled positions in row-major
    /// order, and those positions (flat indices into [B·S]).</returns>
    public (Tensor Loss, Tensor Logits, int[] Positions) RunMaskedLM(EncoderInput input, int[] labels)
    {
        if (Head.Kind != HeadKind.MaskedLM) throw new NotSupportedException($"{Architecture} has no masked-LM head; RunMaskedLM needs one (e.g. BertForMaskedLM).");
        ArgumentNullException.ThrowIfNull(labels);
        int h = BaseModel.Spec.Hidden, vocab = BaseModel.Spec.VocabSize;
        HeadLosses.CheckTokenLabels(labels, vocab, input);
        using var scope = ExecutionScope.Enter(Execution);
        var enc = BaseModel.Forward(input);
        var positions = new List<int>();
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] != HeadLosses.IgnoreIndex) positions.Add(i);
        if (positions.Count == 0) return (Tensor.Scalar(float.NaN), Tensor.Zeros(0, vocab), []);
        var rows = enc.LastHiddenState.Reshape(-1, h).IndexSelect(0, [.. positions]);
        var logits = Forwarded(HeadLogits(rows));
        var targets = positions.Select(p => labels[p]).ToArray();
        return (Losses.CrossEntropy(logits, targets), logits, [.. positions]);
    }

    Tensor Loss(Tensor logits, SequenceLabels labels, EncoderInput input)
    {
        if (Head.Kind == HeadKind.SequenceClassification) return HeadLosses.Sequence(logits, labels, NumLabels, ModelConfig.ProblemType);
        if (labels is not SequenceLabels.ClassIds ids)
            throw new ModelInputException($"{Architecture} takes one class id per token (−100 = ignored), not float targets.");
        return HeadLosses.Token(logits, ids.Ids, input);
    }

    protected internal override bool IsIgnoredUnexpected(string key) =>
        base.IsIgnoredUnexpected(key) || (Head.IgnoredKeys ?? []).Any(k => key.Contains(k, StringComparison.Ordinal));

    protected internal override IReadOnlyDictionary<string, string> TiedAliases => Head.TiedAliases ?? base.TiedAliases;

    T Add<T>(string path, T module) where T : Module
    {
        var (scope, leaf) = ScopeOf(path);
        return scope == null ? RegisterModule(leaf, module) : scope.Child(leaf, module);
    }

    /// <summary>The container module of a dotted path's parent ("cls.predictions" for "cls.predictions.bias"), created on first use; null for the model itself.</summary>
    (Scope? Scope, string Leaf) ScopeOf(string path)
    {
        var parts = path.Split('.');
        Scope? scope = null;
        foreach (var part in parts[..^1])
            scope = (scope?.NamedChildren() ?? NamedChildren()).FirstOrDefault(c => c.Name == part).Module as Scope
                ?? (scope == null ? RegisterModule(part, new Scope()) : scope.Child(part, new Scope()));
        return (scope, parts[^1]);
    }

    /// <summary>A container module that only gives HF's nesting to head parameters (<c>cls</c>, <c>predictions</c>, <c>transform</c>).</summary>
    sealed class Scope : Module
    {
        public T Child<T>(string name, T module) where T : Module => RegisterModule(name, module);
        public Parameter Parameter(string name, Tensor value) => RegisterParameter(name, value);
    }
}
