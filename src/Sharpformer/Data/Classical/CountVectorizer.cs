using System.Text.RegularExpressions;

namespace Sharpformer.Classical;

/// <summary>Options of <see cref="CountVectorizer"/> (scikit-learn names and defaults).</summary>
/// <param name="Lowercase">Lower-case the text before tokenising (invariant culture).</param>
/// <param name="TokenPattern">Regular expression whose matches are the tokens (sklearn default: two or more word characters).</param>
/// <param name="MinDf">Keep terms that occur in at least this many training documents.</param>
/// <param name="MaxFeatures">Keep only the most frequent terms (by total count; ties at the cut broken alphabetically —
/// sklearn's order for ties is unspecified, so the kept set can differ from sklearn's when the cut falls inside a tie).</param>
/// <param name="Binary">Record presence (1) instead of counts.</param>
public sealed record CountVectorizerOptions(
    bool Lowercase = true,
    string TokenPattern = @"\b\w\w+\b",
    int MinDf = 1,
    int? MaxFeatures = null,
    bool Binary = false);

/// <summary>
/// Bag-of-words features as scikit-learn's <c>CountVectorizer</c>: regex tokens, vocabulary of training terms
/// sorted alphabetically (ordinal), one count per term and document in <see cref="SparseRows"/>.
/// Terms not in the vocabulary are ignored at transform time.
/// </summary>
public sealed class CountVectorizer
{
    readonly Regex _token;
    Dictionary<string, int> _vocabulary = new(StringComparer.Ordinal);

    public CountVectorizer(CountVectorizerOptions? options = null)
    {
        Options = options ?? new CountVectorizerOptions();
        if (Options.MinDf < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.MinDf, "MinDf must be at least 1.");
        if (Options.MaxFeatures is <= 0) throw new ArgumentOutOfRangeException(nameof(options), Options.MaxFeatures, "MaxFeatures must be positive.");
        _token = new Regex(Options.TokenPattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));
    }

    public CountVectorizerOptions Options { get; }

    /// <summary>Terms in feature order (sklearn <c>get_feature_names_out()</c>).</summary>
    public IReadOnlyList<string> Vocabulary { get; private set; } = [];

    public IReadOnlyList<string> Tokenize(string text) =>
        _token.Matches(Options.Lowercase ? text.ToLowerInvariant() : text).Select(m => m.Value).ToArray();

    public CountVectorizer Fit(IEnumerable<string> documents, CancellationToken cancellationToken = default)
    {
        var df = new Dictionary<string, int>(StringComparer.Ordinal);
        var total = new Dictionary<string, long>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var doc in documents)
        {
            cancellationToken.ThrowIfCancellationRequested();
            seen.Clear();
            foreach (var t in Tokenize(doc))
            {
                total[t] = total.GetValueOrDefault(t) + 1;
                if (seen.Add(t)) df[t] = df.GetValueOrDefault(t) + 1;
            }
        }
        IEnumerable<string> terms = df.Where(kv => kv.Value >= Options.MinDf).Select(kv => kv.Key);
        if (Options.MaxFeatures is { } max)
            terms = terms.OrderByDescending(t => total[t]).ThenBy(t => t, StringComparer.Ordinal).Take(max);
        var vocab = terms.Order(StringComparer.Ordinal).ToArray();
        if (vocab.Length == 0)
            throw new ArgumentException("The training documents give an empty vocabulary (no token matched, or MinDf is too high).", nameof(documents));
        Vocabulary = vocab;
        _vocabulary = vocab.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i, StringComparer.Ordinal);
        return this;
    }

    public SparseRows Transform(IEnumerable<string> documents)
    {
        if (Vocabulary.Count == 0) throw new InvalidOperationException("CountVectorizer is not fitted; call Fit first.");
        var ids = documents.Select(d => (IReadOnlyList<int>)Tokenize(d).Select(t => _vocabulary.GetValueOrDefault(t, -1)).Where(i => i >= 0).ToArray());
        return SparseRows.FromTokenIds(ids, Vocabulary.Count, Options.Binary);
    }

    public SparseRows FitTransform(IReadOnlyList<string> documents) => Fit(documents).Transform(documents);
}

/// <summary>Options of <see cref="TfidfLogisticRegression"/>.</summary>
/// <param name="Vectorizer">Bag-of-words settings.</param>
/// <param name="UseTfidf">Weight counts by <see cref="TfidfTransformer"/> (sklearn defaults) before the classifier.</param>
/// <param name="Classifier">Logistic-regression settings.</param>
public sealed record TfidfLogisticRegressionOptions(
    CountVectorizerOptions? Vectorizer = null,
    bool UseTfidf = true,
    LogisticRegressionOptions? Classifier = null);

/// <summary>
/// The classical text-classification baseline: <see cref="CountVectorizer"/> → <see cref="TfidfTransformer"/> →
/// <see cref="LogisticRegression"/>, i.e. scikit-learn's <c>make_pipeline(TfidfVectorizer(), LogisticRegression())</c>.
/// </summary>
public sealed class TfidfLogisticRegression(TfidfLogisticRegressionOptions? options = null)
{
    public TfidfLogisticRegressionOptions Options { get; } = options ?? new TfidfLogisticRegressionOptions();
    public CountVectorizer Vectorizer { get; } = new((options ?? new TfidfLogisticRegressionOptions()).Vectorizer);
    public TfidfTransformer? Tfidf { get; private set; }
    public LogisticRegression Classifier { get; } = new((options ?? new TfidfLogisticRegressionOptions()).Classifier);

    public TfidfLogisticRegression Fit(IReadOnlyList<string> texts, IReadOnlyList<int> labels, CancellationToken cancellationToken = default)
    {
        var x = Vectorizer.Fit(texts, cancellationToken).Transform(texts);
        if (Options.UseTfidf)
        {
            Tfidf = new TfidfTransformer().Fit(x);
            x = Tfidf.Transform(x);
        }
        Classifier.Fit(x, labels, cancellationToken);
        return this;
    }

    public int[] Predict(IReadOnlyList<string> texts) => Classifier.Predict(Features(texts));
    public double[,] PredictProba(IReadOnlyList<string> texts) => Classifier.PredictProba(Features(texts));

    SparseRows Features(IReadOnlyList<string> texts)
    {
        var x = Vectorizer.Transform(texts);
        return Tfidf is null ? x : Tfidf.Transform(x);
    }
}
