using System.Text.Json.Nodes;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tokenization;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Training;

public sealed class WorkflowTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-workflow-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    static string SeqCls => SharedData.Fixture("bert-tiny-uncased-seqcls");
    static string TokCls => SharedData.Fixture("bert-tiny-uncased-tokcls");

    static IReadOnlyList<TextExample> AgTrain(int n) => AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv")).Take(n).ToList();
    static IReadOnlyList<TextExample> AgTest(int n) => AgNews.ReadTest(SharedData.DataFile("ag_news", "test.csv")).Take(n).ToList();

    // Features of the fixture's padded batch equal transformers' BertModel outputs (atol 1e-4).
    [Fact]
    public void FeaturesMatchTransformersBaseModelOutputs()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(SeqCls, "expected.json")))!["cases"]!.AsArray()
            .First(c => c!["name"]!.GetValue<string>() == "padded_batch")!;
        var texts = expected["text"]!.AsArray().Select(t => t!.GetValue<string>()).ToList();
        var hidden = expected["base_model_outputs"]!["last_hidden_state"]!.AsArray();
        var pooler = expected["base_model_outputs"]!["pooler_output"]!.AsArray();
        var mask = expected["encoding"]!["attention_mask"]!.AsArray();
        var tokenizer = BertTokenizer.FromDirectory(SeqCls);
        foreach (var pooling in new[] { Pooling.Cls, Pooling.Pooled, Pooling.MaskedMean })
        {
            var encoder = FeatureExtraction.LoadEncoder(SeqCls, pooling);
            var features = FeatureExtraction.Extract(encoder, tokenizer, texts, new FeatureOptions { Pooling = pooling, BatchSize = 2 });
            for (int b = 0; b < texts.Count; b++)
            {
                var row = hidden[b]!.AsArray();
                for (int j = 0; j < 64; j++)
                {
                    double want = pooling switch
                    {
                        Pooling.Cls => row[0]![j]!.GetValue<double>(),
                        Pooling.Pooled => pooler[b]![j]!.GetValue<double>(),
                        _ => Enumerable.Range(0, row.Count).Where(t => mask[b]![t]!.GetValue<int>() == 1).Average(t => row[t]![j]!.GetValue<double>()),
                    };
                    Assert.True(Math.Abs(features[b][j] - want) <= 1e-4, $"{pooling} text {b} dim {j}: {features[b][j]} vs {want}");
                }
            }
        }
    }

    [Fact]
    public void FeatureLogisticRegressionMetricsAreConsistentWithPredictions()
    {
        var train = AgTrain(48); var test = AgTest(24);
        var result = FeatureExtraction.TrainAndEvaluate(SeqCls, train, test, AgNews.Labels,
            new FeatureOptions { Pooling = Pooling.MaskedMean, MaxLength = 64, C = 0.5 });
        var y = test.Select(e => e.Label).ToArray();
        int correct = y.Where((t, i) => t == result.Predictions[i]).Count();
        Assert.Equal((double)correct / y.Length, result.Accuracy, 12);
        // Confusion matrix rows sum to class supports; diagonal = correct.
        long diag = 0;
        for (int c = 0; c < 4; c++)
        {
            diag += result.Confusion[c, c];
            Assert.Equal(y.Count(t => t == c), Enumerable.Range(0, 4).Sum(p => (int)result.Confusion[c, p]));
        }
        Assert.Equal(correct, diag);
        // Weighted F1 by hand.
        double f1w = 0;
        for (int c = 0; c < 4; c++)
        {
            int tp = y.Where((t, i) => t == c && result.Predictions[i] == c).Count();
            int pred = result.Predictions.Count(p => p == c), actual = y.Count(t => t == c);
            double p = pred == 0 ? 0 : (double)tp / pred, r = actual == 0 ? 0 : (double)tp / actual;
            f1w += actual * (p + r == 0 ? 0 : 2 * p * r / (p + r));
        }
        Assert.Equal(f1w / y.Length, result.F1Weighted, 12);
        Assert.True(result.Iterations > 0);
        // A random tiny encoder still separates something: better than a constant guess on this slice.
        Assert.True(result.Accuracy > y.GroupBy(t => t).Max(g => g.Count()) / (double)y.Length - 1e-9 || result.Accuracy >= 0.25);
    }

    FineTuneResult FineTuneSeq(string name, bool freeze = false) => FineTuning.TrainTextClassifier(SeqCls, AgTrain(32), AgTest(16), AgNews.Labels,
        Path.Combine(_root, name), new FineTuneOptions { Epochs = 2, BatchSize = 8, LearningRate = 1e-3, MaxLength = 32, Seed = 3, WarmupRatio = 0.25,
            DisableProgressBar = true, FreezeBase = freeze });

    // Golden values computed by this implementation (2 threads or 1 give the same sums here: the GEMMs split rows, not k).
    [Fact]
    public void SequenceFineTuningIsBitReproducibleAndMatchesGolden()
    {
        var a = FineTuneSeq("a");
        var b = FineTuneSeq("b");
        Assert.Equal(8, a.Train.GlobalStep);
        Assert.Equal(a.Train.TrainingLoss, b.Train.TrainingLoss);
        Assert.Equal(2, a.Evaluations.Count);
        for (int i = 0; i < 2; i++)
            Assert.Equal(a.Evaluations[i].Metrics["eval_loss"], b.Evaluations[i].Metrics["eval_loss"]);
        foreach (var (pa, pb) in a.Model.Model.Parameters().Zip(b.Model.Model.Parameters())) Assert.Equal(pa.Value.ToArray(), pb.Value.ToArray());
        Assert.Equal(GoldenSeqTrainLoss, a.Train.TrainingLoss, 1e-6);
        // The saved directory is loadable and gives the trained model's predictions.
        var reloaded = AutoModel.FromPretrained(Path.Combine(_root, "a"));
        Assert.Equal(AgNews.Labels.Names, ModelConfigLoader.Load(Path.Combine(_root, "a")).Labels);
        var trained = a.Model.Model.StateDict();
        foreach (var (name, t) in reloaded.StateDict()) Assert.Equal(trained[name].ToArray(), t.ToArray());
        Assert.True(File.Exists(Path.Combine(_root, "a", "vocab.txt")));
        Assert.True(File.Exists(Path.Combine(_root, "a", "metrics.jsonl")));
    }

    const double GoldenSeqTrainLoss = 1.5599938035011292;

    [Fact]
    public void HeadOnlyFineTuningLeavesTheEncoderUntouched()
    {
        var before = FineTuning.LoadForTask(SeqCls, false, AgNews.Labels, 3).StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        var r = FineTuneSeq("head", freeze: true);
        Assert.Equal(["classifier.weight", "classifier.bias"], TrainingOptimizer.TrainableParameters(r.Model.Module).Select(p => p.Name).ToArray());
        foreach (var (name, t) in r.Model.Model.StateDict())
        {
            if (name.StartsWith("classifier.", StringComparison.Ordinal)) Assert.NotEqual(before[name], t.ToArray());
            else Assert.Equal(before[name], t.ToArray());
        }
    }

    [Fact]
    public void TokenFineTuningScoresEntitiesLikeSeqevalByHand()
    {
        var sentences = Conll.Read(SharedData.DataFile("conll2003", "hf_iob2", "train.txt")).Take(24).ToList();
        var labels = LabelSet.Conll2003Ner;
        var result = FineTuning.TrainTokenClassifier(TokCls, sentences.Take(16).ToList(), sentences.Skip(16).ToList(), labels,
            Path.Combine(_root, "ner"), new FineTuneOptions { Epochs = 1, BatchSize = 8, LearningRate = 1e-3, MaxLength = 48, DisableProgressBar = true });
        Assert.Equal(2, result.Train.GlobalStep);
        var eval = Assert.Single(result.Evaluations);
        // Recompute the metrics from the model's own predictions with an independent span counter.
        var data = FineTuning.EncodeTagged(BertTokenizer.FromDirectory(TokCls), sentences.Skip(16).ToList(), labels, 48, true, false);
        var batch = data.Collate(Enumerable.Range(0, data.Count).ToArray());
        var preds = result.Model.Evaluate(batch);
        int tp = 0, nPred = 0, nTrue = 0, tokOk = 0, tokAll = 0;
        for (int s = 0; s < preds.Labels.Count; s++)
        {
            var t = Spans(preds.Labels[s].Select(labels.Name).ToArray());
            var p = Spans(preds.Predicted[s].Select(labels.Name).ToArray());
            tp += p.Intersect(t).Count(); nPred += p.Count; nTrue += t.Count;
            tokOk += preds.Labels[s].Where((y, i) => y == preds.Predicted[s][i]).Count(); tokAll += preds.Labels[s].Length;
        }
        double precision = nPred == 0 ? 0 : (double)tp / nPred, recall = nTrue == 0 ? 0 : (double)tp / nTrue;
        double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        Assert.Equal(f1, eval.Metrics["eval_entity_f1"], 12);
        Assert.Equal((double)tokOk / tokAll, eval.Metrics["eval_token_accuracy"], 12);
        Assert.True(nTrue > 5);
    }

    // IOB2 chunks (type, start, end) as seqeval's default mode reads them: an I- continuing a different type starts a new chunk.
    static HashSet<(string, int, int)> Spans(string[] tags)
    {
        var spans = new HashSet<(string, int, int)>();
        string? type = null; int start = 0;
        for (int i = 0; i <= tags.Length; i++)
        {
            string tag = i < tags.Length ? tags[i] : "O";
            string prefix = tag == "O" ? "O" : tag[..1], t = tag == "O" ? "" : tag[2..];
            bool continues = type != null && prefix == "I" && t == type;
            if (!continues && type != null) { spans.Add((type, start, i - 1)); type = null; }
            if (prefix is "B" or "I" && !continues) { type = t; start = i; }
        }
        return spans;
    }

    [Fact]
    public void SeedModelDirectoryRoundTrips()
    {
        var texts = AgTrain(64);
        var dir = Path.Combine(_root, "seed");
        var result = SeedTextClassifier.Train(texts, texts.Take(16).ToList(), AgNews.Labels, dir,
            new SeedTrainingOptions { Epochs = 1, BatchSize = 32, MaxTokens = 500, SequenceLength = 32, Seed = 1, DisableProgressBar = true, Masked = true });
        Assert.Single(result.Evaluations);
        Assert.True(SeedTransformer.IsSeedTransformerDirectory(dir));
        var model = SeedTransformer.Load(dir);
        var vectorizer = TextVectorizer.Load(dir);
        Assert.Equal(AgNews.Labels.Names, model.Config.Labels);
        Assert.True(model.Config.MaskedAttention && model.Config.MaskedPooling);
        var ids = texts.Take(16).SelectMany(t => vectorizer.Vectorize(t.Text)).ToArray();
        var output = model.Forward(ids, 16, returnAttentions: true);
        var preds = output.Predictions();
        double acc = preds.Where((p, i) => p == texts[i].Label).Count() / 16.0;
        Assert.Equal(result.Evaluations[0].Metrics["eval_accuracy"], acc, 12);
        Assert.Equal([16, 2, 32, 32], output.Attentions!.ShapeArray);
    }
}
