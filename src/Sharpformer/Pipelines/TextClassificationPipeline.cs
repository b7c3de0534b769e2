using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>Per-call choices of <see cref="TextClassificationPipeline.Run(string, TextClassificationOptions?, CancellationToken)"/>.</summary>
public sealed record TextClassificationOptions
{
    /// <summary>How many labels to return per input, best first; null = all labels.</summary>
    public int? TopK { get; init; } = 1;
    /// <summary>Score function applied to the logits.</summary>
    public ClassificationFunction Function { get; init; } = ClassificationFunction.Default;
    /// <summary>False returns every label in label-id order (HF <c>return_all_scores=True</c>); then <see cref="TopK"/> is ignored.</summary>
    public bool SortByScore { get; init; } = true;
}

/// <summary>
/// Sequence classification (HF <c>pipeline("text-classification")</c>): one score per label for each text or text pair.
/// </summary>
public sealed class TextClassificationPipeline : Pipeline
{
    public TextClassificationPipeline(ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null)
        : base(tokenizer, model, options)
    {
        if (model.Info.Id2Label.Count == 0)
            throw new PipelineInputException("the model has no labels (config id2label is empty); text classification needs a sequence-classification checkpoint.");
    }

    /// <summary>Loads a sequence-classification model and its tokenizer from a directory (or a cached hub id).</summary>
    public static TextClassificationPipeline FromPretrained(string modelDirOrId, PipelineOptions? options = null)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, PipelineTask.TextClassification, options?.Execution);
        return new TextClassificationPipeline(tokenizer, model, options);
    }

    /// <summary>The labels in id order.</summary>
    public IReadOnlyList<string> Labels => Model.Info.Id2Label;

    /// <summary>HF's default function: sigmoid for multi-label or single-output models, softmax otherwise.</summary>
    public ClassificationFunction ResolveFunction(ClassificationFunction function)
    {
        if (function != ClassificationFunction.Default) return function;
        var info = Model.Info;
        if (info.ProblemType == "multi_label_classification" || info.Id2Label.Count == 1) return ClassificationFunction.Sigmoid;
        if (info.ProblemType == "single_label_classification" || info.Id2Label.Count > 1) return ClassificationFunction.Softmax;
        return ClassificationFunction.None;
    }

    /// <summary>Classifies one text: its labels with scores, best first (<see cref="TextClassificationOptions.TopK"/> of them).</summary>
    public IReadOnlyList<LabelScore> Run(string text, TextClassificationOptions? options = null, CancellationToken cancellationToken = default) =>
        Run([new TextInput(text)], options, cancellationToken)[0];

    /// <summary>Classifies each text; element i is what <c>Run(texts[i])</c> returns.</summary>
    public IReadOnlyList<IReadOnlyList<LabelScore>> Run(IReadOnlyList<string> texts, TextClassificationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return Run(texts.Select(t => new TextInput(t)).ToList(), options, cancellationToken);
    }

    /// <summary>Classifies each text or text pair.</summary>
    public IReadOnlyList<IReadOnlyList<LabelScore>> Run(IReadOnlyList<TextInput> inputs, TextClassificationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        options ??= new TextClassificationOptions();
        if (options.TopK is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "TopK must be ≥ 1 (or null for all labels).");
        var fn = ResolveFunction(options.Function);
        var logits = Logits(inputs, cancellationToken);
        var results = new IReadOnlyList<LabelScore>[inputs.Count];
        for (int i = 0; i < inputs.Count; i++) results[i] = Postprocess(logits[i], fn, options.SortByScore ? options.TopK : null, options.SortByScore);
        return results;
    }

    /// <summary>Classifies each input; the same as passing a <see cref="TextClassificationOptions"/>.</summary>
    public IReadOnlyList<IReadOnlyList<LabelScore>> Run(IReadOnlyList<TextInput> inputs, int? topK,
        ClassificationFunction function = ClassificationFunction.Default, bool sortByScore = true, CancellationToken cancellationToken = default) =>
        Run(inputs, new TextClassificationOptions { TopK = topK, Function = function, SortByScore = sortByScore }, cancellationToken);

    /// <summary>The raw logits per input (preprocess + forward).</summary>
    public float[][] Logits(IReadOnlyList<TextInput> inputs, CancellationToken cancellationToken = default)
    {
        for (int i = 0; i < inputs.Count; i++)
        {
            Validate(inputs[i]?.Text, i);
            if (inputs[i].TextPair is { } pair) Validate(pair, i, "text_pair");
        }
        var output = new float[inputs.Count][];
        int c = Labels.Count;
        ForEachChunk(inputs.Count, (start, count) =>
        {
            var rows = Enumerable.Range(start, count).Select(i => Encode(inputs[i].Text, inputs[i].TextPair, i)).ToList();
            var result = Model.Forward(Collate(rows), new ForwardRequest(), cancellationToken);
            var logits = result.Logits ?? throw new InvalidOperationException("the model returned no logits; it is not a sequence-classification model.");
            if (result.LogitsShape is not [var bsz, var nl] || bsz != count || nl != c)
                throw new InvalidOperationException($"sequence-classification logits have shape [{string.Join(", ", result.LogitsShape)}]; expected [{count}, {c}].");
            for (int r = 0; r < count; r++) output[start + r] = logits.AsSpan(r * c, c).ToArray();
        }, cancellationToken);
        return output;
    }

    /// <summary>HF <c>TextClassificationPipeline.postprocess</c> over one row of logits.</summary>
    public IReadOnlyList<LabelScore> Postprocess(ReadOnlySpan<float> logits, ClassificationFunction function, int? topK, bool sortByScore = true)
    {
        var scores = Scores.Apply(ResolveFunction(function), logits);
        var all = new List<LabelScore>(scores.Length);
        for (int k = 0; k < scores.Length; k++) all.Add(new LabelScore(Labels[k], scores[k]));
        if (!sortByScore) return all;
        // Stable sort: equal scores keep label-id order, as Python's sort does.
        var sorted = all.Select((s, k) => (s, k)).OrderByDescending(t => t.s.Score).ThenBy(t => t.k).Select(t => t.s).ToList();
        return topK is { } n && n < sorted.Count ? sorted.GetRange(0, n) : sorted;
    }
}
