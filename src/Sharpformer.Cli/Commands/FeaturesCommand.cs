using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer features</c>: frozen-encoder (or GPT-2 decoder) features + logistic regression, scored on a test file.</summary>
internal static class FeaturesCommand
{
    public static Command Create()
    {
        var model = ModelOption.Create("BERT/DistilBERT or GPT-2 model directory (used frozen; a head checkpoint's encoder works too; GPT-2 pools with --pooling last or mean).", Hub.ShippedTask.Features);
        var train = new Option<string>("--train") { Description = "Training file (AG News CSV, emotion 'text;label', CSV with header, JSON lines).", Required = true };
        var test = new Option<string>("--test") { Description = "Test file in a recognised format, scored with the fitted regression.", Required = true };
        var format = new Option<TextFileFormat>("--format") { Description = "Data format when recognition from the file is not wanted.", DefaultValueFactory = _ => TextFileFormat.Auto };
        var pooling = PipelineVerbs.PoolingOption("cls");
        var c = new Option<double>("--c") { Description = "Inverse L2 regularisation strength of the logistic regression (scikit-learn C).", DefaultValueFactory = _ => 1.0 };
        var maxIter = new Option<int>("--max-iter") { Description = "L-BFGS iteration cap.", DefaultValueFactory = _ => 1000 };
        var maxLength = new Option<int>("--max-length") { Description = "Truncate texts to this many tokens.", DefaultValueFactory = _ => 128 };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training and N test texts (quick runs)." };
        var noScale = new Option<bool>("--no-standardize") { Description = "Fit on raw features instead of standardised ones." };
        var json = new Option<bool>("--json") { Description = "Print one JSON result line (task, split, method, model, init, seed, metrics, budget, seconds, cpu_seconds) instead of a report." };
        var randomInit = TrainCommand.RandomInitOption();
        var seed = new Option<int>("--seed") { Description = "Seed of the initialiser with --random-init.", DefaultValueFactory = _ => 0 };
        var task = TrainCommand.TaskOption();
        var threads = ThreadsOption.Create();
        var cmd = new Command("features", "Extract frozen encoder features, fit a logistic regression (L-BFGS) and report test accuracy, weighted F1 and the confusion matrix.");
        foreach (var o in new Option[] { model, train, test, format, pooling, c, maxIter, maxLength, limit, noScale, json, randomInit, seed, task, threads }) cmd.Options.Add(o);
        cmd.SetAction((r, ct) =>
        {
            using var scope = Tensors.ExecutionScope.Enter(ThreadsOption.Read(r, threads));
            var fmt = r.GetValue(format);
            var trainSet = TextClassificationFiles.Read(r.GetValue(train)!, fmt);
            var labels = trainSet.Labels ?? throw new DataFormatException(trainSet.File, 1, "the reader produced no label set.");
            IReadOnlyList<TextExample> tr = trainSet, te = TextClassificationFiles.Read(r.GetValue(test)!, fmt, labels);
            if (r.GetValue(limit) is int n) { tr = tr.Take(n).ToList(); te = te.Take(n).ToList(); }
            var options = new FeatureOptions
            {
                Pooling = PipelineVerbs.ParsePooling(r.GetValue(pooling)!), C = r.GetValue(c), MaxIterations = r.GetValue(maxIter), MaxLength = r.GetValue(maxLength),
                Standardize = !r.GetValue(noScale), RandomInit = r.GetValue(randomInit), Seed = r.GetValue(seed),
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            string modelDir = ModelOption.Read(r, model, Hub.ShippedTask.Features);
            var result = FeatureExtraction.TrainAndEvaluate(modelDir, tr, te, labels, options, ct);
            double seconds = clock.Elapsed.TotalSeconds;
            if (r.GetValue(json))
            {
                string testFile = r.GetValue(test)!;
                Console.WriteLine(FeatureExtraction.ToTaskResult(r.GetValue(task) ?? TaskResult.TaskOf(testFile), TaskResult.SplitOf(testFile), modelDir, options, result,
                    tr.Count, te.Count, seconds, TaskResult.ProcessCpuSeconds()).ToJson());
            }
            else
            {
                Console.WriteLine(result.Report);
                Console.WriteLine(result.Confusion);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accuracy {result.Accuracy:F4}  f1_weighted {result.F1Weighted:F4}  ({tr.Count} train / {te.Count} test texts, {result.Iterations} L-BFGS iterations, {seconds:F1} s)"));
            }
            return Task.FromResult(0);
        });
        return cmd;
    }
}
