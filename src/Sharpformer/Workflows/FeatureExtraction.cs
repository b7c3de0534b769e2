using Sharpformer.Checkpoints;
using Sharpformer.Classical;
using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tensors;
using Sharpformer.Tokenization;

namespace Sharpformer.Training.Workflows;

/// <summary>Settings of feature extraction + logistic regression.</summary>
public sealed record FeatureOptions
{
    public Pooling Pooling { get; init; } = Pooling.Cls;
    public int MaxLength { get; init; } = 128;
    public int BatchSize { get; init; } = 32;
    /// <summary>Inverse L2 strength of the logistic regression (scikit-learn's C).</summary>
    public double C { get; init; } = 1.0;
    public int MaxIterations { get; init; } = 1000;
    /// <summary>Standardise features (zero mean, unit variance on the training set) before the regression.</summary>
    public bool Standardize { get; init; } = true;
    /// <summary>Use the same encoder with the family's initialiser instead of the checkpoint's weights (the from-scratch control).</summary>
    public bool RandomInit { get; init; }
    /// <summary>Seed of the initialiser when <see cref="RandomInit"/> is set.</summary>
    public int Seed { get; init; }
}

/// <summary>Outcome of a feature-extraction run.</summary>
/// <param name="Accuracy">Test accuracy.</param>
/// <param name="F1Weighted">Support-weighted F1 (scikit-learn <c>average="weighted"</c>).</param>
/// <param name="Report">Per-class precision/recall/F1.</param>
/// <param name="Confusion">Test confusion matrix (rows = true class).</param>
/// <param name="Predictions">Predicted class per test example.</param>
/// <param name="Iterations">L-BFGS iterations used.</param>
public sealed record FeatureClassifierResult(double Accuracy, double F1Weighted, ClassificationReport Report, ConfusionMatrix Confusion,
    int[] Predictions, int Iterations);

/// <summary>
/// Transfer learning without gradient updates: a frozen BERT-family encoder turns texts into vectors
/// (no autograd, the inference fast path), then a multinomial logistic regression (L-BFGS, L2) is fit on them.
/// </summary>
public static class FeatureExtraction
{
    /// <summary>
    /// Loads the bare encoder of any BERT-family directory (a head checkpoint's "bert."/"distilbert." prefix is stripped); with
    /// <paramref name="randomInit"/>, the same encoder freshly initialised (seed <paramref name="seed"/>) instead.
    /// </summary>
    public static PretrainedModel LoadEncoder(string modelDir, Pooling pooling, bool randomInit = false, int seed = 0)
    {
        string dir = AutoModel.ResolveDirectory(modelDir);
        var config = ModelConfigLoader.Load(dir);
        string arch = config.ModelType == "distilbert" ? "DistilBertModel" : "BertModel";
        if (pooling == Pooling.Pooled && arch != "BertModel")
            throw new NotSupportedException($"{dir} is a {config.ModelType} model without a pooler; use --pooling cls or mean.");
        var load = new ModelLoadOptions { Architecture = arch, AddPoolingLayer = pooling == Pooling.Pooled, Seed = seed };
        if (randomInit) return AutoModel.FromConfigFor(dir, config, load);
        var model = AutoModel.FromPretrained(dir, load);
        if (pooling == Pooling.Pooled && model.LoadReport is { } report && report.Missing.Any(m => m.Contains("pooler", StringComparison.Ordinal)))
            throw new NotSupportedException($"{dir} has no pooler weights; use --pooling cls or mean.");
        return model;
    }

    /// <summary>One feature vector per text, [texts][hidden]: the feature-extraction pipeline over the frozen encoder.</summary>
    public static float[][] Extract(PretrainedModel encoder, ITokenizer tokenizer, IReadOnlyList<string> texts, FeatureOptions options,
        CancellationToken cancellationToken = default)
    {
        var pipeline = new FeatureExtractionPipeline(tokenizer, new ModelPipelineAdapter(encoder, encoder.ModelConfig),
            new PipelineOptions { BatchSize = options.BatchSize, MaxLength = options.MaxLength }, options.Pooling);
        return [.. pipeline.Run(texts, cancellationToken)];
    }

