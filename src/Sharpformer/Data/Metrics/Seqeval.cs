namespace Sharpformer.Metrics;

/// <summary>How entities are read from tag sequences.</summary>
public enum EntityMode
{
    /// <summary>
    /// seqeval's default (conlleval-compatible) lenient chunking: any I-X after O or after another type starts an
    /// entity, B-X always starts one; works for IOB1, IOB2, IOE and IOBES input.
    /// </summary>
    Default,
    /// <summary>seqeval <c>mode='strict', scheme=IOB2</c>: an entity is B-X followed by I-X…; an I-X that does not
    /// continue a B-X/I-X of the same type belongs to no entity.</summary>
    StrictIob2,
}

/// <summary>An entity span: type and inclusive token offsets [Start, End] within its sentence.</summary>
public readonly record struct EntitySpan(string Type, int Start, int End);

/// <summary>Entity-level scores per type plus averages, like seqeval's <c>classification_report</c>.</summary>
/// <param name="Types">One row per entity type, sorted by name (ordinal), Support = number of true entities.</param>
/// <param name="Micro">Scores from counts pooled over types (seqeval's default average).</param>
/// <param name="Macro">Unweighted mean over types.</param>
/// <param name="Weighted">Mean weighted by the number of true entities.</param>
public sealed record EntityReport(IReadOnlyList<ClassScores> Types, ClassScores Micro, ClassScores Macro, ClassScores Weighted)
{
    public double Precision => Micro.Precision;
    public double Recall => Micro.Recall;
    /// <summary>seqeval's <c>f1_score</c> (micro average).</summary>
    public double F1 => Micro.F1;

    public ClassScores this[string type] => Types.FirstOrDefault(c => c.Name == type)
        ?? throw new KeyNotFoundException($"No entity type '{type}' in the report; types are [{string.Join(", ", Types.Select(c => c.Name))}].");

    public override string ToString() => ReportTable.Format(Types, [("micro avg", Micro), ("macro avg", Macro), ("weighted avg", Weighted)], null);
}

