namespace Sharpformer.Pipelines;

/// <summary>Per-call choices of <see cref="TokenClassificationPipeline.Run(string, TokenClassificationOptions?, CancellationToken)"/>.</summary>
public sealed record TokenClassificationOptions
{
    /// <summary>How token predictions are merged into entities (not <see cref="AggregationStrategy.None"/>: use <see cref="TokenClassificationPipeline.RunTokens(string, CancellationToken)"/>).</summary>
    public AggregationStrategy Aggregation { get; init; } = AggregationStrategy.Simple;
}

/// <summary>
/// Token classification / NER (HF <c>pipeline("token-classification")</c>) with transformers 4.30's aggregation rules
/// and character offsets into the original text.
/// </summary>
/// <remarks>
/// Texts longer than the model's maximum are cut into overlapping windows of <c>MaxLength − 2</c> word pieces that
/// advance by <c>MaxLength − 2 − Stride</c>; each piece keeps the scores of the window in which it sits farthest
/// from an edge (most context on both sides), and aggregation then runs over the whole text as if it had fit.
/// </remarks>
public sealed class TokenClassificationPipeline : Pipeline
{
    public TokenClassificationPipeline(IPipelineTokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null,
        int? stride = null, IReadOnlyCollection<string>? ignoreLabels = null)
        : base(tokenizer, model, options)
    {
        if (model.Info.Id2Label.Count == 0)
            throw new PipelineInputException("the model has no labels (config id2label is empty); token classification needs a token-classification checkpoint.");
        int window = MaxLength - 2;
        Stride = stride ?? window / 4;
        if (Stride < 0 || Stride >= window)
            throw new ArgumentOutOfRangeException(nameof(stride), Stride, $"stride (overlap between windows) must be in [0, {window}).");
        IgnoreLabels = ignoreLabels ?? TokenAggregation.DefaultIgnoreLabels;
    }

