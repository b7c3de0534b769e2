using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Training.Workflows;

/// <summary>Settings of a fine-tuning run (HF Trainer defaults where they exist).</summary>
public sealed record FineTuneOptions
{
    public double Epochs { get; init; } = 3;
    public int MaxSteps { get; init; } = -1;
    public int Seed { get; init; }
    public int BatchSize { get; init; } = 16;
    public int EvalBatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 5e-5;
    public double WeightDecay { get; init; } = 0.01;
    public double WarmupRatio { get; init; }
    public double MaxGradNorm { get; init; } = 1.0;
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Train only the head; the base encoder's parameters are frozen.</summary>
    public bool FreezeBase { get; init; }
    /// <summary>Truncate inputs to this many tokens (including [CLS]/[SEP]).</summary>
    public int MaxLength { get; init; } = 128;
    /// <summary>Token classification: label every word piece (B- → I- after the first) instead of only the first.</summary>
    public bool LabelAllPieces { get; init; }
    /// <summary>Override the checkpoint's dropout probabilities (e.g. 0 for deterministic comparisons).</summary>
    public double? Dropout { get; init; }
    /// <summary>
    /// Ignore the checkpoint's weights: build the same architecture from the same config (and tokenizer) with the model
    /// family's initialiser — the from-scratch control of a transfer experiment, differing from the pretrained run only in init.
    /// </summary>
    public bool RandomInit { get; init; }
    public bool DisableProgressBar { get; init; }
    public bool SaveCheckpoints { get; init; }
    public string? ResumeFrom { get; init; }
    /// <summary>Evaluate (when an evaluation set is given) every epoch.</summary>
    public IntervalStrategy EvaluationStrategy { get; init; } = IntervalStrategy.Epoch;
}

/// <summary>What a fine-tuning run produced.</summary>
public sealed record FineTuneResult(IReadOnlyList<EvaluationLog> Evaluations, TrainResult Train, EncoderClassifierTrainable Model);

/// <summary>
/// Fine-tuning of BERT-family checkpoints: sequence classification (whole model or head only) and token
/// classification with word-to-token label alignment and seqeval entity F1, all through <see cref="Trainer{TBatch}"/>.
/// </summary>
public static class FineTuning
{
    /// <summary>
    /// Loads <paramref name="modelDir"/> with a head of the given task and label set (a head of another size is
    /// re-initialised, as HF's <c>ignore_mismatched_sizes</c>). With <paramref name="randomInit"/> the checkpoint is not read: every
    /// parameter comes from the family's initialiser (seeded by <paramref name="seed"/>) over the same config.
    /// </summary>
    public static PretrainedModel LoadForTask(string modelDir, bool tokenTask, LabelSet labels, int seed, double? dropout = null, bool randomInit = false)
    {
        string dir = AutoModel.ResolveDirectory(modelDir);
        var config = ModelConfigLoader.Load(dir);
        string arch = (config.ModelType, tokenTask) switch
        {
            ("bert", false) => "BertForSequenceClassification",
            ("bert", true) => "BertForTokenClassification",
            ("distilbert", false) => "DistilBertForSequenceClassification",
            ("distilbert", true) => "DistilBertForTokenClassification",
            _ => throw new NotSupportedException($"Fine-tuning supports BERT and DistilBERT; '{dir}' has model_type '{config.ModelType}'."),
        };
        var (id2label, label2id) = ModelConfig.LabelMaps(labels.Names.ToArray());
        config = config with { Id2Label = id2label, Label2Id = label2id, Architectures = [arch] };
        if (dropout is double p)
            config = config switch
            {
                BertConfig b => b with { HiddenDropoutProb = p, AttentionProbsDropoutProb = p, ClassifierDropout = null },
                DistilBertConfig d => d with { Dropout = p, AttentionDropout = p, SeqClassifDropout = p },
                _ => config,
            };
        var load = new ModelLoadOptions { Seed = seed, IgnoreMismatchedSizes = true };
        return randomInit ? AutoModel.FromConfigFor(dir, config, load) : AutoModel.FromPretrained(dir, config, load);
    }

    /// <summary>Freezes every parameter of the base encoder (names under <see cref="PretrainedModel.BaseModelPrefix"/>).</summary>
    public static void FreezeBase(PretrainedModel model)
    {
        string prefix = model.BaseModelPrefix + ".";
        foreach (var (name, p) in model.NamedParameters())
            if (name.StartsWith(prefix, StringComparison.Ordinal)) p.Trainable = false;
    }

    /// <summary>Fine-tunes a sequence classifier on labelled texts.</summary>
    public static FineTuneResult TrainTextClassifier(string modelDir, IReadOnlyList<TextExample> train, IReadOnlyList<TextExample>? eval,
        LabelSet labels, string outputDir, FineTuneOptions options,
        Action<EvaluationLog>? onEvaluation = null, CancellationToken cancellationToken = default)
    {
        var (model, tokenizer, types) = Prepare(modelDir, tokenTask: false, labels, options);
        var trainData = EncodeTexts(tokenizer, train, options.MaxLength, types, cancellationToken);
        var evalData = eval == null ? null : EncodeTexts(tokenizer, eval, options.MaxLength, types, cancellationToken);
        return Run(model, trainData, evalData, SeedTextClassifier.ClassificationMetricsFor(labels), outputDir, options, onEvaluation, cancellationToken);
    }

