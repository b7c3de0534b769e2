using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Data;

namespace Sharpformer.Training.Workflows;

/// <summary>
/// One scored run of a task — the final line a training, feature or baseline verb prints with <c>--json</c>, and one row of a
/// transfer-learning results table. Its JSON is flat apart from <c>metrics</c> and <c>budget</c>, so results files are JSON lines
/// any script can read.
/// </summary>
/// <param name="Task">Data set: "ag_news", "emotion", "conll2003" (the data folder's name).</param>
/// <param name="Split">The scored file ("test").</param>
/// <param name="Method">How the labels were learnt: "fine-tune", "head-only", "features+lr", "tfidf+lr", "lexical+lr" (CoNLL: per-word logistic regression on lexical features), "seed-transformer".</param>
/// <param name="Model">The model directory as given ("" when there is none, as for TF-IDF).</param>
/// <param name="ModelType">config.json model_type of the backbone ("bert", "gpt2"), or null.</param>
/// <param name="Init">"pretrained" (the checkpoint's weights), "random" (the family's initialiser, same config) or "none".</param>
/// <param name="Seed">Seed of initialisation, order and dropout.</param>
/// <param name="Metrics">Final scores on <paramref name="Split"/>: accuracy, f1_weighted, entity_f1, … (no "eval_" prefix).</param>
/// <param name="Budget">What the run was allowed: epochs, batch_size, learning_rate, max_length, train_examples, steps, … (numbers or strings).</param>
/// <param name="Seconds">Wall-clock seconds of the whole verb (loading, training, scoring).</param>
/// <param name="CpuSeconds">Process CPU seconds (user + system) — the figure to compare on a shared machine.</param>
public sealed record TaskResult(string Task, string Split, string Method, string Model, string? ModelType, string Init, int Seed,
    IReadOnlyDictionary<string, double> Metrics, IReadOnlyDictionary<string, object> Budget, double Seconds, double CpuSeconds)
{
    /// <summary>The JSON line (keys in a fixed order; numbers invariant).</summary>
    public string ToJson()
    {
        var budget = new JsonObject();
        foreach (var (k, v) in Budget) budget[k] = v is string s ? JsonValue.Create(s) : JsonValue.Create(Convert.ToDouble(v, CultureInfo.InvariantCulture));
        var metrics = new JsonObject();
        foreach (var (k, v) in Metrics) metrics[k] = double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));
        return new JsonObject
        {
            ["task"] = Task, ["split"] = Split, ["method"] = Method, ["model"] = Model, ["model_type"] = ModelType, ["init"] = Init, ["seed"] = Seed,
            ["metrics"] = metrics, ["budget"] = budget, ["seconds"] = Math.Round(Seconds, 1), ["cpu_seconds"] = Math.Round(CpuSeconds, 1),
        }.ToJsonString(LineOptions);
    }

    // "tfidf+lr" stays readable: no \u002B escapes (the line is data for scripts, never embedded in HTML).
    static readonly JsonSerializerOptions LineOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Reads one line of a results file.</summary>
    /// <exception cref="DataFormatException">The line is not a result object; the message names the file, line and field.</exception>
    public static TaskResult Parse(string json, string file, int line)
    {
        JsonObject o;
        try { o = JsonNode.Parse(json) as JsonObject ?? throw new DataFormatException(file, line, "a result line must be a JSON object."); }
        catch (JsonException e) { throw new DataFormatException(file, line, $"not JSON: {e.Message}"); }
        string Text(string key, bool required = true) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : required ? throw new DataFormatException(file, line, $"field '{key}' (a string) is missing.") : null!;
        JsonObject Obj(string key) => o[key] as JsonObject ?? throw new DataFormatException(file, line, $"field '{key}' (an object) is missing.");
        double Number(JsonNode? n, string key) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d
            : n is JsonValue s && s.TryGetValue<string>(out var t) && double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out d) ? d
            : throw new DataFormatException(file, line, $"field '{key}' is not a number.");
        string task = Text("task"), split = Text("split"), method = Text("method"), model = Text("model"), init = Text("init");
        string? modelType = Text("model_type", required: false);
        int seed = (int)Number(o["seed"], "seed");
        var metrics = Obj("metrics").ToDictionary(kv => kv.Key, kv => Number(kv.Value, "metrics." + kv.Key));
        var budget = Obj("budget").ToDictionary(kv => kv.Key,
            kv => kv.Value is JsonValue v && v.TryGetValue<string>(out var s) ? (object)s : Number(kv.Value, "budget." + kv.Key));
        return new TaskResult(task, split, method, model, modelType, init, seed, metrics, budget, Number(o["seconds"], "seconds"), Number(o["cpu_seconds"], "cpu_seconds"));
    }

    /// <summary>Reads a results file: one <see cref="ToJson"/> line per run (blank lines skipped).</summary>
    public static IReadOnlyList<TaskResult> ReadFile(string path)
    {
        var rows = new List<TaskResult>();
        int n = 0;
        foreach (var text in File.ReadLines(path))
        {
            n++;
            if (!string.IsNullOrWhiteSpace(text)) rows.Add(Parse(text, path, n));
        }
        return rows;
    }

    /// <summary>The row's headline score: entity F1 for token tasks, else accuracy (null when it has neither).</summary>
    public double? MainMetric => Metrics.TryGetValue("entity_f1", out var f) ? f : Metrics.TryGetValue("accuracy", out var a) ? a : null;

    /// <summary>The task, method, model, seed and budget — everything but the initialisation — to pair a pretrained row with its from-scratch control.</summary>
    internal string ControlKey => Key(Model);

    /// <summary>
    /// <see cref="ControlKey"/> with the model type in place of the model directory: a model pretrained further from another
    /// (domain adaptation) has the same configuration, hence the same from-scratch control.
    /// </summary>
    internal string ArchitectureControlKey => Key("type:" + ModelType);

    string Key(string model) => string.Join("|", Task, Split, Method, model, Seed,
        string.Join(",", Budget.Where(kv => kv.Key is not ("steps" or "lbfgs_iterations")).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={Format(kv.Value)}")));

    internal static string Format(object v) => v switch
    {
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>
    /// The row of a fine-tuning run: the last evaluation's metrics ("eval_" dropped), "fine-tune" or "head-only", "pretrained" or
    /// "random", and its budget (epochs, batch size, learning rate, max length, warmup, weight decay, examples, steps taken).
    /// </summary>
    public static TaskResult FromFineTuning(string task, string split, string modelDir, FineTuneOptions options, FineTuneResult result,
        int trainExamples, double seconds, double cpuSeconds)
    {
        var metrics = result.Evaluations.Count == 0 ? new Dictionary<string, double>()
            : result.Evaluations[^1].Metrics.ToDictionary(kv => kv.Key.StartsWith("eval_", StringComparison.Ordinal) ? kv.Key[5..] : kv.Key, kv => kv.Value);
        var budget = new Dictionary<string, object>
        {
            ["epochs"] = options.Epochs, ["batch_size"] = options.BatchSize, ["learning_rate"] = options.LearningRate, ["max_length"] = options.MaxLength,
            ["warmup_ratio"] = options.WarmupRatio, ["weight_decay"] = options.WeightDecay, ["train_examples"] = trainExamples, ["steps"] = result.Train.GlobalStep,
        };
        return new TaskResult(task, split, options.FreezeBase ? "head-only" : "fine-tune", modelDir, result.ModelType,
            options.RandomInit ? "random" : "pretrained", options.Seed, metrics, budget, seconds, cpuSeconds);
    }

    /// <summary>A data set's name from its file: the folder holding it ("ag_news/test.csv" → "ag_news"), or the folder above a
    /// CoNLL tag-scheme folder ("conll2003/hf_iob2/test.txt" → "conll2003").</summary>
    public static string TaskOf(string file)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? "";
        string name = Path.GetFileName(dir);
        return name is "hf_iob2" or "original_iob1" ? Path.GetFileName(Path.GetDirectoryName(dir) ?? "") : name;
    }

    /// <summary>The split's name from a file: its name without extension ("test.csv" → "test").</summary>
    public static string SplitOf(string file) => Path.GetFileNameWithoutExtension(file);

    /// <summary>The process CPU time so far, in seconds (user + system, all threads).</summary>
    public static double ProcessCpuSeconds() => System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
}

/// <summary>Turns result rows into the README's markdown table — every number comes from a results file, none typed by hand.</summary>
public static class TaskResultTable
{
    /// <summary>
    /// One table row per result, grouped by task, then by method and model (each in order of first appearance, so a pretrained row
    /// and its control sit together; file order within a group): task, method, model (directory name), init, accuracy, weighted F1, entity F1 (×100,
    /// one decimal), other metrics (e.g. a pretraining row's perplexity), the change of the headline metric against the row's from-scratch control (same task, split, method, model,
    /// seed and budget with init "random"; for a model with no control of its own, the only such row of its model type), the budget and the CPU minutes. A missing metric or control shows as "–".
    /// </summary>
    public static string Markdown(IReadOnlyList<TaskResult> rows)
    {
        var controls = new Dictionary<string, TaskResult>(StringComparer.Ordinal);
        // A row with no control of its own (e.g. a domain-adapted copy of a pretrained model) is compared with the one random-init
        // row of its model type, task, method, seed and budget — only when exactly one exists, so no pairing is a guess.
        var byArchitecture = rows.Where(r => r.Init == "random").GroupBy(r => r.ArchitectureControlKey, StringComparer.Ordinal)
            .Where(g => g.Count() == 1).ToDictionary(g => g.Key, g => g.Single(), StringComparer.Ordinal);
        foreach (var r in rows)
            if (r.Init == "random") controls.TryAdd(r.ControlKey, r);
        bool Control(TaskResult r, out TaskResult c) => controls.TryGetValue(r.ControlKey, out c!) || byArchitecture.TryGetValue(r.ArchitectureControlKey, out c!);
        var sb = new StringBuilder();
        sb.Append("| Task | Method | Model | Init | Accuracy | Weighted F1 | Entity F1 | Δ vs random init | Other | Budget | CPU min |\n");
        sb.Append("|---|---|---|---|---:|---:|---:|---:|---|---|---:|\n");
        var inv = CultureInfo.InvariantCulture;
        var taskOrder = rows.Select(r => r.Task).Distinct().ToList();
        var runOrder = rows.Select(r => (r.Method, r.Model)).Distinct().ToList();
        foreach (var r in rows.OrderBy(r => taskOrder.IndexOf(r.Task)).ThenBy(r => runOrder.IndexOf((r.Method, r.Model))))
        {
            string delta = r.Init == "pretrained" && Control(r, out var c) && r.MainMetric is double m && c.MainMetric is double b
                ? (100 * (m - b)).ToString("+0.0;−0.0;0.0", inv) : "–";
            string budget = string.Join(", ", r.Budget.Select(kv => $"{kv.Key} {TaskResult.Format(kv.Value)}"));
            var other = r.Metrics.Where(kv => !Shown.Contains(kv.Key)).Select(kv => $"{kv.Key} {TaskResult.Format(Math.Round(kv.Value, 4))}").ToList();
            sb.Append(inv, $"| {r.Task} | {r.Method} | {ModelName(r.Model)} | {r.Init} | {Points(r, "accuracy")} | {Points(r, "f1_weighted")} | {Points(r, "entity_f1")} | {delta} | {(other.Count == 0 ? "–" : string.Join(", ", other))} | {budget} | {r.CpuSeconds / 60:F1} |\n");
        }
        return sb.ToString();
    }

    // Metrics with their own column, or that describe the run rather than the model (loss, throughput, entity P/R, token accuracy).
    static readonly HashSet<string> Shown = ["accuracy", "f1_weighted", "entity_f1", "loss", "samples_per_s", "entity_precision", "entity_recall", "token_accuracy", "f1_macro"];

    static string Points(TaskResult r, string key) =>
        r.Metrics.TryGetValue(key, out var v) ? (100 * v).ToString("F1", CultureInfo.InvariantCulture) : "–";

    static string ModelName(string dir) => dir.Length == 0 ? "–" : Path.GetFileName(dir.TrimEnd('/', '\\'));
}
