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
/// <param name="Evaluations">One record per evaluation.</param>
/// <param name="Train">The trainer's summary.</param>
/// <param name="Trainable">The trained model as the trainer held it.</param>
/// <param name="ModelType">config.json model_type of the backbone: bert, distilbert or gpt2.</param>
public sealed record FineTuneResult(IReadOnlyList<EvaluationLog> Evaluations, TrainResult Train, ITrainableModel<CollatedBatch> Trainable, string ModelType)
{
    /// <summary>The trained BERT-family classifier.</summary>
    /// <exception cref="InvalidOperationException">The run fine-tuned a GPT-2 (see <see cref="Trainable"/>).</exception>
    public EncoderClassifierTrainable Model => Trainable as EncoderClassifierTrainable
        ?? throw new InvalidOperationException($"this run fine-tuned a {ModelType} model; its trainable is a {Trainable.GetType().Name}.");
}

/// <summary>
/// Fine-tuning of BERT-family checkpoints: sequence classification (whole model or head only) and token
/// classification with word-to-token label alignment and seqeval entity F1, all through <see cref="Trainer{TBatch}"/>;
/// GPT-2 checkpoints fine-tune as <see cref="Gpt2ForSequenceClassification"/> (sequence classification only).
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
            _ => throw new NotSupportedException($"Fine-tuning supports BERT and DistilBERT (and GPT-2 for text classification); '{dir}' has model_type '{config.ModelType}'."),
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
    public static void FreezeBase(PretrainedModel model) => FreezeParameters(model, model.BaseModelPrefix + ".");

    static void FreezeParameters(Nn.Module model, string prefix)
    {
        foreach (var (name, p) in model.NamedParameters())
            if (name.StartsWith(prefix, StringComparison.Ordinal)) p.Trainable = false;
    }

    /// <summary>Fine-tunes a sequence classifier on labelled texts.</summary>
    public static FineTuneResult TrainTextClassifier(string modelDir, IReadOnlyList<TextExample> train, IReadOnlyList<TextExample>? eval,
        LabelSet labels, string outputDir, FineTuneOptions options,
        Action<EvaluationLog>? onEvaluation = null, CancellationToken cancellationToken = default)
    {
        var metrics = SeedTextClassifier.ClassificationMetricsFor(labels);
        if (ModelConfigLoader.Load(AutoModel.ResolveDirectory(modelDir)) is Gpt2Config)
        {
            var gpt = LoadGptForTask(modelDir, labels, options.Seed, options.Dropout, options.RandomInit);
            if (options.FreezeBase) FreezeParameters(gpt, "transformer.");
            var bpe = ByteLevelBpeTokenizer.FromDirectory(gpt.SourceDirectory!);
            int pad = gpt.Config.PadTokenId!.Value;
            var gptTrain = EncodeTexts(bpe, train, options.MaxLength, false, cancellationToken, pad);
            var gptEval = eval == null ? null : EncodeTexts(bpe, eval, options.MaxLength, false, cancellationToken, pad);
            return Run(new Gpt2ClassifierTrainable(gpt), "gpt2", gptTrain, gptEval, metrics, outputDir, options, onEvaluation, cancellationToken);
        }
        var (model, tokenizer, types) = Prepare(modelDir, tokenTask: false, labels, options);
        var trainData = EncodeTexts(tokenizer, train, options.MaxLength, types, cancellationToken);
        var evalData = eval == null ? null : EncodeTexts(tokenizer, eval, options.MaxLength, types, cancellationToken);
        return Run(model, trainData, evalData, metrics, outputDir, options, onEvaluation, cancellationToken);
    }

    /// <summary>
    /// A GPT-2 directory as <see cref="Gpt2ForSequenceClassification"/> for <paramref name="labels"/>: pad_token_id becomes the
    /// tokenizer's pad token, else eos_token_id (the usual GPT-2 fine-tuning recipe), so right-padded rows are read at their
    /// last real token; the score layer is initialised (seed <paramref name="seed"/>), and with <paramref name="randomInit"/> so is
    /// everything else (same config).
    /// </summary>
    public static Gpt2ForSequenceClassification LoadGptForTask(string modelDir, LabelSet labels, int seed, double? dropout = null, bool randomInit = false)
    {
        string dir = AutoModel.ResolveDirectory(modelDir);
        var config = Gpt2Config.Load(dir);
        int pad = config.PadTokenId ?? ByteLevelBpeTokenizer.FromDirectory(dir).PadTokenId ?? config.EosTokenId
            ?? throw new ConfigException(Path.Combine(dir, "config.json"), "pad_token_id", "GPT-2 classification needs a pad or EOS token id to find each row's last token; set pad_token_id.");
        var (id2label, label2id) = ModelConfig.LabelMaps(labels.Names.ToArray());
        config = config with { Id2Label = id2label, Label2Id = label2id, PadTokenId = pad, Architectures = ["GPT2ForSequenceClassification"] };
        if (dropout is double p) config = config with { ResidPdrop = p, EmbdPdrop = p, AttnPdrop = p };
        if (!randomInit)
            return Gpt2ForSequenceClassification.FromPretrained(dir, config, new ModelLoadOptions { Seed = seed, IgnoreMismatchedSizes = true });
        // The from-scratch control: the same config with GPT-2's initialiser; the tokenizer stays the directory's.
        var fresh = new Gpt2ForSequenceClassification(config, seed) { SourceDirectory = dir };
        fresh.Eval();
        return fresh;
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
        Action<EvaluationLog>? onEvaluation, CancellationToken ct) =>
        Run(new EncoderClassifierTrainable(model), model.ModelType, train, eval, metrics, outputDir, options, onEvaluation, ct);

    static FineTuneResult Run(ITrainableModel<CollatedBatch> trainable, string modelType, ITrainingData<CollatedBatch> train, ITrainingData<CollatedBatch>? eval,
        Func<EvalPredictions, IReadOnlyDictionary<string, double>> metrics, string outputDir, FineTuneOptions options,
        Action<EvaluationLog>? onEvaluation, CancellationToken ct)
    {
        trainable.Training = true;
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
        trainable.Training = false;
        trainer.SaveModel(outputDir);
        return new FineTuneResult(evaluations, result, trainable, modelType);
    }

    /// <summary>Tokenises labelled texts (truncated to <paramref name="maxLength"/>) into a padding-collated dataset, padded on the
    /// right with <paramref name="padId"/> (default: the tokenizer's pad token, else 0).</summary>
    public static ListTrainingData<EncodedExample, CollatedBatch> EncodeTexts(Tokenizer tokenizer, IReadOnlyList<TextExample> examples,
        int maxLength, bool typeIds, CancellationToken ct = default, int? padId = null)
    {
        var enc = tokenizer.EncodeBatch(examples.Select(e => e.Text).ToList(),
            new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength }, ct);
        var items = enc.Select((e, i) => new EncodedExample(e.Ids, typeIds ? e.TypeIds : null, examples[i].Label)).ToList();
        var collator = new PaddingCollator(padId ?? tokenizer.PadTokenId ?? 0);
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
