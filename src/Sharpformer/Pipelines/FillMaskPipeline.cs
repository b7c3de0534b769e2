using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>Per-call choices of <see cref="FillMaskPipeline.Run(string, FillMaskOptions?, CancellationToken)"/>.</summary>
public sealed record FillMaskOptions
{
    /// <summary>Candidates per mask, best first (capped at the number of <see cref="Targets"/> when restricted).</summary>
    public int TopK { get; init; } = 5;
    /// <summary>Restrict candidates to these tokens (HF <c>targets=</c>): a word not in the vocabulary is replaced by its first
    /// word piece. Scores stay probabilities over the whole vocabulary.</summary>
    public IReadOnlyList<string>? Targets { get; init; }
}

/// <summary>Masked-token prediction (HF <c>pipeline("fill-mask")</c>): candidates for every [MASK] in each text.</summary>
public sealed class FillMaskPipeline : Pipeline
{
    public FillMaskPipeline(ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null)
        : base(tokenizer, model, options)
    {
        MaskId = tokenizer.MaskTokenId ?? throw new PipelineInputException("the tokenizer has no [MASK] token; fill-mask needs a vocabulary with one.");
    }

    /// <summary>The [MASK] id.</summary>
    public int MaskId { get; }

    /// <summary>Loads a masked-LM model and its tokenizer from a directory (or a cached hub id).</summary>
    public static FillMaskPipeline FromPretrained(string modelDirOrId, PipelineOptions? options = null)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, PipelineTask.FillMask, options?.Execution);
        return new FillMaskPipeline(tokenizer, model, options);
    }

    /// <summary>
    /// For each text, for each [MASK] (in order), the <paramref name="topK"/> most probable tokens, best first.
    /// </summary>
    /// <param name="texts">Texts with at least one [MASK].</param>
    /// <param name="topK">Candidates per mask (capped at the number of targets when restricted).</param>
    /// <param name="targets">Restrict candidates to these tokens (HF <c>targets=</c>): a word not in the vocabulary
    /// is replaced by its first word piece. Scores stay probabilities over the whole vocabulary.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <remarks>
    /// score = softmax(logits at the mask)[token]. <c>Sequence</c> is the text with this mask filled, decoded with
    /// clean-up; with one mask special tokens are skipped, with several they are kept and the other masks stay
    /// [MASK] (transformers 4.30 behaviour).
    /// </remarks>
    public IReadOnlyList<IReadOnlyList<IReadOnlyList<FillMaskCandidate>>> Run(IReadOnlyList<string> texts, int topK,
        IReadOnlyList<string>? targets = null, CancellationToken cancellationToken = default) =>
        Run(texts, new FillMaskOptions { TopK = topK, Targets = targets }, cancellationToken);

    /// <summary>For one text, for each [MASK] (in order), the most probable tokens, best first.</summary>
    public IReadOnlyList<IReadOnlyList<FillMaskCandidate>> Run(string text, FillMaskOptions? options = null, CancellationToken cancellationToken = default) =>
        Run([text], options, cancellationToken)[0];

    /// <summary>For each text, for each [MASK] (in order), the most probable tokens; element i is what <c>Run(texts[i])</c> returns.</summary>
    public IReadOnlyList<IReadOnlyList<IReadOnlyList<FillMaskCandidate>>> Run(IReadOnlyList<string> texts, FillMaskOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new FillMaskOptions();
        int topK = options.TopK;
        var targets = options.Targets;
        ArgumentNullException.ThrowIfNull(texts);
        if (topK < 1) throw new ArgumentOutOfRangeException(nameof(options), topK, "TopK must be ≥ 1.");
        int[]? targetIds = targets is null ? null : TargetIds(targets);
        int k = targetIds is null ? topK : Math.Min(topK, targetIds.Length);
        for (int i = 0; i < texts.Count; i++) Validate(texts[i], i);

        var results = new IReadOnlyList<IReadOnlyList<FillMaskCandidate>>[texts.Count];
        ForEachChunk(texts.Count, (start, count) =>
        {
            var rows = new List<Encoding>(count);
            for (int i = start; i < start + count; i++)
            {
                rows.Add(Encode(texts[i], null, i));
                RequireMask(rows[^1], texts[i], i);
            }
            var batch = Collate(rows);
            var output = Model.Forward(batch, new ForwardRequest(), cancellationToken);
            var logits = output.Logits ?? throw new InvalidOperationException("the model returned no logits; it is not a masked-LM model.");
            int v = Tokenizer.VocabSize;
            if (output.LogitsShape is not [var b, var s, var nv] || b != count || s != batch.Seq || nv != v)
                throw new InvalidOperationException($"masked-LM logits have shape [{string.Join(", ", output.LogitsShape)}]; expected [{count}, {batch.Seq}, {v}].");
            for (int r = 0; r < count; r++)
            {
                var ids = rows[r].GetIdsArray();
                var maskPositions = Enumerable.Range(0, ids.Length).Where(p => ids[p] == MaskId).ToArray();
                bool single = maskPositions.Length == 1;
                var perMask = new List<IReadOnlyList<FillMaskCandidate>>(maskPositions.Length);
                foreach (var pos in maskPositions)
                {
                    var probs = Scores.Softmax(logits.AsSpan((r * s + pos) * v, v));
                    float[] candidates = targetIds is null ? probs : targetIds.Select(t => probs[t]).ToArray();
                    var row = new List<FillMaskCandidate>(k);
                    foreach (var c in Scores.TopK(candidates, k))
                    {
                        int token = targetIds is null ? c : targetIds[c];
                        var filled = (int[])ids.Clone();
                        filled[pos] = token;
                        var sequence = Tokenizer.Decode(filled, skipSpecialTokens: single, cleanup: DecodeCleanup.WholeText);
                        row.Add(new FillMaskCandidate(candidates[c], token, Tokenizer.Decode([token], false, cleanup: DecodeCleanup.WholeText), sequence));
                    }
                    perMask.Add(row);
                }
                results[start + r] = perMask;
            }
        }, cancellationToken);
        return results;
    }

    /// <inheritdoc/>
    /// <remarks>Also rejects a text with no [MASK] within the model's length, as <see cref="Run(IReadOnlyList{string}, int, IReadOnlyList{string}?, CancellationToken)"/> does.</remarks>
    public override int CheckInput(string text, int index = 0)
    {
        Validate(text, index);
        var e = Tokenizer.Encode(text, null, TruncationOptions);
        RequireMask(e, text, index);
        return e.Length + e.NumTruncatedTokens;
    }

    void RequireMask(Encoding e, string text, int index)
    {
        if (!e.IdsSpan.Contains(MaskId))
            throw new PipelineInputException(e.NumTruncatedTokens > 0
                ? $"input {index}: every [MASK] lies beyond the model's {MaxLength} tokens and was truncated away: \"{Describe(text)}\"."
                : $"input {index}: no [MASK] token in \"{Describe(text)}\"; put [MASK] where a word should be predicted.");
    }

    int[] TargetIds(IReadOnlyList<string> targets)
    {
        var ids = new List<int>();
        foreach (var target in targets)
        {
            if (string.IsNullOrWhiteSpace(target)) throw new PipelineInputException("a fill-mask target is empty.");
            if (Tokenizer.TokenToId(target) is int id) { if (!ids.Contains(id)) ids.Add(id); continue; }
            var pieces = Tokenizer.Encode(target, null, new EncodeOptions { AddSpecialTokens = false });
            if (pieces.Length == 0) throw new PipelineInputException($"fill-mask target \"{target}\" has no tokens in this vocabulary.");
            // HF uses the first piece of a word that is not in the vocabulary.
            if (!ids.Contains(pieces.Ids[0])) ids.Add(pieces.Ids[0]);
        }
        if (ids.Count == 0) throw new PipelineInputException("no fill-mask targets given.");
        return ids.ToArray();
    }
}
