using System.Globalization;
using System.Text.RegularExpressions;
using Sharpformer.Classical;
using Sharpformer.Data;
using Sharpformer.Metrics;

namespace Sharpformer.Bench;

/// <summary>
/// Bag-of-words logistic regression on AG News (train_subset → test), the classical baseline: fit time,
/// L-BFGS iterations and test accuracy. Features: lower-cased [a-z0-9]+ tokens seen in ≥ 2 training texts, counts.
/// Options: --json, --repeats N (default 3), --c C (default 0.1), --max-iter N (default 1000), --features counts|tfidf
/// (default counts; tfidf = scikit-learn TfidfTransformer defaults fitted on the training rows), --data DIR.
/// </summary>
internal static partial class LogisticRegressionBench
{
    [GeneratedRegex("[a-z0-9]+")]
    private static partial Regex Word();

    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int repeats = int.Parse(BenchData.Option(args, "--repeats") ?? "3", CultureInfo.InvariantCulture);
        double c = double.Parse(BenchData.Option(args, "--c") ?? "0.1", CultureInfo.InvariantCulture);
        int maxIter = int.Parse(BenchData.Option(args, "--max-iter") ?? "1000", CultureInfo.InvariantCulture);
        var data = BenchData.Folder(args);
        var train = AgNews.ReadTrainSubset(Path.Combine(data, "ag_news", "train_subset.csv"));
        var test = AgNews.ReadTest(Path.Combine(data, "ag_news", "test.csv"));
        string[] Tokens(string text) => Word().Matches(text.ToLowerInvariant()).Select(m => m.Value).ToArray();
        var df = new Dictionary<string, int>();
        foreach (var e in train) foreach (var t in Tokens(e.Text).Distinct()) df[t] = df.GetValueOrDefault(t) + 1;
        var vocab = df.Where(kv => kv.Value >= 2).Select(kv => kv.Key).Order(StringComparer.Ordinal).Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);
        SparseRows Featurize(IEnumerable<TextExample> examples)
        {
            var rows = new SparseRows(vocab.Count);
            foreach (var e in examples)
            {
                var counts = Tokens(e.Text).Where(vocab.ContainsKey).GroupBy(t => vocab[t]).OrderBy(g => g.Key).ToArray();
                rows.Add(counts.Select(g => g.Key).ToArray(), counts.Select(g => (float)g.Count()).ToArray());
            }
            return rows;
        }
        var features = BenchData.Option(args, "--features") ?? "counts";
        var xTrain = Featurize(train);
        var xTest = Featurize(test);
        if (features == "tfidf")
        {
            var tfidf = new TfidfTransformer().Fit(xTrain);
            xTrain = tfidf.Transform(xTrain);
            xTest = tfidf.Transform(xTest);
        }
        else if (features != "counts") throw new ArgumentException($"--features must be counts or tfidf, not '{features}'.");
        var yTrain = train.Select(e => e.Label).ToArray();
        LogisticRegression? model = null;
        var times = BenchData.Time(repeats, () => model = new LogisticRegression(new LogisticRegressionOptions(C: c, MaxIterations: maxIter)).Fit(xTrain, yTrain));
        var accuracy = ClassificationMetrics.Accuracy(test.Select(e => e.Label).ToArray(), model!.Predict(xTest));
        BenchData.Print(json, new
        {
            suite = "logreg", name = "agnews_" + features, train_rows = xTrain.Rows, features = vocab.Count, nnz = xTrain.NonZeros, C = c,
            iterations = model.Optimization!.Iterations, evaluations = model.Optimization.FunctionEvaluations, stop = model.Optimization.Stop.ToString(),
            fit_ms = times.Median, best_fit_ms = times.Best, test_accuracy = Math.Round(accuracy, 6),
        });
        return 0;
    }
}
