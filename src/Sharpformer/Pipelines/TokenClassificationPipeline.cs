using Sharpformer.Tokenization;

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
    public TokenClassificationPipeline(ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null,
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
        // The tokenizer's overflowing windows: MaxLength tokens each, consecutive ones sharing Stride pieces. Each is a batch row.
        var windowOptions = new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = MaxLength, Stride = Stride };
        var encodings = texts.Select(t => Tokenizer.Encode(t, null, windowOptions)).ToArray();
        var windows = new List<(int Text, Encoding Window, int[] Content)>();
        var full = new FullSequence[texts.Count];
        for (int t = 0; t < texts.Count; t++)
        {
            var main = encodings[t];
            foreach (var w in main.Overflowing.Prepend(main)) windows.Add((t, w, ContentPositions(w)));
            full[t] = new FullSequence(main, windows[^1].Window.WindowStart + windows[^1].Content.Length);
        }
        foreach (var (t, w, content) in windows) full[t].AddPieces(w, content);

        int c = Labels.Count;
        ForEachChunk(windows.Count, (start, count) =>
        {
            var batch = Collate(windows.GetRange(start, count).Select(w => w.Window).ToList());
            var output = Model.Forward(batch, new ForwardRequest(), cancellationToken);
            var logits = output.Logits ?? throw new InvalidOperationException("the model returned no logits; it is not a token-classification model.");
            if (output.LogitsShape is not [var b, var s, var nl] || b != count || s != batch.Seq || nl != c)
                throw new InvalidOperationException($"token-classification logits have shape [{string.Join(", ", output.LogitsShape)}]; expected [{count}, {batch.Seq}, {c}].");
            for (int r = 0; r < count; r++)
            {
                var (t, w, content) = windows[start + r];
                // A piece keeps the scores of the window in which it sits farthest from an edge.
                for (int j = 0; j < content.Length; j++)
                    full[t].Score(w.WindowStart + j, Math.Min(j, content.Length - 1 - j), logits.AsSpan((r * s + content[j]) * c, c));
            }
        }, cancellationToken);

        return Enumerable.Range(0, texts.Count).Select(t => full[t].Gather(texts[t], Tokenizer.UnkTokenId)).ToList();
    }

    static int[] ContentPositions(Encoding e) => Enumerable.Range(0, e.Length).Where(p => e.SpecialTokensMask[p] == 0).ToArray();

    /// <summary>The un-windowed sequence (the main encoding's special tokens around every piece of the text): indices match HF's for texts that fit.</summary>
    sealed class FullSequence
    {
        readonly int _lead;
        readonly int[] _ids, _starts, _ends, _best;
        readonly string[] _tokens;
        readonly float[][] _scores;
        readonly bool[] _special;

        public FullSequence(Encoding main, int pieces)
        {
            var content = ContentPositions(main);
            _lead = content.Length > 0 ? content[0] : main.Length;
            int trail = content.Length > 0 ? main.Length - 1 - content[^1] : 0, n = _lead + pieces + trail;
            (_ids, _starts, _ends, _tokens, _scores, _special) = (new int[n], new int[n], new int[n], new string[n], new float[n][], new bool[n]);
            _best = Enumerable.Repeat(-1, pieces).ToArray();
            for (int i = 0; i < _lead; i++) Special(i, main, i);
            for (int i = 1; i <= trail; i++) Special(n - i, main, main.Length - i);
        }

        void Special(int to, Encoding main, int from) =>
            (_ids[to], _tokens[to], _scores[to], _special[to]) = (main.Ids[from], main.Tokens[from], [], true);

        public void AddPieces(Encoding window, int[] content)
        {
            for (int j = 0; j < content.Length; j++)
            {
                int p = content[j], to = _lead + window.WindowStart + j;
                (_ids[to], _tokens[to], _starts[to], _ends[to]) = (window.Ids[p], window.Tokens[p], window.Offsets[p].Start, window.Offsets[p].End);
            }
        }

        public void Score(int piece, int distance, ReadOnlySpan<float> logits)
        {
            if (distance <= _best[piece]) return;
            _best[piece] = distance;
            _scores[_lead + piece] = Scores.Softmax(logits);
        }

        public List<PreEntity> Gather(string text, int unkId) =>
            TokenAggregation.GatherPreEntities(text, _ids, _tokens, _scores, _starts, _ends, _special, unkId);
    }
}
