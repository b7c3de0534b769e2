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
/// regression, scikit-learn semantics) trained on a dataset's train file and scored on its test file.
/// </summary>
public static class BaselineCommand
{
    /// <summary>Parsed settings of the verb.</summary>
    public sealed record Settings(string Dataset, string? Data, double C, int MaxIterations, bool Tfidf, int MinDf, bool Json);

    internal static Command Create()
    {
        var dataset = new Option<string>("--dataset") { Description = "agnews (train_subset.csv → test.csv) | emotion (train.txt → test.txt)", Required = true };
        dataset.AcceptOnlyFromAmong("agnews", "emotion");
        var data = TrainCommand.DataOption();
        var c = new Option<double>("--c") { Description = "Inverse L2 strength C (sklearn).", DefaultValueFactory = _ => 1.0 };
        var maxIter = new Option<int>("--max-iter") { Description = "L-BFGS iterations (sklearn max_iter).", DefaultValueFactory = _ => 1000 };
        var features = new Option<string>("--features") { Description = "tfidf | counts", DefaultValueFactory = _ => "tfidf" };
        features.AcceptOnlyFromAmong("tfidf", "counts");
        var minDf = new Option<int>("--min-df") { Description = "Keep terms in at least this many training texts.", DefaultValueFactory = _ => 1 };
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
}
