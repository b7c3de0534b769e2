using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tests.Cli;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Training;

/// <summary>The transfer-learning table's machinery: the random-init control, result lines and the markdown formatter.</summary>
public sealed class TransferResultsTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-transfer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    static string SeqCls => SharedData.Fixture("bert-tiny-uncased-seqcls");

    static Dictionary<string, float[]> Weights(PretrainedModel m) =>
        m.NamedParameters().GroupBy(p => p.Name).ToDictionary(g => g.Key, g => g.First().Parameter.Value.Contiguous().ToArray());

    static double Std(float[] v)
    {
        double mean = v.Average(x => (double)x);
        return Math.Sqrt(v.Average(x => (x - mean) * (x - mean)));
    }

    // --random-init: the same architecture, config, parameter names and shapes and tokenizer directory; only the values
    // differ, and they are the family's initialiser (normal with std initializer_range = 0.2 in this fixture).
    [Fact]
    public void RandomInitDiffersFromThePretrainedModelOnlyInWeights()
    {
        foreach (bool token in new[] { false, true })
        {
            var labels = token ? LabelSet.Conll2003Ner : AgNews.Labels;
            var pretrained = FineTuning.LoadForTask(SeqCls, token, labels, seed: 5);
            var random = FineTuning.LoadForTask(SeqCls, token, labels, seed: 5, randomInit: true);
            Assert.Equal(pretrained.Architecture, random.Architecture);
            Assert.Equal(pretrained.ConfigJson(), random.ConfigJson());
            Assert.Equal(pretrained.SourceDirectory, random.SourceDirectory);
            Assert.False(random.Training);
            Assert.Equal(pretrained.NamedParameters().Select(p => (p.Name, string.Join("x", p.Parameter.Value.ShapeArray))),
                random.NamedParameters().Select(p => (p.Name, string.Join("x", p.Parameter.Value.ShapeArray))));
            var a = Weights(pretrained); var b = Weights(random);
            foreach (var (name, w) in a)
                if (name.EndsWith(".weight", StringComparison.Ordinal) && !name.Contains("LayerNorm", StringComparison.Ordinal))
                    Assert.False(w.AsSpan().SequenceEqual(b[name]), $"{name} kept the checkpoint's values under --random-init");
            var words = b["bert.embeddings.word_embeddings.weight"];
            Assert.InRange(Std(words), 0.19, 0.21);
            Assert.InRange(Std(b["bert.encoder.layer.1.attention.self.query.weight"]), 0.18, 0.22);
            // Two random inits with one seed are the same model: the control is reproducible.
            var again = Weights(FineTuning.LoadForTask(SeqCls, token, labels, seed: 5, randomInit: true));
            foreach (var (name, w) in b) Assert.True(w.AsSpan().SequenceEqual(again[name]), name);
        }
    }

    [Fact]
    public void RandomInitFeatureEncoderHasTheCheckpointsShapesButFreshValues()
    {
        var pretrained = FeatureExtraction.LoadEncoder(SeqCls, Pooling.MaskedMean);
        var random = FeatureExtraction.LoadEncoder(SeqCls, Pooling.MaskedMean, randomInit: true, seed: 1);
        Assert.Equal(pretrained.Architecture, random.Architecture);
        Assert.Equal(pretrained.NamedParameters().Select(p => p.Name), random.NamedParameters().Select(p => p.Name));
        var a = Weights(pretrained); var b = Weights(random);
        Assert.False(a["embeddings.word_embeddings.weight"].AsSpan().SequenceEqual(b["embeddings.word_embeddings.weight"]));
        Assert.Equal(a["embeddings.word_embeddings.weight"].Length, b["embeddings.word_embeddings.weight"].Length);
    }

    static TaskResult Row(string task, string method, string model, string init, double metric, double epochs = 2, int seed = 0, string key = "accuracy") =>
        new(task, "test", method, model, model.Length == 0 ? null : "bert", init, seed,
            key == "accuracy" ? new Dictionary<string, double> { ["accuracy"] = metric, ["f1_weighted"] = metric - 0.01 } : new Dictionary<string, double> { [key] = metric },
            new Dictionary<string, object> { ["epochs"] = epochs, ["steps"] = init == "random" ? 10.0 : 11.0 }, 30, 90);

    [Fact]
    public void ResultLineRoundTripsThroughJson()
    {
        var row = Row("ag_news", "fine-tune", "/m/mini", "pretrained", 0.9123456);
        var back = TaskResult.Parse(row.ToJson(), "r.jsonl", 1);
        Assert.Equal((row.Task, row.Split, row.Method, row.Model, row.ModelType, row.Init, row.Seed, row.Seconds, row.CpuSeconds),
            (back.Task, back.Split, back.Method, back.Model, back.ModelType, back.Init, back.Seed, back.Seconds, back.CpuSeconds));
        Assert.Equal(0.912346, back.Metrics["accuracy"], 12);
        Assert.Contains("\"method\":\"tfidf+lr\"", Row("ag_news", "tfidf+lr", "", "none", 0.5).ToJson());
        Assert.Equal(2.0, back.Budget["epochs"]);
        Assert.Equal("{\"task\":\"ag_news\",\"split\":\"test\",\"method\":\"fine-tune\",\"model\":\"/m/mini\",\"model_type\":\"bert\",\"init\":\"pretrained\",\"seed\":0," +
            "\"metrics\":{\"accuracy\":0.912346,\"f1_weighted\":0.902346},\"budget\":{\"epochs\":2,\"steps\":11},\"seconds\":30,\"cpu_seconds\":90}", row.ToJson());
    }

    [Fact]
    public void MalformedResultLineNamesFileLineAndField()
    {
        var e = Assert.Throws<DataFormatException>(() => TaskResult.Parse("{\"task\":\"ag_news\",\"split\":\"test\"}", "results.jsonl", 7));
        Assert.Equal("results.jsonl:7: field 'method' (a string) is missing.", e.Message);
        Assert.Throws<DataFormatException>(() => TaskResult.Parse("not json", "results.jsonl", 1));
    }

    // Rows are grouped by task, then method and model (first-appearance order); each pretrained row is compared with the random-init row of the same task, method, model, seed and budget (steps taken
    // aside); a row without such a control, or another budget, shows "–".
    [Fact]
    public void MarkdownTablePairsPretrainedRowsWithTheirRandomInitControl()
    {
        var rows = new[]
        {
            new TaskResult("pretraining", "held-out", "clm", "/m/gpt", "gpt2", "pretrained", 0,
                new Dictionary<string, double> { ["accuracy"] = 0.25, ["loss"] = 3.5, ["perplexity"] = 33.11547 }, new Dictionary<string, object> { ["steps"] = 1000.0 }, 0, 0),
            Row("ag_news", "fine-tune", "/m/mini", "pretrained", 0.9012),
            Row("ag_news", "tfidf+lr", "", "none", 0.8811),
            Row("ag_news", "fine-tune", "/m/mini", "random", 0.8712),
            Row("conll2003", "fine-tune", "/m/mini/", "pretrained", 0.70, key: "entity_f1"),
            Row("ag_news", "fine-tune", "/m/mini", "pretrained", 0.95, epochs: 3),
            Row("conll2003", "fine-tune", "/m/mini/", "random", 0.75, key: "entity_f1"),
        };
        string expected =
            "| Task | Method | Model | Init | Accuracy | Weighted F1 | Entity F1 | Δ vs random init | Other | Budget | CPU min |\n" +
            "|---|---|---|---|---:|---:|---:|---:|---|---|---:|\n" +
            "| pretraining | clm | gpt | pretrained | 25.0 | – | – | – | perplexity 33.1155 | steps 1000 | 0.0 |\n" +
            "| ag_news | fine-tune | mini | pretrained | 90.1 | 89.1 | – | +3.0 | – | epochs 2, steps 11 | 1.5 |\n" +
            "| ag_news | fine-tune | mini | random | 87.1 | 86.1 | – | – | – | epochs 2, steps 10 | 1.5 |\n" +
            "| ag_news | fine-tune | mini | pretrained | 95.0 | 94.0 | – | – | – | epochs 3, steps 11 | 1.5 |\n" +
            "| ag_news | tfidf+lr | – | none | 88.1 | 87.1 | – | – | – | epochs 2, steps 11 | 1.5 |\n" +
            "| conll2003 | fine-tune | mini | pretrained | – | – | 70.0 | −5.0 | – | epochs 2, steps 11 | 1.5 |\n" +
            "| conll2003 | fine-tune | mini | random | – | – | 75.0 | – | – | epochs 2, steps 10 | 1.5 |\n";
        Assert.Equal(expected, TaskResultTable.Markdown(rows));

        Directory.CreateDirectory(_root);
        string file = Path.Combine(_root, "results.jsonl");
        File.WriteAllLines(file, rows.Select(r => r.ToJson()).Prepend(""));
        var (code, stdout, _) = CliRun.Invoke("results-table", file);
        Assert.Equal(0, code);
        Assert.Equal(expected, stdout);
    }

    // A domain-adapted copy (another directory, same model type and configuration) has no random-init row of its own: it is
    // compared with the one random-init row of its model type, task, method, seed and budget — and with none when two could be meant.
    [Fact]
    public void MarkdownTableComparesAnAdaptedModelWithTheOnlyRandomInitRowOfItsModelType()
    {
        var rows = new[]
        {
            Row("ag_news", "fine-tune", "/m/mini", "pretrained", 0.8776),
            Row("ag_news", "fine-tune", "/m/mini", "random", 0.8774),
            Row("ag_news", "fine-tune", "/runs/adapted", "pretrained", 0.8806),
            Row("ag_news", "fine-tune", "/runs/adapted", "pretrained", 0.8906, epochs: 3),
        };
        var table = TaskResultTable.Markdown(rows).Split('\n');
        Assert.StartsWith("| ag_news | fine-tune | adapted | pretrained | 88.1 | 87.1 | – | +0.3 |", table[4]);
        Assert.StartsWith("| ag_news | fine-tune | adapted | pretrained | 89.1 | 88.1 | – | – |", table[5]);   // no control with 3 epochs

        var ambiguous = rows.Append(Row("ag_news", "fine-tune", "/m/other-mini", "random", 0.86)).ToArray();
        Assert.Contains("| ag_news | fine-tune | adapted | pretrained | 88.1 | 87.1 | – | – |", TaskResultTable.Markdown(ambiguous));
        Assert.Contains("| ag_news | fine-tune | mini | pretrained | 87.8 | 86.8 | – | 0.0 |", TaskResultTable.Markdown(ambiguous));
    }
}
