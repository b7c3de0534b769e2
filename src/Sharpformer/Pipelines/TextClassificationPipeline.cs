namespace Sharpformer.Pipelines;

/// <summary>
/// Sequence classification (HF <c>pipeline("text-classification")</c>): one score per label for each text or text pair.
/// </summary>
public sealed class TextClassificationPipeline : Pipeline
{
    public TextClassificationPipeline(IPipelineTokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null)
        : base(tokenizer, model, options)
    {
        if (model.Info.Id2Label.Count == 0)
            throw new PipelineInputException("the model has no labels (config id2label is empty); text classification needs a sequence-classification checkpoint.");
    }

    /// <summary>Loads a sequence-classification model and its tokenizer from a directory (or a cached hub id).</summary>
    public static TextClassificationPipeline FromPretrained(string modelDirOrId, PipelineOptions? options = null)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, PipelineTask.TextClassification);
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

    /// <summary>Classifies each input.</summary>
    /// <param name="inputs">Texts or text pairs.</param>
    /// <param name="topK">How many labels to return per input, best first; null = all labels.</param>
    /// <param name="function">Score function applied to the logits.</param>
    /// <param name="sortByScore">False returns every label in label-id order (HF <c>return_all_scores=True</c>); then <paramref name="topK"/> is ignored.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    public IReadOnlyList<IReadOnlyList<LabelScore>> Run(IReadOnlyList<TextInput> inputs, int? topK = 1,
        ClassificationFunction function = ClassificationFunction.Default, bool sortByScore = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (topK is < 1) throw new ArgumentOutOfRangeException(nameof(topK), topK, "topK must be ≥ 1 (or null for all labels).");
        var fn = ResolveFunction(function);
        var logits = Logits(inputs, cancellationToken);
        var results = new IReadOnlyList<LabelScore>[inputs.Count];
        for (int i = 0; i < inputs.Count; i++) results[i] = Postprocess(logits[i], fn, sortByScore ? topK : null, sortByScore);
        return results;
    }

    /// <summary>Classifies one text and returns its <paramref name="topK"/> best labels.</summary>
    public IReadOnlyList<LabelScore> Run(string text, int? topK = 1, ClassificationFunction function = ClassificationFunction.Default) =>
        Run([new TextInput(text)], topK, function)[0];

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
            var rows = new List<(int[], int[])>(count);
            for (int i = start; i < start + count; i++)
            {
                var a = Tokenizer.Tokenize(inputs[i].Text).Ids;
                var b = inputs[i].TextPair is { } p ? Tokenizer.Tokenize(p).Ids : null;
                var (ids, types, truncated, full) = BuildSequence(a, b);
                if (truncated) OnTruncated(new TruncationWarning(i, full, MaxLength));
                rows.Add((ids, types));
            }
            var result = Model.Forward(Pad(rows), new ForwardRequest(), cancellationToken);
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
