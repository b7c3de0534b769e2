using System.Text.Json;
using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

/// <summary>The typed trainer records write the metrics.jsonl lines the dictionary-based trainer wrote, key for key and in order.</summary>
public class TrainerLogTests
{
    // What the trainer serialised before its records were typed: a dictionary in insertion order through JsonSerializer.
    static string Before(params (string Key, object? Value)[] fields) => JsonSerializer.Serialize(fields.ToDictionary(f => f.Key, f => f.Value));

    [Fact]
    public void ProgressRecordWritesTheLogLine() => Assert.Equal(
        Before(("kind", "log"), ("step", 50L), ("epoch", 1.25), ("train_loss", 0.6931471805599453), ("learning_rate", 2e-5), ("grad_norm", 1.5), ("samples_per_s", 123.456)),
        new TrainingProgressLog(50, 1.25, 0.6931471805599453, 2e-5, 1.5, 123.456).ToJson());

    [Fact]
    public void EvaluationRecordWritesMetricsBetweenTrainLossAndThroughput()
    {
        var metrics = new Dictionary<string, double> { ["eval_loss"] = 0.25, ["eval_accuracy"] = 0.875, ["eval_samples_per_s"] = 1000.5 };
        Assert.Equal(
            Before(("kind", "eval"), ("epoch", 2.0), ("step", 18L), ("train_loss", 0.3), ("eval_loss", 0.25), ("eval_accuracy", 0.875), ("eval_samples_per_s", 1000.5), ("samples_per_s", 77.0)),
            new EvaluationLog(18, 2.0, 0.3, metrics, 77.0).ToJson());
        // No update since the previous evaluation: train_loss is written as null.
        Assert.Contains("\"train_loss\":null", new EvaluationLog(18, 2.0, null, metrics, 77.0).ToJson(), StringComparison.Ordinal);
        Assert.Equal(0.875, new EvaluationLog(18, 2.0, null, metrics, 77.0).Metric("eval_accuracy"));
        Assert.Null(new EvaluationLog(18, 2.0, null, metrics, 77.0).Metric("eval_f1"));
    }

    [Fact]
    public void TrainEndRecordWritesItsLineAndANaNLossAsAString()
    {
        Assert.Equal(
            Before(("kind", "train_end"), ("step", 9L), ("train_loss", 0.5), ("samples_per_s", 64.0), ("train_seconds", 1.25), ("best_metric", 0.9), ("best_model_checkpoint", "checkpoint-9")),
            new TrainEndLog(9, 0.5, 64.0, 1.25, 0.9, "checkpoint-9").ToJson());
        // A resumed run that had nothing left to do has no mean loss; JsonLinesLog's convention writes it rather than failing the run.
        Assert.Equal("""{"kind":"train_end","step":9,"train_loss":"NaN","samples_per_s":0,"train_seconds":0,"best_metric":null,"best_model_checkpoint":null}""",
            new TrainEndLog(9, double.NaN, 0, 0, null, null).ToJson());
    }

    [Fact]
    public void ResumeTrimmingDropsTypedRecordsAfterTheCheckpointStepAndTrainEnd()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpformer-logs-{Guid.NewGuid():N}.jsonl");
        try
        {
            var log = new MetricsLog(path);
            var metrics = new Dictionary<string, double> { ["eval_loss"] = 0.5 };
            TrainerLog[] records = [new TrainingProgressLog(1, 0.5, 1, 1e-3, 1, 10), new EvaluationLog(2, 1, 0.9, metrics, 10),
                new TrainingProgressLog(3, 1.5, 0.8, 1e-3, 1, 10), new TrainEndLog(3, 0.85, 10, 1, null, null)];
            foreach (var r in records) log.Append(r);
            log.DropAfter(2);
            Assert.Equal([records[0].ToJson(), records[1].ToJson()], File.ReadAllLines(path));
        }
        finally { File.Delete(path); }
    }
}
