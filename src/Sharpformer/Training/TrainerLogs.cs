using System.Text;
using System.Text.Json;

namespace Sharpformer.Training;

/// <summary>
/// One record of <c>metrics.jsonl</c>, raised by <see cref="Trainer{TBatch}.Logged"/>: a <see cref="TrainingProgressLog"/>
/// ("log"), an <see cref="EvaluationLog"/> ("eval") or a <see cref="TrainEndLog"/> ("train_end").
/// </summary>
/// <remarks>
/// Each writes itself as one JSON object with the snake_case keys of Hugging Face's <c>log_history</c>, <c>kind</c> first and
/// then in a fixed order, so files written by earlier versions and by this one read alike. A non-finite number (a diverged
/// loss) is written as the string "NaN" / "Infinity", as <see cref="Data.JsonLinesLog"/> does.
/// </remarks>
public abstract record TrainerLog(long Step)
{
    /// <summary>"log", "eval" or "train_end": the record's <c>kind</c> field.</summary>
    public abstract string Kind { get; }

    /// <summary>The record as one line of JSON (no newline).</summary>
    public string ToJson()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", Kind);
            WriteFields(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private protected abstract void WriteFields(Utf8JsonWriter w);

    private protected static void Number(Utf8JsonWriter w, string key, double? value)
    {
        if (value is not double v) w.WriteNull(key);
        else if (double.IsFinite(v)) w.WriteNumber(key, v);
        else w.WriteString(key, double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }
}

/// <summary>The "log" record at each logging interval: means over the updates since the previous one.</summary>
/// <param name="Step">Optimizer updates done.</param>
/// <param name="Epoch">Fractional epoch, rounded to 4 decimals.</param>
/// <param name="TrainLoss">Mean training loss since the previous "log" record.</param>
/// <param name="LearningRate">Rate of the last update.</param>
/// <param name="GradNorm">Global gradient norm of the last update (before clipping).</param>
/// <param name="SamplesPerSecond">Training throughput since the previous "log" record.</param>
public sealed record TrainingProgressLog(long Step, double Epoch, double TrainLoss, double LearningRate, double GradNorm, double SamplesPerSecond)
    : TrainerLog(Step)
{
    public override string Kind => "log";

    private protected override void WriteFields(Utf8JsonWriter w)
    {
        w.WriteNumber("step", Step); Number(w, "epoch", Epoch); Number(w, "train_loss", TrainLoss);
        Number(w, "learning_rate", LearningRate); Number(w, "grad_norm", GradNorm); Number(w, "samples_per_s", SamplesPerSecond);
    }
}

/// <summary>The "eval" record after each evaluation.</summary>
/// <param name="Step">Optimizer updates done.</param>
/// <param name="Epoch">Fractional epoch, rounded to 4 decimals.</param>
/// <param name="TrainLoss">Mean training loss since the previous evaluation; null when no update ran in between.</param>
/// <param name="Metrics">"eval_loss", the metric function's values ("eval_accuracy", …) and "eval_samples_per_s", in that order.</param>
/// <param name="SamplesPerSecond">Training throughput since the previous evaluation (evaluation time excluded).</param>
public sealed record EvaluationLog(long Step, double Epoch, double? TrainLoss, IReadOnlyDictionary<string, double> Metrics, double SamplesPerSecond)
    : TrainerLog(Step)
{
    public override string Kind => "eval";

    /// <summary>An evaluation metric by its "eval_…" key, or a missing one's null.</summary>
    public double? Metric(string key) => Metrics.TryGetValue(key, out var v) ? v : null;

    private protected override void WriteFields(Utf8JsonWriter w)
    {
        Number(w, "epoch", Epoch); w.WriteNumber("step", Step); Number(w, "train_loss", TrainLoss);
        foreach (var (k, v) in Metrics) Number(w, k, v);
        Number(w, "samples_per_s", SamplesPerSecond);
    }
}

/// <summary>The "train_end" record when <see cref="Trainer{TBatch}.Train"/> returns.</summary>
/// <param name="Step">Optimizer updates done in total.</param>
/// <param name="TrainLoss">Mean loss over the updates this call ran (NaN when it ran none).</param>
/// <param name="SamplesPerSecond">Training throughput of this call.</param>
/// <param name="TrainSeconds">Wall time of this call.</param>
/// <param name="BestMetric">Best value of the chosen metric so far.</param>
/// <param name="BestModelCheckpoint">The checkpoint directory holding the best model, when saving tracked one.</param>
public sealed record TrainEndLog(long Step, double TrainLoss, double SamplesPerSecond, double TrainSeconds, double? BestMetric, string? BestModelCheckpoint)
    : TrainerLog(Step)
{
    public override string Kind => "train_end";

    private protected override void WriteFields(Utf8JsonWriter w)
    {
        w.WriteNumber("step", Step); Number(w, "train_loss", TrainLoss); Number(w, "samples_per_s", SamplesPerSecond);
        Number(w, "train_seconds", TrainSeconds); Number(w, "best_metric", BestMetric);
        if (BestModelCheckpoint is null) w.WriteNull("best_model_checkpoint"); else w.WriteString("best_model_checkpoint", BestModelCheckpoint);
    }
}
