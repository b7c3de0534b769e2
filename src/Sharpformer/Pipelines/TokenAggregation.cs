namespace Sharpformer.Pipelines;

/// <summary>
/// A non-special token with its class probabilities, ready for aggregation
/// (HF <c>pre_entity</c> in pipelines/token_classification.py).
/// </summary>
/// <param name="Index">Position in the model input including [CLS].</param>
/// <param name="Word">The token string, or for [UNK] the original text it covers.</param>
/// <param name="Scores">Softmax probabilities over the labels.</param>
/// <param name="Start">UTF-16 start in the original text.</param>
/// <param name="End">UTF-16 end (exclusive) in the original text.</param>
/// <param name="IsSubword">True when the token continues the previous token's word.</param>
public sealed record PreEntity(int Index, string Word, float[] Scores, int Start, int End, bool IsSubword);

/// <summary>
/// The token-classification postprocessing of transformers 4.30 (pipelines/token_classification.py):
/// <c>gather_pre_entities</c>, <c>aggregate</c>, <c>aggregate_words</c>, <c>group_entities</c>, over plain arrays.
/// </summary>
public static class TokenAggregation
{
    /// <summary>The labels HF drops by default.</summary>
    public static readonly IReadOnlyList<string> DefaultIgnoreLabels = ["O"];

    /// <summary>HF <c>gather_pre_entities</c>: one <see cref="PreEntity"/> per non-special token.</summary>
    /// <param name="sentence">The original text the offsets point into.</param>
    /// <param name="ids">Token ids (the full model input, specials included).</param>
    /// <param name="tokens">Token strings, parallel to <paramref name="ids"/>.</param>
    /// <param name="scores">Per-token probabilities, parallel to <paramref name="ids"/>.</param>
    /// <param name="starts">UTF-16 start offsets.</param>
    /// <param name="ends">UTF-16 end offsets.</param>
    /// <param name="special">True for [CLS]/[SEP]/[PAD] positions, which are skipped.</param>
    /// <param name="unkId">The [UNK] id: such tokens take their word from the original text and start a word.</param>
    /// <param name="wordAwareTokenizer">
    /// True for a WordPiece tokenizer that knows its "##" continuation prefix (HF's fast path): a token is a
    /// sub-word when its length differs from the length of the text it covers. False reproduces HF's fallback
    /// heuristic for tokenizers without that knowledge: a sub-word is a token not preceded by a space.
    /// </param>
    /// <remarks>Lengths are compared in Unicode code points, as Python's <c>len</c> does.</remarks>
    public static List<PreEntity> GatherPreEntities(string sentence, IReadOnlyList<int> ids, IReadOnlyList<string> tokens,
        IReadOnlyList<float[]> scores, IReadOnlyList<int> starts, IReadOnlyList<int> ends, IReadOnlyList<bool> special,
        int unkId, bool wordAwareTokenizer = true)
    {
        ArgumentNullException.ThrowIfNull(sentence);
        int n = ids.Count;
        if (tokens.Count != n || scores.Count != n || starts.Count != n || ends.Count != n || special.Count != n)
            throw new ArgumentException($"ids ({n}), tokens ({tokens.Count}), scores ({scores.Count}), starts ({starts.Count}), ends ({ends.Count}) and special ({special.Count}) must have one entry per token.");
        var result = new List<PreEntity>(n);
        for (int i = 0; i < n; i++)
        {
            if (special[i]) continue;
            int s = starts[i], e = ends[i];
            if (s < 0 || e < s || e > sentence.Length)
                throw new ArgumentOutOfRangeException(nameof(starts), $"token {i} ('{tokens[i]}') has offsets [{s}, {e}) outside the text of length {sentence.Length}.");
            string word = tokens[i];
            var wordRef = sentence.AsSpan(s, e - s);
            bool isSubword = wordAwareTokenizer
                ? CodePointLength(word) != CodePointLength(wordRef)
                : s > 0 && !sentence.AsSpan(s - 1, Math.Min(2, sentence.Length - (s - 1))).Contains(' ');
            if (ids[i] == unkId) { word = wordRef.ToString(); isSubword = false; }
            result.Add(new PreEntity(i, word, scores[i], s, e, isSubword));
        }
        return result;
    }

    /// <summary>HF <c>aggregate</c> with <see cref="AggregationStrategy.None"/>, then the ignore-label filter.</summary>
    public static List<TokenPrediction> Predictions(IReadOnlyList<PreEntity> preEntities, IReadOnlyList<string> id2label,
        IReadOnlyCollection<string>? ignoreLabels = null)
    {
        ignoreLabels ??= DefaultIgnoreLabels;
        var result = new List<TokenPrediction>();
        foreach (var pe in preEntities)
        {
            int k = Scores.ArgMax(pe.Scores);
            var label = Label(id2label, k);
            if (ignoreLabels.Contains(label)) continue;
            result.Add(new TokenPrediction(label, pe.Scores[k], pe.Index, pe.Word, pe.Start, pe.End));
        }
        return result;
    }

