using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Hub;
using Sharpformer.Models;
using Sharpformer.Tokenization;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Shipping;

/// <summary>
/// The BERT models shipped in the repository's <c>models/</c> hold what transformers 4.30.2 writes for their class: the same
/// tensor names (layer indices aside) as the shared fixture that transformers saved for that class, the config keys
/// <c>from_pretrained</c> reads, F16 weights that fit the architecture, and the size limit of their issue (≤ 25 MB).
/// </summary>
public sealed partial class ShippedBertFoldersTests
{
    [GeneratedRegex(@"\.layer\.\d+\.")]
    private static partial Regex LayerIndex();


    static SortedSet<string> Names(string folder)
    {
        using var sd = CheckpointLoader.Load(Path.Combine(folder, "model.safetensors"));
        return new SortedSet<string>(sd.Values.Select(t => LayerIndex().Replace(t.Name, ".layer.N.")), StringComparer.Ordinal);
    }

    [Theory]
    [InlineData(ShippedModels.MiniUncased, "bert-tiny-uncased-mlm", "BertForMaskedLM")]
    [InlineData(ShippedModels.MiniNer, "bert-tiny-uncased-tokcls", "BertForTokenClassification")]
    public void ShippedBertFolder_HasTheTensorNamesAndConfigKeysTransformersWritesForItsClass_AsF16WithinTheSizeLimit(
        string name, string fixture, string architecture)
    {
        var folder = Path.Combine(Repository.Root, "models", name);
        Assert.True(Directory.Exists(folder), $"{folder} is not in the repository");
        Assert.Equal(Names(SharedData.Fixture(fixture)), Names(folder));

        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        var hfConfig = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(SharedData.Fixture(fixture), "config.json")))!;
        Assert.Equal(architecture, config["architectures"]![0]!.GetValue<string>());
        Assert.Equal("float16", config["torch_dtype"]!.GetValue<string>());
        foreach (var key in new[] { "model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id" })
        {
            Assert.True(hfConfig.ContainsKey(key), $"the fixture's config lacks {key}");
            Assert.True(config.ContainsKey(key), $"{name}/config.json lacks {key}");
        }

        using (var sd = CheckpointLoader.Load(Path.Combine(folder, "model.safetensors")))
            Assert.All(sd.Values.Where(t => !t.Name.EndsWith("position_ids", StringComparison.Ordinal)), t => Assert.Equal(DType.F16, t.DType));
        Assert.True(new FileInfo(Path.Combine(folder, "model.safetensors")).Length <= 25_000_000, "model.safetensors exceeds 25 MB");
        foreach (var file in new[] { "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md" })
            Assert.True(File.Exists(Path.Combine(folder, file)), $"{name} lacks {file}");
    }

    /// <summary>The shipped NER model scores on CoNLL-2003 test the entity F1 its card reports for the F16 folder (the
    /// <c>shipped-f16-test.json</c> table, written by <c>sharpformer evaluate</c> of that folder): the card is printed with 4
    /// decimals, so the tolerance is half a unit of the last digit.</summary>
    [Fact]
    public void ShippedNerModel_ScoresOnCoNLLTestTheEntityF1ItsCardReports()
    {
        var folder = Path.Combine(Repository.Root, "models", ShippedModels.MiniNer);
        var card = File.ReadAllLines(Path.Combine(folder, "README.md"));
        int table = Array.FindIndex(card, l => l.Trim() == "`shipped-f16-test.json`");
        Assert.True(table >= 0, "the card has no shipped-f16-test.json table");
        int header = Array.FindIndex(card, table, l => l.StartsWith('|'));
        var columns = card[header].Split('|').Select(c => c.Trim()).ToList();
        var values = card[header + 2].Split('|').Select(c => c.Trim()).ToList();
        double expected = double.Parse(values[columns.IndexOf("eval_entity_f1")], System.Globalization.CultureInfo.InvariantCulture);

        var test = Conll.Read(SharedData.DataFile("conll2003", "hf_iob2", "test.txt"));
        var result = Evaluation.EvaluateTokenClassifier(folder, test);
        Assert.Equal(3453, test.Count);
        Assert.InRange(result.Report.Micro.F1, expected - 5e-5, expected + 5e-5);
    }

    /// <summary>
    /// The mini BERT's card reports the run's last held-out evaluation: every 100th line of the cleaned corpus
    /// (../shared/data/pretrain then the train files of AG News, CoNLL-2003 and emotion, as <c>pretrain --task ag_news conll
    /// emotion</c> reads them), packed into 128-token blocks, the first 256, masked by the run's held-out masks (fixed by its
    /// <c>--seed</c>, which the card's command states), masked-token cross-entropy and accuracy. Recomputed here from the
    /// shipped folder. Tolerance 0.01 nats and 0.002 accuracy: the card prints 4 decimals, the run scored fp32 master
    /// weights with bf16 GEMMs (--bf16), the folder holds them rounded to F16 and is scored here in fp32.
    /// </summary>
    [Fact]
    public void ShippedMiniBert_ScoresOnTheHeldOutBlocksTheLossAndAccuracyItsCardReports()
    {
        var folder = Path.Combine(Repository.Root, "models", ShippedModels.MiniUncased);
        var card = File.ReadAllText(Path.Combine(folder, "README.md"));
        double Last(string metric)
        {
            var rows = Regex.Matches(card, @"^\| evaluation " + metric + @" \(step \d+\) \| ([0-9.]+) \|", RegexOptions.Multiline);
            Assert.True(rows.Count > 0, $"the card has no 'evaluation {metric} (step N)' row");
            return double.Parse(rows[^1].Groups[1].Value, CultureInfo.InvariantCulture);
        }
        var seeds = Regex.Matches(card, @"--seed (\d+)");
        Assert.True(seeds.Count > 0, "the card states no --seed");
        int seed = int.Parse(seeds[^1].Groups[1].Value, CultureInfo.InvariantCulture);

        string data = SharedData.Data;
        var (_, heldOut) = Pretraining.SplitCorpus(new PretrainingOptions
        {
            Corpus = [Path.Combine(data, "pretrain")],
            TaskFiles = new[] { TaskText.AgNews, TaskText.Conll, TaskText.Emotion }.Select(t => (t, Corpus.TaskTrainFile(t, data))).ToList(),
        });
        Assert.Equal(4911, heldOut.Count);   // the card's count

        var tokenizer = BertTokenizer.FromDirectory(folder);
        var blocks = MaskedLanguageModeling.GroupTexts(tokenizer, heldOut, 128).Take(256).ToList();
        Assert.Equal(256, blocks.Count);
        var heldOutSet = Pretraining.MaskedLMHeldOut(blocks, MaskedLanguageModeling.ForTokenizer(tokenizer), seed);

        var model = new MaskedLMTrainable((EncoderWithHead)AutoModel.FromPretrained(folder)) { Training = false };
        double lossSum = 0; long masked = 0, right = 0;
        const int Batch = 32;
        for (int i = 0; i < blocks.Count; i += Batch)
        {
            var r = model.Evaluate(heldOutSet.Collate(Enumerable.Range(i, Batch).ToArray()));
            lossSum += r.Loss * r.LossWeight; masked += r.LossWeight;
            for (int b = 0; b < r.Predicted.Count; b++) right += r.Predicted[b].Zip(r.Labels[b]).Count(x => x.First == x.Second);
        }
        Assert.True(masked > 4000, $"only {masked} masked tokens");
        Assert.InRange(lossSum / masked, Last("loss") - 0.01, Last("loss") + 0.01);
        Assert.InRange((double)right / masked, Last("accuracy") - 0.002, Last("accuracy") + 0.002);
    }
}
