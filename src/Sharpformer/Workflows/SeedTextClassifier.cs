using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Training.Workflows;

/// <summary>Settings of a from-scratch seed-transformer run (defaults = the Keras tutorial).</summary>
public sealed record SeedTrainingOptions
{
    public int Epochs { get; init; } = 3;
    public int Seed { get; init; }
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    public int MaxTokens { get; init; } = 20000;
    public int SequenceLength { get; init; } = 256;
    /// <summary>Padding mask in attention and masked average pooling (the tutorial masks nothing).</summary>
    public bool Masked { get; init; }
    /// <summary>Dropout rate of the attention and dense blocks (the tutorial's 0.1; 0 makes a run a deterministic function of the data order).</summary>
    public float Dropout { get; init; } = 0.1f;
    /// <summary>Write a train_loss record to metrics.jsonl every this many steps; ≤ 0: once per epoch.</summary>
    public int LoggingSteps { get; init; }
    public bool DisableProgressBar { get; init; }
    /// <summary>Keep run checkpoints each epoch (resumable with <see cref="ResumeFrom"/>).</summary>
    public bool SaveCheckpoints { get; init; }
    public string? ResumeFrom { get; init; }
}

/// <summary>What a seed-transformer run produced.</summary>
/// <param name="Evaluations">One metrics record per epoch (eval_accuracy, eval_f1_weighted, eval_loss, train_loss, samples_per_s…).</param>
/// <param name="Train">Totals of the training call.</param>
/// <param name="OutputDir">The saved model directory.</param>
public sealed record SeedRunResult(IReadOnlyList<EvaluationLog> Evaluations, TrainResult Train, string OutputDir);

/// <summary>
/// The Keras tutorial pipeline end to end: adapt a <see cref="TextVectorizer"/> (20,000 tokens, length 256) on the
/// training texts, train <see cref="SeedTransformer"/> with Keras Adam (1e-3, ε 1e-7, no clipping, constant rate),
/// batch 128, sparse categorical cross-entropy, evaluating after every epoch; save a model directory holding
/// config.json, model.safetensors and the vectorizer's vocabulary.
/// </summary>
public static class SeedTextClassifier
{
    /// <summary>Trains and evaluates; <paramref name="onEvaluation"/> sees each epoch's record as it is produced.</summary>
    public static SeedRunResult Train(IReadOnlyList<TextExample> train, IReadOnlyList<TextExample>? eval, LabelSet labels, string outputDir,
        SeedTrainingOptions options, Action<EvaluationLog>? onEvaluation = null, CancellationToken cancellationToken = default)
    {
        var vectorizer = new TextVectorizer(new TextVectorizerOptions(options.MaxTokens, options.SequenceLength));
        vectorizer.Adapt(train.Select(e => e.Text), cancellationToken);
        var config = new SeedTransformerConfig(VocabSize: options.MaxTokens, SequenceLength: options.SequenceLength, NumLabels: labels.Count,
            MaskedAttention: options.Masked, MaskedPooling: options.Masked, Labels: labels.Names, Dropout: options.Dropout);
        // The vocabulary can be smaller than max_tokens on a small corpus; Keras' Embedding is still max_tokens rows.
        var model = new SeedTransformer(config, new TrainingRandom(options.Seed));
        var trainable = new SeedTransformerTrainable(model, (m, dir) => { m.Save(dir); vectorizer.Save(dir); });
        var trainData = Vectorized(vectorizer, train, options.SequenceLength);
        var evalData = eval == null ? null : Vectorized(vectorizer, eval, options.SequenceLength);
        var args = new TrainingArguments
        {
            OutputDir = outputDir, NumTrainEpochs = options.Epochs, LearningRate = options.LearningRate,
            PerDeviceTrainBatchSize = options.BatchSize, PerDeviceEvalBatchSize = 512, Optimizer = OptimizerKind.KerasAdam,
            AdamEpsilon = 1e-7, LrSchedulerType = SchedulerType.Constant, MaxGradNorm = 0, WeightDecay = 0,
            EvaluationStrategy = eval == null ? IntervalStrategy.No : IntervalStrategy.Epoch, LoggingStrategy = options.LoggingSteps > 0 ? IntervalStrategy.Steps : IntervalStrategy.Epoch,
            LoggingSteps = Math.Max(1, options.LoggingSteps), SaveStrategy = options.SaveCheckpoints ? IntervalStrategy.Epoch : IntervalStrategy.No,
            Seed = options.Seed, DisableProgressBar = options.DisableProgressBar,
        };
        var trainer = new Trainer<SeedBatch>(trainable, args, trainData, evalData, ClassificationMetricsFor(labels));
        var evaluations = EvaluationRecords.Collect(trainer, onEvaluation);
        var result = trainer.Train(options.ResumeFrom, cancellationToken);
        trainer.SaveModel(outputDir);
        return new SeedRunResult(evaluations, result, outputDir);
    }

    static ListTrainingData<(int[] Ids, int Label), SeedBatch> Vectorized(TextVectorizer v, IReadOnlyList<TextExample> examples, int len)
    {
        var ids = v.VectorizeBatch(examples.Select(e => e.Text).ToList());
        var rows = ids.Select((r, i) => (r, examples[i].Label)).ToList();
        return new(rows, r => SeedTransformerTrainable.Collate(r, len));
    }

    /// <summary>accuracy and weighted F1 (scikit-learn semantics) over single-label predictions.</summary>
    public static Func<EvalPredictions, IReadOnlyDictionary<string, double>> ClassificationMetricsFor(LabelSet labels) => p =>
    {
        var yTrue = p.Labels.Select(l => l[0]).ToArray();
        var yPred = p.Predicted.Select(l => l[0]).ToArray();
        var report = ClassificationMetrics.Report(yTrue, yPred, Enumerable.Range(0, labels.Count).ToArray());
        return new Dictionary<string, double> { ["accuracy"] = report.Accuracy, ["f1_weighted"] = report.Weighted.F1 };
    };
}
