using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Training.Workflows;

/// <summary>Scores of a text classifier on a labelled set.</summary>
public sealed record TextEvaluation(ClassificationReport Report, ConfusionMatrix Confusion, double Loss, int[] Predictions, double SamplesPerSecond);

/// <summary>Scores of a token classifier on word-tagged sentences (seqeval entity metrics).</summary>
public sealed record TokenEvaluation(EntityReport Report, double TokenAccuracy, double Loss, double SentencesPerSecond);

/// <summary>Evaluates saved model directories (seed transformer or BERT family) on labelled data.</summary>
public static class Evaluation
{
    /// <summary>The label names a classifier directory declares (config.json id2label).</summary>
    public static LabelSet LabelsOf(string modelDir) => SeedTransformer.IsSeedTransformerDirectory(modelDir)
        ? new LabelSet(SeedTransformer.LoadConfig(modelDir).Labels ?? throw new SeedTransformerException($"{modelDir}/config.json has no id2label."))
        : new LabelSet(ModelConfigLoader.Load(AutoModel.ResolveDirectory(modelDir)).Labels);

    /// <summary>Accuracy, per-class and weighted scores, confusion matrix and mean loss of a sequence classifier.</summary>
    public static TextEvaluation EvaluateTextClassifier(string modelDir, IReadOnlyList<TextExample> examples, int batchSize = 64,
        int maxLength = 128, CancellationToken cancellationToken = default)
    {
        var labels = LabelsOf(modelDir);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        List<EvalBatch> batches = [];
        if (SeedTransformer.IsSeedTransformerDirectory(modelDir))
        {
            var model = SeedTransformer.Load(modelDir);
            var vectorizer = TextVectorizer.Load(modelDir);
            var trainable = new SeedTransformerTrainable(model) { Training = false };
            var ids = vectorizer.VectorizeBatch(examples.Select(e => e.Text).ToList());
            for (int s = 0; s < examples.Count; s += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rows = Enumerable.Range(s, Math.Min(batchSize, examples.Count - s)).Select(i => (ids[i], examples[i].Label)).ToList();
                batches.Add(trainable.Evaluate(SeedTransformerTrainable.Collate(rows, model.Config.SequenceLength)));
            }
        }
        else
        {
            var model = AutoModel.FromPretrained(modelDir);
            var trainable = new EncoderClassifierTrainable(model) { Training = false };
            if (trainable.IsTokenClassifier) throw new NotSupportedException($"{modelDir} is a token classifier; evaluate it on a CoNLL file.");
            var data = FineTuning.EncodeTexts(BertTokenizer.FromDirectory(AutoModel.ResolveDirectory(modelDir)), examples, maxLength, model.ModelType == "bert", cancellationToken);
            for (int s = 0; s < data.Count; s += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                batches.Add(trainable.Evaluate(data.Collate(Enumerable.Range(s, Math.Min(batchSize, data.Count - s)).ToArray())));
            }
        }
        var predictions = batches.SelectMany(b => b.Predicted.Select(p => p[0])).ToArray();
        var truth = examples.Select(e => e.Label).ToArray();
        double loss = batches.Sum(b => b.Loss * b.LossWeight) / batches.Sum(b => b.LossWeight);
        var ids2 = Enumerable.Range(0, labels.Count).ToArray();
        return new TextEvaluation(ClassificationMetrics.Report(truth, predictions, ids2, labels.Names),
            ConfusionMatrix.Compute(truth, predictions, labels.Count, labels.Names), loss, predictions,
            examples.Count / Math.Max(clock.Elapsed.TotalSeconds, 1e-9));
    }

    /// <summary>Entity precision/recall/F1 (seqeval default mode), token accuracy and loss of a token classifier.</summary>
    public static TokenEvaluation EvaluateTokenClassifier(string modelDir, IReadOnlyList<TokenExample> sentences, int batchSize = 32,
        int maxLength = 128, CancellationToken cancellationToken = default)
    {
        var model = AutoModel.FromPretrained(modelDir);
        var labels = new LabelSet(ModelConfigLoader.Load(AutoModel.ResolveDirectory(modelDir)).Labels);
        var trainable = new EncoderClassifierTrainable(model) { Training = false };
        if (!trainable.IsTokenClassifier) throw new NotSupportedException($"{modelDir} is a sequence classifier; evaluate it on a text file.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var data = FineTuning.EncodeTagged(BertTokenizer.FromDirectory(AutoModel.ResolveDirectory(modelDir)), sentences, labels, maxLength,
            model.ModelType == "bert", labelAllPieces: false, cancellationToken);
        var batches = new List<EvalBatch>();
        for (int s = 0; s < data.Count; s += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batches.Add(trainable.Evaluate(data.Collate(Enumerable.Range(s, Math.Min(batchSize, data.Count - s)).ToArray())));
        }
        var yTrue = batches.SelectMany(b => b.Labels).Select(s => (IReadOnlyList<string>)s.Select(labels.Name).ToArray()).ToList();
        var yPred = batches.SelectMany(b => b.Predicted).Select(s => (IReadOnlyList<string>)s.Select(labels.Name).ToArray()).ToList();
        double loss = batches.Sum(b => b.Loss * b.LossWeight) / Math.Max(1, batches.Sum(b => b.LossWeight));
        return new TokenEvaluation(Seqeval.Evaluate(yTrue, yPred), Seqeval.TokenAccuracy(yTrue, yPred), loss,
            sentences.Count / Math.Max(clock.Elapsed.TotalSeconds, 1e-9));
    }
}
