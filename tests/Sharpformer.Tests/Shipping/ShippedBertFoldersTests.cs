using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Hub;
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
}