/// <summary>
/// Entity-level evaluation of sequence labelling, compatible with seqeval (github.com/chakki-works/seqeval)
/// as used by Hugging Face's token-classification examples.
/// </summary>
public static class Seqeval
{
    /// <summary>
    /// Entities of one sentence by seqeval's <c>get_entities</c> rules (prefix = first character, type = text after
    /// the first '-'; "O" has no type). A chunk ends before a tag when the previous tag is E/S, or is B/I and the
    /// tag is B, S or O, or the type changes; a chunk starts at B or S, at E/I after E, S or O, or when the type changes.
    /// </summary>
    public static IReadOnlyList<EntitySpan> GetEntities(IReadOnlyList<string> tags)
    {
        var chunks = new List<EntitySpan>();
        char prevTag = 'O';
        string prevType = "";
        int begin = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            var (tag, type) = i < tags.Count ? Parse(tags[i]) : ('O', "_");
            if (EndOfChunk(prevTag, tag, prevType, type)) chunks.Add(new EntitySpan(prevType, begin, i - 1));
            if (StartOfChunk(prevTag, tag, prevType, type)) begin = i;
            prevTag = tag;
            prevType = type;
        }
        return chunks;
    }

    /// <summary>Entities of one IOB2 sentence in strict mode (seqeval's IOB2 scheme automaton).</summary>
    /// <exception cref="FormatException">A tag whose prefix IOB2 does not allow (only B, I, O), as seqeval raises.</exception>
    public static IReadOnlyList<EntitySpan> GetEntitiesStrictIob2(IReadOnlyList<string> tags)
    {
        var chunks = new List<EntitySpan>();
        int start = -1;
        string type = "";
        for (int i = 0; i < tags.Count; i++)
        {
            var (p, t) = Parse(tags[i]);
            if (p is not ('B' or 'I' or 'O'))
                throw new FormatException($"Tag '{tags[i]}' at position {i} is not valid IOB2 (prefixes B, I, O only); use EntityMode.Default.");
            bool continues = start >= 0 && p == 'I' && t == type;
            if (continues) continue;
            if (start >= 0) chunks.Add(new EntitySpan(type, start, i - 1));
            start = -1;
            if (p == 'B') { start = i; type = t; }
        }
        if (start >= 0) chunks.Add(new EntitySpan(type, start, tags.Count - 1));
        return chunks;
    }

    /// <summary>
    /// Entity-level precision, recall and F1 per type with micro, macro and weighted averages (seqeval
    /// <c>classification_report</c> / <c>precision_recall_fscore_support</c>, zero_division=0).
    /// </summary>
    /// <remarks>
    /// An entity counts as correct only if type, start and end all match. Per type: P = TP/#predicted,
    /// R = TP/#true, F1 = 2PR/(P+R); micro pools the counts; macro is the unweighted mean over types found in
    /// either side; weighted uses the number of true entities.
    /// </remarks>
    public static EntityReport Evaluate(IReadOnlyList<IReadOnlyList<string>> yTrue, IReadOnlyList<IReadOnlyList<string>> yPred,
        EntityMode mode = EntityMode.Default)
    {
        if (yTrue.Count != yPred.Count)
            throw new ArgumentException($"yTrue has {yTrue.Count} sentences but yPred has {yPred.Count}.", nameof(yPred));
        var trueSets = new Dictionary<string, HashSet<(int, int, int)>>(StringComparer.Ordinal);
        var predSets = new Dictionary<string, HashSet<(int, int, int)>>(StringComparer.Ordinal);
        for (int s = 0; s < yTrue.Count; s++)
        {
            if (yTrue[s].Count != yPred[s].Count)
                throw new ArgumentException($"Sentence {s}: {yTrue[s].Count} true tags but {yPred[s].Count} predicted tags.", nameof(yPred));
            Add(trueSets, s, mode == EntityMode.Default ? GetEntities(yTrue[s]) : GetEntitiesStrictIob2(yTrue[s]));
            Add(predSets, s, mode == EntityMode.Default ? GetEntities(yPred[s]) : GetEntitiesStrictIob2(yPred[s]));
        }
        var types = trueSets.Keys.Union(predSets.Keys).Order(StringComparer.Ordinal).ToArray();
        var rows = new List<ClassScores>();
        long tpAll = 0, predAll = 0, trueAll = 0;
        foreach (var type in types)
        {
            var t = trueSets.GetValueOrDefault(type) ?? [];
            var p = predSets.GetValueOrDefault(type) ?? [];
            long tp = t.Count(p.Contains);
            rows.Add(ClassificationMetrics.Score(type, tp, p.Count, t.Count));
            tpAll += tp; predAll += p.Count; trueAll += t.Count;
        }
        var micro = ClassificationMetrics.Score("micro avg", tpAll, predAll, trueAll);
        int total = (int)trueAll;
        var macro = rows.Count == 0
            ? new ClassScores("macro avg", 0, 0, 0, 0)
            : new ClassScores("macro avg", rows.Average(r => r.Precision), rows.Average(r => r.Recall), rows.Average(r => r.F1), total);
        var weighted = total == 0
            ? new ClassScores("weighted avg", 0, 0, 0, 0)
            : new ClassScores("weighted avg", rows.Sum(r => r.Precision * r.Support) / total, rows.Sum(r => r.Recall * r.Support) / total,
                rows.Sum(r => r.F1 * r.Support) / total, total);
        return new EntityReport(rows, micro, macro, weighted);
    }

    /// <summary>Token-level accuracy over all tags (seqeval <c>accuracy_score</c>).</summary>
    public static double TokenAccuracy(IReadOnlyList<IReadOnlyList<string>> yTrue, IReadOnlyList<IReadOnlyList<string>> yPred)
    {
        if (yTrue.Count != yPred.Count) throw new ArgumentException($"yTrue has {yTrue.Count} sentences but yPred has {yPred.Count}.", nameof(yPred));
        long correct = 0, total = 0;
        for (int s = 0; s < yTrue.Count; s++)
        {
            if (yTrue[s].Count != yPred[s].Count)
                throw new ArgumentException($"Sentence {s}: {yTrue[s].Count} true tags but {yPred[s].Count} predicted tags.", nameof(yPred));
            for (int i = 0; i < yTrue[s].Count; i++) { total++; if (yTrue[s][i] == yPred[s][i]) correct++; }
        }
        if (total == 0) throw new ArgumentException("No tags to score.", nameof(yTrue));
        return (double)correct / total;
    }

    /// <summary>
    /// Turns flat token-classification outputs [batch·seq] into tag sequences for <see cref="Evaluate"/>, keeping only
    /// positions whose label is not −100 (special tokens, padding, later word pieces), as the Hugging Face course's
    /// <c>compute_metrics</c> does.
    /// </summary>
    /// <param name="predictions">Predicted label ids, [batch·seq] row-major.</param>
    /// <param name="labels">Gold label ids with −100 for ignored positions, same shape.</param>
    /// <param name="seq">Sequence length (row width).</param>
    /// <param name="labelNames">id → tag name (e.g. a LabelSet's Names).</param>
    public static (IReadOnlyList<IReadOnlyList<string>> True, IReadOnlyList<IReadOnlyList<string>> Predicted) FromTokenIds(
        ReadOnlySpan<int> predictions, ReadOnlySpan<int> labels, int seq, IReadOnlyList<string> labelNames)
    {
        if (predictions.Length != labels.Length)
            throw new ArgumentException($"{predictions.Length} predictions but {labels.Length} labels.", nameof(labels));
        if (seq <= 0 || labels.Length % seq != 0)
            throw new ArgumentException($"{labels.Length} labels do not form rows of length {seq}.", nameof(seq));
        var yTrue = new List<IReadOnlyList<string>>();
        var yPred = new List<IReadOnlyList<string>>();
        for (int row = 0; row < labels.Length / seq; row++)
        {
            var t = new List<string>();
            var p = new List<string>();
            for (int i = row * seq; i < (row + 1) * seq; i++)
            {
                if (labels[i] == -100) continue;
                t.Add(Name(labels[i], i));
                p.Add(Name(predictions[i], i));
            }
            yTrue.Add(t);
            yPred.Add(p);
        }
        return (yTrue, yPred);

        string Name(int id, int position) => (uint)id < (uint)labelNames.Count
            ? labelNames[id]
            : throw new ArgumentException($"Label id {id} at position {position} is outside 0..{labelNames.Count - 1}.", nameof(labelNames));
    }

    static void Add(Dictionary<string, HashSet<(int, int, int)>> sets, int sentence, IReadOnlyList<EntitySpan> spans)
    {
        foreach (var e in spans)
        {
            if (!sets.TryGetValue(e.Type, out var set)) sets[e.Type] = set = [];
            set.Add((sentence, e.Start, e.End));
        }
    }

    // seqeval: tag = chunk[0], type = chunk[1:].split('-', maxsplit=1)[-1] or '_' ("O" → type '_').
    static (char Tag, string Type) Parse(string chunk)
    {
        if (chunk.Length == 0) throw new FormatException("An empty string is not a tag.");
        var rest = chunk.AsSpan(1);
        int dash = rest.IndexOf('-');
        var type = dash >= 0 ? rest[(dash + 1)..].ToString() : rest.ToString();
        return (chunk[0], type.Length == 0 ? "_" : type);
    }

    static bool EndOfChunk(char prevTag, char tag, string prevType, string type) =>
        prevTag is 'E' or 'S'
        || (prevTag is 'B' or 'I' && tag is 'B' or 'S' or 'O')
        || (prevTag != 'O' && prevTag != '.' && prevType != type);

    static bool StartOfChunk(char prevTag, char tag, string prevType, string type) =>
        tag is 'B' or 'S'
        || (prevTag is 'E' or 'S' or 'O' && tag is 'E' or 'I')
        || (tag != 'O' && tag != '.' && prevType != type);
}
