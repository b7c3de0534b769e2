using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Classical;
using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer baseline</c>: the classical text-classification baseline (bag of words → TF-IDF → L2 logistic
/// regression, scikit-learn semantics) trained on a dataset's train file and scored on its test file; for CoNLL-2003 its
/// token-level counterpart (<see cref="LexicalTokenClassifier"/>: lexical indicator features → logistic regression per
/// word, scored by seqeval).
/// </summary>
public static class BaselineCommand
{
    /// <summary>Parsed settings of the verb.</summary>
    public sealed record Settings(string Dataset, string? Data, double C, int MaxIterations, bool Tfidf, int MinDf, bool Json);

    internal static Command Create()
    {
        var dataset = new Option<string>("--dataset") { Description = "agnews (train_subset.csv → test.csv) | emotion (train.txt → test.txt) | conll2003 (hf_iob2/train.txt → test.txt, lexical features per word)", Required = true };
        dataset.AcceptOnlyFromAmong("agnews", "emotion", "conll2003");
        var data = TrainCommand.DataOption();
        var c = new Option<double>("--c") { Description = "Inverse L2 strength C (sklearn).", DefaultValueFactory = _ => 1.0 };
        var maxIter = new Option<int>("--max-iter") { Description = "L-BFGS iterations (sklearn max_iter).", DefaultValueFactory = _ => 1000 };
        var features = new Option<string>("--features") { Description = "tfidf | counts", DefaultValueFactory = _ => "tfidf" };
        features.AcceptOnlyFromAmong("tfidf", "counts");
        var minDf = new Option<int>("--min-df") { Description = "Keep terms in at least this many training texts (conll2003: features seen on at least this many training words).", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON result line (task, split, method, metrics, budget, seconds, cpu_seconds) instead of the report." };
        var cmd = new Command("baseline", "Train and score a TF-IDF + logistic regression text classifier (scikit-learn semantics).");
        foreach (var o in new Option[] { dataset, data, c, maxIter, features, minDf, json }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliErrors.Run(() => Execute(new Settings(parse.GetValue(dataset)!, parse.GetValue(data), parse.GetValue(c),
            parse.GetValue(maxIter), parse.GetValue(features) == "tfidf", parse.GetValue(minDf), parse.GetValue(json)), Console.Out)));
        return cmd;
    }

    public static int Execute(Settings s, TextWriter stdout, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var root = DataFolder.Resolve(s.Data);
        if (s.Dataset == "conll2003") return ExecuteConll(s, root, clock, stdout, cancellationToken);
        var (train, test, labels) = s.Dataset switch
        {
            "agnews" => ((IReadOnlyList<TextExample>)AgNews.ReadTrainSubset(Path.Combine(root, "ag_news", "train_subset.csv")),
                (IReadOnlyList<TextExample>)AgNews.ReadTest(Path.Combine(root, "ag_news", "test.csv")), AgNews.Labels),
            "emotion" => (Emotion.Read(Path.Combine(root, "emotion", "train.txt")), Emotion.Read(Path.Combine(root, "emotion", "test.txt")), Emotion.Labels),
            _ => throw new ArgumentException($"unknown dataset '{s.Dataset}' (agnews | emotion)."),
        };
        var model = new TfidfLogisticRegression(new TfidfLogisticRegressionOptions(
            new CountVectorizerOptions(MinDf: s.MinDf), s.Tfidf, new LogisticRegressionOptions(C: s.C, MaxIterations: s.MaxIterations)));
        model.Fit(train.Select(e => e.Text).ToArray(), train.Select(e => e.Label).ToArray(), cancellationToken);
        var yTrue = test.Select(e => e.Label).ToArray();
        var yPred = model.Predict(test.Select(e => e.Text).ToArray());
        var report = ClassificationMetrics.Report(yTrue, yPred, Enumerable.Range(0, labels.Count).ToArray(), labels.Names);
        var opt = model.Classifier.Optimization!;
        if (s.Json)
        {
            // The results-table line (method "tfidf+lr"); the term count and L-BFGS outcome ride along in the budget.
            var budget = new Dictionary<string, object>
            {
                ["features"] = s.Tfidf ? "tfidf" : "counts", ["min_df"] = s.MinDf, ["C"] = s.C, ["train_examples"] = train.Count, ["test_examples"] = test.Count,
                ["terms"] = model.Vectorizer.Vocabulary.Count, ["lbfgs_iterations"] = opt.Iterations,
            };
            var metrics = new Dictionary<string, double> { ["accuracy"] = report.Accuracy, ["f1_weighted"] = report.Weighted.F1, ["f1_macro"] = report.Macro.F1 };
            stdout.WriteLine(new TaskResult(s.Dataset == "agnews" ? "ag_news" : s.Dataset, "test", "tfidf+lr", "", null, "none", 0, metrics, budget,
                clock.Elapsed.TotalSeconds, TaskResult.ProcessCpuSeconds()).ToJson());
            return 0;
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{s.Dataset}: {train.Count} train / {test.Count} test texts, {model.Vectorizer.Vocabulary.Count} terms, {(s.Tfidf ? "tf-idf" : "counts")}, C = {s.C}"));
        stdout.WriteLine($"L-BFGS: {opt.Iterations} iterations, stopped by {opt.Stop}{(opt.Converged ? "" : " (not converged; raise --max-iter)")}");
        stdout.WriteLine();
        stdout.Write(report.ToString());
        stdout.WriteLine();
        stdout.Write(ConfusionMatrix.Compute(yTrue, yPred, labels.Count, labels.Names).ToString());
        return 0;
    }

    /// <summary>CoNLL-2003 (IOB2): per-word logistic regression on lexical features, entity F1 by seqeval's default mode.</summary>
    static int ExecuteConll(Settings s, string root, System.Diagnostics.Stopwatch clock, TextWriter stdout, CancellationToken cancellationToken)
    {
        if (!s.Tfidf) throw new ArgumentException("--features counts applies to agnews and emotion; conll2003 uses binary lexical features.");
        var folder = Path.Combine(root, "conll2003", "hf_iob2");
        var train = Conll.Read(Path.Combine(folder, "train.txt")).Examples;
        var test = Conll.Read(Path.Combine(folder, "test.txt")).Examples;
        var model = new LexicalTokenClassifier(new LexicalTokenClassifierOptions(MinCount: s.MinDf,
            Classifier: new LogisticRegressionOptions(C: s.C, MaxIterations: s.MaxIterations)));
        model.Fit(train.Select(e => e.Words).ToArray(), train.Select(e => e.Tags).ToArray(), cancellationToken);
        var yTrue = test.Select(e => e.Tags).ToArray();
        var yPred = model.Predict(test.Select(e => e.Words).ToArray());
        var report = Seqeval.Evaluate(yTrue, yPred);
        double tokenAccuracy = Seqeval.TokenAccuracy(yTrue, yPred);
        var opt = model.Classifier.Optimization!;
        if (s.Json)
        {
            var budget = new Dictionary<string, object>
            {
                ["features"] = "lexical", ["window"] = model.Options.Window, ["min_count"] = s.MinDf, ["C"] = s.C, ["train_examples"] = train.Count,
                ["test_examples"] = test.Count, ["terms"] = model.FeatureCount, ["lbfgs_iterations"] = opt.Iterations,
            };
            var metrics = new Dictionary<string, double>
            {
                ["entity_precision"] = report.Precision, ["entity_recall"] = report.Recall, ["entity_f1"] = report.F1, ["token_accuracy"] = tokenAccuracy,
            };
            stdout.WriteLine(new TaskResult("conll2003", "test", "lexical+lr", "", null, "none", 0, metrics, budget,
                clock.Elapsed.TotalSeconds, TaskResult.ProcessCpuSeconds()).ToJson());
            return 0;
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"conll2003: {train.Count} train / {test.Count} test sentences, {model.FeatureCount} lexical features (window {model.Options.Window}), C = {s.C}"));
        stdout.WriteLine($"L-BFGS: {opt.Iterations} iterations, stopped by {opt.Stop}{(opt.Converged ? "" : " (not converged; raise --max-iter)")}");
        stdout.WriteLine();
        stdout.Write(report.ToString());
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"\ntoken accuracy {tokenAccuracy:F4}"));
        return 0;
    }
}