    /// <summary>Fine-tunes a token classifier on word-tagged sentences (e.g. CoNLL-2003), scoring entity F1.</summary>
    public static FineTuneResult TrainTokenClassifier(string modelDir, IReadOnlyList<TokenExample> train, IReadOnlyList<TokenExample>? eval,
        LabelSet labels, string outputDir, FineTuneOptions options,
        Action<EvaluationLog>? onEvaluation = null, CancellationToken cancellationToken = default)
    {
        var (model, tokenizer, types) = Prepare(modelDir, tokenTask: true, labels, options);
        var trainData = EncodeTagged(tokenizer, train, labels, options.MaxLength, types, options.LabelAllPieces, cancellationToken);
        var evalData = eval == null ? null : EncodeTagged(tokenizer, eval, labels, options.MaxLength, types, options.LabelAllPieces, cancellationToken);
        return Run(model, trainData, evalData, EntityMetricsFor(labels), outputDir, options, onEvaluation, cancellationToken);
    }

    // The task model (head sized for the labels, base frozen if asked), its tokenizer, and whether it takes token types.
    static (PretrainedModel Model, BertTokenizer Tokenizer, bool TokenTypes) Prepare(string modelDir, bool tokenTask, LabelSet labels, FineTuneOptions options)
    {
        var model = LoadForTask(modelDir, tokenTask, labels, options.Seed, options.Dropout, options.RandomInit);
        if (options.FreezeBase) FreezeBase(model);
        return (model, BertTokenizer.FromDirectory(model.SourceDirectory!), model.ModelType == "bert");
    }

    static FineTuneResult Run(PretrainedModel model, ITrainingData<CollatedBatch> train, ITrainingData<CollatedBatch>? eval,
        Func<EvalPredictions, IReadOnlyDictionary<string, double>> metrics, string outputDir, FineTuneOptions options,
        Action<EvaluationLog>? onEvaluation, CancellationToken ct)
    {
        model.Train();
        var trainable = new EncoderClassifierTrainable(model);
        var args = new TrainingArguments
        {
            OutputDir = outputDir, NumTrainEpochs = options.Epochs, MaxSteps = options.MaxSteps, LearningRate = options.LearningRate,
            PerDeviceTrainBatchSize = options.BatchSize, PerDeviceEvalBatchSize = options.EvalBatchSize,
            GradientAccumulationSteps = options.GradientAccumulationSteps, WeightDecay = options.WeightDecay,
            WarmupRatio = options.WarmupRatio, MaxGradNorm = options.MaxGradNorm,
            EvaluationStrategy = eval == null ? IntervalStrategy.No : options.EvaluationStrategy, LoggingStrategy = IntervalStrategy.Epoch,
            SaveStrategy = options.SaveCheckpoints ? IntervalStrategy.Epoch : IntervalStrategy.No,
            Seed = options.Seed, DisableProgressBar = options.DisableProgressBar,
        };
        var trainer = new Trainer<CollatedBatch>(trainable, args, train, eval, metrics);
        var evaluations = EvaluationRecords.Collect(trainer, onEvaluation);
        var result = trainer.Train(options.ResumeFrom, ct);
        model.Eval();
        trainer.SaveModel(outputDir);
        return new FineTuneResult(evaluations, result, trainable);
    }

    /// <summary>Tokenises labelled texts (truncated to <paramref name="maxLength"/>) into a padding-collated dataset.</summary>
    public static ListTrainingData<EncodedExample, CollatedBatch> EncodeTexts(BertTokenizer tokenizer, IReadOnlyList<TextExample> examples,
        int maxLength, bool typeIds, CancellationToken ct = default)
    {
        var enc = tokenizer.EncodeBatch(examples.Select(e => e.Text).ToList(),
            new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength }, ct);
        var items = enc.Select((e, i) => new EncodedExample(e.Ids, typeIds ? e.TypeIds : null, examples[i].Label)).ToList();
        var collator = new PaddingCollator(tokenizer.PadTokenId ?? 0);
        return new(items, collator.Collate);
    }

    /// <summary>Tokenises word-tagged sentences and aligns word tags to tokens (special tokens and padding −100).</summary>
    public static ListTrainingData<EncodedExample, CollatedBatch> EncodeTagged(BertTokenizer tokenizer, IReadOnlyList<TokenExample> examples,
        LabelSet labels, int maxLength, bool typeIds, bool labelAllPieces, CancellationToken ct = default)
    {
        var enc = tokenizer.EncodePretokenizedBatch(examples.Select(e => e.Words).ToList(),
            new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength }, ct);
        var items = enc.Select((e, i) => new EncodedExample(e.Ids, typeIds ? e.TypeIds : null, null,
            LabelAlignment.AlignLabelsWithTokens(e.WordIds, examples[i].Tags, labels, labelAllPieces))).ToList();
        var collator = new PaddingCollator(tokenizer.PadTokenId ?? 0);
        return new(items, collator.Collate);
    }

    /// <summary>seqeval-compatible entity precision/recall/F1 (micro) and token accuracy over labelled tokens.</summary>
    public static Func<EvalPredictions, IReadOnlyDictionary<string, double>> EntityMetricsFor(LabelSet labels) => p =>
    {
        var yTrue = p.Labels.Select(s => (IReadOnlyList<string>)s.Select(labels.Name).ToArray()).ToList();
        var yPred = p.Predicted.Select(s => (IReadOnlyList<string>)s.Select(labels.Name).ToArray()).ToList();
        var report = Seqeval.Evaluate(yTrue, yPred);
        return new Dictionary<string, double>
        {
            ["entity_precision"] = report.Precision, ["entity_recall"] = report.Recall, ["entity_f1"] = report.F1,
            ["token_accuracy"] = Seqeval.TokenAccuracy(yTrue, yPred),
        };
    };
}