    /// <summary>
    /// One feature vector per text from a frozen GPT-2 decoder: texts truncated to <see cref="FeatureOptions.MaxLength"/>, batches
    /// right-padded with the EOS id (GPT-2 has no pad token; the attention mask hides it), pooled by <see cref="FeatureExtractionPipeline.Pool"/>
    /// — <see cref="Pooling.LastToken"/> (what GPT2ForSequenceClassification reads) or <see cref="Pooling.MaskedMean"/>.
    /// </summary>
    public static float[][] ExtractGpt(Gpt2Model decoder, ByteLevelBpeTokenizer tokenizer, IReadOnlyList<string> texts, FeatureOptions options,
        CancellationToken cancellationToken = default)
    {
        if (options.Pooling is Pooling.Cls or Pooling.Pooled)
            throw new NotSupportedException($"a GPT-2 has no [CLS] token or pooler; use --pooling last or mean, not {options.Pooling}.");
        int maxLength = Math.Min(options.MaxLength, decoder.Config.NPositions);
        int pad = tokenizer.PadTokenId ?? decoder.Config.PadTokenId ?? decoder.Config.EosTokenId ?? 0;
        var data = FineTuning.EncodeTexts(tokenizer, texts.Select(t => new TextExample(t, 0)).ToList(), maxLength, false, cancellationToken, pad);
        var features = new float[texts.Count][];
        int h = decoder.Config.NEmbd;
        using var _ = Autograd.NoGrad();
        for (int start = 0; start < texts.Count; start += options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(options.BatchSize, texts.Count - start);
            var batch = data.Collate(Enumerable.Range(start, n).ToArray());
            var hidden = decoder.Forward(new CausalLMInput(batch.InputIds, batch.Batch, batch.Seq, batch.AttentionMask)).LastHiddenState.ToArray();
            var output = new PipelineModelOutput(null, [], hidden, h, null, null);
            for (int r = 0; r < n; r++) features[start + r] = FeatureExtractionPipeline.Pool(options.Pooling, output, batch, r);
        }
        return features;
    }

    /// <summary>Extracts features for both sets, fits the regression on the training set and scores the test set.</summary>
    public static FeatureClassifierResult TrainAndEvaluate(string modelDir, IReadOnlyList<TextExample> train, IReadOnlyList<TextExample> test,
        LabelSet labels, FeatureOptions options, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<float[]> xTrain, xTest;
        string dir = AutoModel.ResolveDirectory(modelDir);
        if (ModelConfigLoader.Load(dir) is Gpt2Config)
        {
            var decoder = options.RandomInit ? new Gpt2Model(Gpt2Config.Load(dir), options.Seed) : Gpt2Model.FromPretrained(dir);
            decoder.Eval();
            var bpe = ByteLevelBpeTokenizer.FromDirectory(dir);
            xTrain = ExtractGpt(decoder, bpe, train.Select(e => e.Text).ToList(), options, cancellationToken);
            xTest = ExtractGpt(decoder, bpe, test.Select(e => e.Text).ToList(), options, cancellationToken);
        }
        else
        {
            var encoder = LoadEncoder(modelDir, options.Pooling, options.RandomInit, options.Seed);
            var tokenizer = BertTokenizer.FromDirectory(dir);
            xTrain = Extract(encoder, tokenizer, train.Select(e => e.Text).ToList(), options, cancellationToken);
            xTest = Extract(encoder, tokenizer, test.Select(e => e.Text).ToList(), options, cancellationToken);
        }
        return FitAndScore(xTrain, train.Select(e => e.Label).ToArray(), xTest, test.Select(e => e.Label).ToArray(), labels, options, cancellationToken);
    }

    /// <summary>The results-table row of a feature run: method "features+lr", its pooling, length, C and example counts as the budget.</summary>
    public static TaskResult ToTaskResult(string task, string split, string modelDir, FeatureOptions options, FeatureClassifierResult result,
        int trainExamples, int testExamples, double seconds, double cpuSeconds)
    {
        var budget = new Dictionary<string, object>
        {
            ["pooling"] = options.Pooling.ToString().ToLowerInvariant(), ["max_length"] = options.MaxLength, ["C"] = options.C,
            ["standardize"] = options.Standardize ? "yes" : "no", ["train_examples"] = trainExamples, ["test_examples"] = testExamples,
            ["lbfgs_iterations"] = result.Iterations,
        };
        var metrics = new Dictionary<string, double> { ["accuracy"] = result.Accuracy, ["f1_weighted"] = result.F1Weighted };
        return new TaskResult(task, split, "features+lr", modelDir, ModelConfigLoader.Load(AutoModel.ResolveDirectory(modelDir)).ModelType,
            options.RandomInit ? "random" : "pretrained", options.Seed, metrics, budget, seconds, cpuSeconds);
    }

    /// <summary>Standardises (optionally), fits the L-BFGS logistic regression and scores the test features.</summary>
    public static FeatureClassifierResult FitAndScore(IReadOnlyList<float[]> xTrain, int[] yTrain, IReadOnlyList<float[]> xTest, int[] yTest,
        LabelSet labels, FeatureOptions options, CancellationToken cancellationToken = default)
    {
        var lr = new LogisticRegression(new LogisticRegressionOptions(C: options.C, MaxIterations: options.MaxIterations));
        int[] predictions;
        if (options.Standardize)
        {
            var scaler = new StandardScaler().Fit(xTrain);
            lr.Fit(scaler.Transform(xTrain), yTrain, cancellationToken);
            predictions = lr.Predict(scaler.Transform(xTest));
        }
        else
        {
            lr.Fit(xTrain, yTrain, cancellationToken);
            predictions = lr.Predict(xTest);
        }
        var ids = Enumerable.Range(0, labels.Count).ToArray();
        var report = ClassificationMetrics.Report(yTest, predictions, ids, labels.Names);
        var confusion = ConfusionMatrix.Compute(yTest, predictions, labels.Count, labels.Names);
        return new FeatureClassifierResult(report.Accuracy, report.Weighted.F1, report, confusion, predictions, lr.Optimization?.Iterations ?? 0);
    }
}
