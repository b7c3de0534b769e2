namespace Sharpformer.Classical;

/// <summary>Options of <see cref="LexicalTokenClassifier"/>.</summary>
/// <param name="MinCount">Keep a feature seen on at least this many training tokens (rarer ones are dropped, as
/// <c>min_df</c> drops rare terms).</param>
/// <param name="Window">Words either side whose identity and shape are features of the token (0 = the token alone).</param>
/// <param name="Classifier">Logistic-regression settings.</param>
public sealed record LexicalTokenClassifierOptions(int MinCount = 1, int Window = 1, LogisticRegressionOptions? Classifier = null);

/// <summary>
/// The classical sequence-labelling baseline, the token-level counterpart of <see cref="TfidfLogisticRegression"/>:
/// each word becomes a sparse vector of binary lexical indicator features (its lower-cased form, its shape, 1–3-letter
/// prefixes and suffixes, capitalisation and digit flags, and the form and shape of its neighbours), and one
/// multinomial <see cref="LogisticRegression"/> predicts its tag independently of the other tags — scikit-learn's
/// <c>DictVectorizer</c> + <c>LogisticRegression</c> over the feature set of the CoNLL-2003 shared-task era systems,
/// without a CRF. Tags are predicted per word, so an I-X may follow O; score with seqeval's lenient mode, which reads
/// such an I-X as the start of an entity, as conlleval does.
/// </summary>
public sealed class LexicalTokenClassifier(LexicalTokenClassifierOptions? options = null)
{
    readonly Dictionary<string, int> _features = new(StringComparer.Ordinal);

    public LexicalTokenClassifierOptions Options { get; } = options ?? new LexicalTokenClassifierOptions();
    public LogisticRegression Classifier { get; } = new((options ?? new LexicalTokenClassifierOptions()).Classifier);

    /// <summary>The tag names, in the order of the classifier's class indices.</summary>
    public IReadOnlyList<string> Tags { get; private set; } = [];

    /// <summary>Distinct features kept by <see cref="Fit"/>.</summary>
    public int FeatureCount => _features.Count;

    /// <summary>Learns the feature vocabulary and the classifier from tagged sentences.</summary>
    public LexicalTokenClassifier Fit(IReadOnlyList<IReadOnlyList<string>> sentences, IReadOnlyList<IReadOnlyList<string>> tags,
        CancellationToken cancellationToken = default)
    {
        if (sentences.Count != tags.Count) throw new ArgumentException($"{sentences.Count} sentences but {tags.Count} tag sequences.", nameof(tags));
        if (Options.MinCount < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.MinCount, "MinCount must be at least 1.");
        if (Options.Window < 0) throw new ArgumentOutOfRangeException(nameof(options), Options.Window, "Window must be at least 0.");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var tagIndex = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (int s = 0; s < sentences.Count; s++)
        {
            if (sentences[s].Count != tags[s].Count)
                throw new ArgumentException($"Sentence {s}: {sentences[s].Count} words but {tags[s].Count} tags.", nameof(tags));
            for (int i = 0; i < sentences[s].Count; i++)
            {
                foreach (var f in FeaturesOf(sentences[s], i)) counts[f] = counts.GetValueOrDefault(f) + 1;
                tagIndex.TryAdd(tags[s][i], 0);
            }
        }
        _features.Clear();
        // Sorted so that the column order, hence the fit, does not depend on dictionary enumeration order.
        foreach (var f in counts.Where(kv => kv.Value >= Options.MinCount).Select(kv => kv.Key).Order(StringComparer.Ordinal))
            _features[f] = _features.Count;
        if (_features.Count == 0) throw new ArgumentException($"No feature is seen on {Options.MinCount} or more training tokens.", nameof(sentences));
        Tags = tagIndex.Keys.ToArray();
        int t = 0;
        foreach (var key in Tags) tagIndex[key] = t++;
        var y = new List<int>();
        foreach (var sentenceTags in tags) foreach (var tag in sentenceTags) y.Add(tagIndex[tag]);
        Classifier.Fit(Vectorize(sentences), y, cancellationToken);
        return this;
    }

    /// <summary>Predicted tags of each sentence.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Predict(IReadOnlyList<IReadOnlyList<string>> sentences)
    {
        if (_features.Count == 0) throw new InvalidOperationException("Fit the classifier before predicting.");
        var flat = Classifier.Predict(Vectorize(sentences));
        var result = new List<IReadOnlyList<string>>(sentences.Count);
        int k = 0;
        foreach (var sentence in sentences)
        {
            var row = new string[sentence.Count];
            for (int i = 0; i < row.Length; i++) row[i] = Tags[flat[k++]]; // Predict returns the labels fitted: tag indices
            result.Add(row);
        }
        return result;
    }

    SparseRows Vectorize(IReadOnlyList<IReadOnlyList<string>> sentences)
    {
        var rows = new SparseRows(_features.Count);
        var columns = new SortedSet<int>();
        foreach (var sentence in sentences)
            for (int i = 0; i < sentence.Count; i++)
            {
                columns.Clear();
                foreach (var f in FeaturesOf(sentence, i))
                    if (_features.TryGetValue(f, out int col)) columns.Add(col);
                var indices = columns.ToArray();
                rows.Add(indices, Enumerable.Repeat(1.0, indices.Length).ToArray());
            }
        return rows;
    }

    /// <summary>The indicator features of word <paramref name="i"/> of a sentence, as strings.</summary>
    public IEnumerable<string> FeaturesOf(IReadOnlyList<string> sentence, int i)
    {
        string word = sentence[i], lower = word.ToLowerInvariant();
        yield return "w=" + lower;
        yield return "shape=" + Shape(word);
        for (int n = 1; n <= 3 && n <= lower.Length; n++)
        {
            yield return $"p{n}=" + lower[..n];
            yield return $"s{n}=" + lower[^n..];
        }
        if (word.Length > 0 && char.IsUpper(word[0])) yield return i == 0 ? "title@start" : "title";
        if (word.Length > 1 && word.All(c => !char.IsLetter(c) || char.IsUpper(c)) && word.Any(char.IsLetter)) yield return "upper";
        if (word.Any(char.IsDigit)) yield return "digit";
        for (int d = 1; d <= Options.Window; d++)
        {
            foreach (var (offset, side) in new[] { (-d, "-"), (d, "+") })
            {
                int j = i + offset;
                if (j < 0) { yield return $"w{side}{d}=<s>"; continue; }
                if (j >= sentence.Count) { yield return $"w{side}{d}=</s>"; continue; }
                yield return $"w{side}{d}=" + sentence[j].ToLowerInvariant();
                yield return $"shape{side}{d}=" + Shape(sentence[j]);
            }
        }
    }

    /// <summary>A word's shape with runs collapsed: "Washington" → "Xx", "U.S." → "X.X.", "1996" → "d", "3-1" → "d-d".</summary>
    public static string Shape(string word)
    {
        var sb = new System.Text.StringBuilder(word.Length);
        foreach (char ch in word)
        {
            char c = char.IsUpper(ch) ? 'X' : char.IsLower(ch) ? 'x' : char.IsDigit(ch) ? 'd' : ch;
            if (sb.Length == 0 || sb[^1] != c) sb.Append(c);
        }
        return sb.ToString();
    }
}