    /// <summary>Loads a token-classification model and its tokenizer from a directory (or a cached hub id).</summary>
    public static TokenClassificationPipeline FromPretrained(string modelDirOrId, PipelineOptions? options = null, int? stride = null)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, PipelineTask.TokenClassification, options?.Execution);
        return new TokenClassificationPipeline(tokenizer, model, options, stride);
    }

    /// <summary>Word pieces shared by consecutive windows of a long text.</summary>
    public int Stride { get; }
    /// <summary>Labels dropped from results (HF default ["O"]).</summary>
    public IReadOnlyCollection<string> IgnoreLabels { get; }
    public IReadOnlyList<string> Labels => Model.Info.Id2Label;

    /// <summary>Entities of one text, in text order.</summary>
    public IReadOnlyList<TokenEntity> Run(string text, TokenClassificationOptions? options = null, CancellationToken cancellationToken = default) =>
        Run([text], options, cancellationToken)[0];

    /// <summary>Entities per text; element i is what <c>Run(texts[i])</c> returns.</summary>
    public IReadOnlyList<IReadOnlyList<TokenEntity>> Run(IReadOnlyList<string> texts, TokenClassificationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var strategy = (options ?? new TokenClassificationOptions()).Aggregation;
        if (strategy == AggregationStrategy.None)
            throw new ArgumentException("AggregationStrategy.None returns one prediction per token: call RunTokens.", nameof(options));
        return PreEntities(texts, cancellationToken).Select(p => (IReadOnlyList<TokenEntity>)TokenAggregation.Entities(p, strategy, Labels, IgnoreLabels)).ToList();
    }

    /// <summary>Entities per text, aggregated with <paramref name="strategy"/>; the same as passing a <see cref="TokenClassificationOptions"/>.</summary>
    public IReadOnlyList<IReadOnlyList<TokenEntity>> Run(IReadOnlyList<string> texts, AggregationStrategy strategy, CancellationToken cancellationToken = default) =>
        Run(texts, new TokenClassificationOptions { Aggregation = strategy }, cancellationToken);

    /// <summary>Entities of one text, aggregated with <paramref name="strategy"/>.</summary>
    public IReadOnlyList<TokenEntity> Run(string text, AggregationStrategy strategy, CancellationToken cancellationToken = default) =>
        Run([text], strategy, cancellationToken)[0];

    /// <summary>One prediction per non-ignored token of one text (HF <c>aggregation_strategy="none"</c>).</summary>
    public IReadOnlyList<TokenPrediction> RunTokens(string text, CancellationToken cancellationToken = default) => RunTokens([text], cancellationToken)[0];

    /// <summary>One prediction per non-ignored token (HF <c>aggregation_strategy="none"</c>); element i is <c>RunTokens(texts[i])</c>.</summary>
    public IReadOnlyList<IReadOnlyList<TokenPrediction>> RunTokens(IReadOnlyList<string> texts, CancellationToken cancellationToken = default) =>
        PreEntities(texts, cancellationToken).Select(p => (IReadOnlyList<TokenPrediction>)TokenAggregation.Predictions(p, Labels, IgnoreLabels)).ToList();

    /// <summary>Preprocess + forward + softmax: every non-special token with its probabilities, offsets and sub-word flag.</summary>
    public IReadOnlyList<List<PreEntity>> PreEntities(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        for (int i = 0; i < texts.Count; i++) Validate(texts[i], i);
        var tokenized = texts.Select(Tokenizer.Tokenize).ToArray();

        // Every window of every text is one batch row.
        int window = MaxLength - 2, step = window - Stride;
        var windows = new List<(int Text, int Start, int Length)>();
        for (int t = 0; t < tokenized.Length; t++)
        {
            int n = tokenized[t].Count;
            for (int start = 0; ; start += step)
            {
                int len = Math.Min(window, n - start);
                windows.Add((t, start, len));
                if (start + len >= n) break;
            }
        }

        int c = Labels.Count;
        var scores = tokenized.Select(tk => new float[tk.Count][]).ToArray();
        var bestDistance = tokenized.Select(tk => Enumerable.Repeat(-1, tk.Count).ToArray()).ToArray();
        ForEachChunk(windows.Count, (start, count) =>
        {
            var rows = new List<(int[], int[])>(count);
            for (int w = start; w < start + count; w++)
            {
                var (t, ws, len) = windows[w];
                var ids = new int[len + 2];
                ids[0] = Tokenizer.ClsId;
                Array.Copy(tokenized[t].Ids, ws, ids, 1, len);
                ids[^1] = Tokenizer.SepId;
                rows.Add((ids, new int[len + 2]));
            }
            var batch = Pad(rows);
            var output = Model.Forward(batch, new ForwardRequest(), cancellationToken);
            var logits = output.Logits ?? throw new InvalidOperationException("the model returned no logits; it is not a token-classification model.");
            if (output.LogitsShape is not [var b, var s, var nl] || b != count || s != batch.SeqLen || nl != c)
                throw new InvalidOperationException($"token-classification logits have shape [{string.Join(", ", output.LogitsShape)}]; expected [{count}, {batch.SeqLen}, {c}].");
            for (int r = 0; r < count; r++)
            {
                var (t, ws, len) = windows[start + r];
                for (int j = 0; j < len; j++)
                {
                    int tok = ws + j;
                    int distance = Math.Min(j, len - 1 - j);
                    if (distance <= bestDistance[t][tok]) continue;
                    bestDistance[t][tok] = distance;
                    scores[t][tok] = Scores.Softmax(logits.AsSpan(((r * s) + j + 1) * c, c));
                }
            }
        }, cancellationToken);

        var result = new List<PreEntity>[texts.Count];
        for (int t = 0; t < texts.Count; t++)
        {
            var tk = tokenized[t];
            int n = tk.Count;
            // The un-windowed sequence [CLS] pieces [SEP]: indices match HF's for texts that fit.
            var ids = new int[n + 2]; var tokens = new string[n + 2]; var sc = new float[n + 2][];
            var st = new int[n + 2]; var en = new int[n + 2]; var special = new bool[n + 2];
            ids[0] = Tokenizer.ClsId; tokens[0] = "[CLS]"; sc[0] = []; special[0] = true;
            ids[^1] = Tokenizer.SepId; tokens[^1] = "[SEP]"; sc[^1] = []; special[^1] = true;
            for (int i = 0; i < n; i++)
            {
                ids[i + 1] = tk.Ids[i]; tokens[i + 1] = tk.Tokens[i]; sc[i + 1] = scores[t][i];
                st[i + 1] = tk.Starts[i]; en[i + 1] = tk.Ends[i];
            }
            result[t] = TokenAggregation.GatherPreEntities(texts[t], ids, tokens, sc, st, en, special, Tokenizer.UnkId);
        }
        return result;
    }
}