    /// <summary>
    /// HF <c>aggregate</c> for Simple/First/Average/Max: per-token (Simple) or per-word labels, grouped into entities by
    /// B-/I- tags (<c>group_entities</c>), then entities whose group is in <paramref name="ignoreLabels"/> dropped.
    /// </summary>
    /// <remarks>
    /// Word label: First = argmax of the first piece; Average = argmax of the mean of the pieces' score vectors
    /// (score = that mean); Max = argmax of the piece with the highest single score. A group's score is the
    /// mean of its members' scores; its word is <c>convert_tokens_to_string</c> of their words; its span runs from
    /// the first member's start to the last member's end.
    /// </remarks>
    public static List<TokenEntity> Entities(IReadOnlyList<PreEntity> preEntities, AggregationStrategy strategy,
        IReadOnlyList<string> id2label, IReadOnlyCollection<string>? ignoreLabels = null)
    {
        if (strategy == AggregationStrategy.None)
            throw new ArgumentException("AggregationStrategy.None yields token predictions: call Predictions.", nameof(strategy));
        ignoreLabels ??= DefaultIgnoreLabels;
        var labelled = new List<Labelled>();
        if (strategy == AggregationStrategy.Simple)
        {
            foreach (var pe in preEntities)
            {
                int k = Scores.ArgMax(pe.Scores);
                labelled.Add(new Labelled(Label(id2label, k), pe.Scores[k], pe.Word, pe.Start, pe.End));
            }
        }
        else
        {
            var group = new List<PreEntity>();
            foreach (var pe in preEntities)
            {
                if (group.Count > 0 && !pe.IsSubword) { labelled.Add(AggregateWord(group, strategy, id2label)); group.Clear(); }
                group.Add(pe);
            }
            if (group.Count > 0) labelled.Add(AggregateWord(group, strategy, id2label));
        }

        var entities = new List<TokenEntity>();
        var run = new List<Labelled>();
        foreach (var item in labelled)
        {
            if (run.Count > 0)
            {
                var (bi, tag) = Tag(item.Entity);
                var (_, lastTag) = Tag(run[^1].Entity);
                if (tag != lastTag || bi == 'B') { entities.Add(GroupSubEntities(run)); run.Clear(); }
            }
            run.Add(item);
        }
        if (run.Count > 0) entities.Add(GroupSubEntities(run));
        entities.RemoveAll(e => ignoreLabels.Contains(e.EntityGroup));
        return entities;
    }

    sealed record Labelled(string Entity, float Score, string Word, int Start, int End);

    static string Label(IReadOnlyList<string> id2label, int k) =>
        k < id2label.Count ? id2label[k] : throw new PipelineInputException($"the model predicts class {k} but its config id2label has only {id2label.Count} labels; fix id2label in config.json.");

    static Labelled AggregateWord(List<PreEntity> pieces, AggregationStrategy strategy, IReadOnlyList<string> id2label)
    {
        var word = ConvertTokensToString(pieces.Select(p => p.Word));
        int k; float score;
        switch (strategy)
        {
            case AggregationStrategy.First:
                k = Scores.ArgMax(pieces[0].Scores); score = pieces[0].Scores[k];
                break;
            case AggregationStrategy.Max:
                var best = pieces[0]; float bestMax = best.Scores.Max();
                for (int i = 1; i < pieces.Count; i++)
                {
                    float m = pieces[i].Scores.Max();
                    if (m > bestMax) { best = pieces[i]; bestMax = m; }
                }
                k = Scores.ArgMax(best.Scores); score = best.Scores[k];
                break;
            case AggregationStrategy.Average:
                int c = pieces[0].Scores.Length;
                var mean = new float[c];
                for (int j = 0; j < c; j++)
                {
                    double sum = 0;
                    foreach (var p in pieces) sum += p.Scores[j];
                    mean[j] = (float)(sum / pieces.Count);
                }
                k = Scores.ArgMax(mean); score = mean[k];
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "word aggregation needs First, Average or Max.");
        }
        return new Labelled(Label(id2label, k), score, word, pieces[0].Start, pieces[^1].End);
    }

    /// <summary>HF <c>get_tag</c>: "B-X" → (B, X), "I-X" → (I, X), anything else → (I, itself).</summary>
    static (char Bi, string Tag) Tag(string entity) =>
        entity.StartsWith("B-", StringComparison.Ordinal) ? ('B', entity[2..])
        : entity.StartsWith("I-", StringComparison.Ordinal) ? ('I', entity[2..])
        : ('I', entity);

    /// <summary>HF <c>group_sub_entities</c>: the group name is the part after the last '-' of the first member's label.</summary>
    static TokenEntity GroupSubEntities(List<Labelled> run)
    {
        var label = run[0].Entity;
        var group = label[(label.LastIndexOf('-') + 1)..];
        double sum = 0;
        foreach (var r in run) sum += r.Score;
        return new TokenEntity(group, (float)(sum / run.Count), ConvertTokensToString(run.Select(r => r.Word)),
            run[0].Start, run[^1].End);
    }

    /// <summary>HF <c>BertTokenizer.convert_tokens_to_string</c>, which <c>aggregate_word</c> and <c>group_sub_entities</c> call.</summary>
    /// <remarks><c>" ".join(tokens).replace(" ##", "").strip()</c>.</remarks>
    internal static string ConvertTokensToString(IEnumerable<string> tokens) =>
        string.Join(' ', tokens).Replace(" ##", "", StringComparison.Ordinal).Trim(' ');

    /// <summary>Number of Unicode code points (Python <c>len</c> of a str).</summary>
    internal static int CodePointLength(ReadOnlySpan<char> s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }
}
