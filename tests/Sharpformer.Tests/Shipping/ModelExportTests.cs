using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tests.Models;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Shipping;

/// <summary>
/// <see cref="ModelExport"/>: the exported folder holds exactly the tensors transformers 4.30.2 writes for the class (the
/// fixtures were written by it), stored as F16, and reloads to outputs within f16 rounding of the float32 model.
/// </summary>
/// <remarks>
/// Tolerance of the f16 round trip: every weight is rounded to 11 significant bits (relative error ≤ 2⁻¹¹ ≈ 4.9e-4). A logit's
/// error then scales with the sum of |weight × activation| behind it, not with the logit itself, so a near-zero logit can move
/// by ~1e-2 (the fixtures' weights are drawn with std 0.2, ten times BERT's): |f16 − f32| ≤ 3e-2 + 3e-3·|f32| is asserted
/// (measured worst on the fixtures: 1.1e-2 MLM, 4.7e-3 token classification). bf16 keeps 8 bits (2⁻⁸ ≈ 3.9e-3): 8× that
/// (measured 4.3e-2).
/// </remarks>
public sealed class ModelExportTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-export-").FullName;

    // f16 round-trip tolerance on logits (see the remarks); bf16 gets 8× as much.
    const double Atol = 3e-2, Rtol = 3e-3;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static Dictionary<string, (DType DType, int[] Shape)> Header(string folder)
    {
        using var sd = CheckpointLoader.Load(Path.Combine(folder, "model.safetensors"));
        return sd.Values.ToDictionary(t => t.Name, t => (t.DType, t.CopyShape()));
    }

    static JsonObject Config(string folder) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;

    [Theory]
    [InlineData("bert-tiny-uncased-mlm", "BertForMaskedLM")]
    [InlineData("bert-tiny-uncased-tokcls", "BertForTokenClassification")]
    public void F16Export_HasExactlyTheTensorNamesAndShapesTransformersWritesForTheClass_AsF16(string fixture, string architecture)
    {
        var output = Path.Combine(_dir, fixture);
        var result = ModelExport.Export(SharedData.Fixture(fixture), output);
        var hf = Header(SharedData.Fixture(fixture));   // written by transformers 4.30.2 save_pretrained (safetensors)
        var ours = Header(output);
        Assert.Equal(hf.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, (dtype, shape)) in hf)
        {
            Assert.Equal(shape, ours[name].Shape);
            Assert.Equal(dtype == DType.F32 ? DType.F16 : dtype, ours[name].DType);   // position_ids stays I64
        }
        // BertForMaskedLM: the decoder is tied to the word embeddings and its bias to cls.predictions.bias, so neither is stored.
        if (architecture == "BertForMaskedLM")
        {
            Assert.Contains("cls.predictions.transform.dense.weight", ours.Keys);
            Assert.Contains("cls.predictions.transform.LayerNorm.weight", ours.Keys);
            Assert.Contains("cls.predictions.bias", ours.Keys);
            Assert.DoesNotContain("cls.predictions.decoder.weight", ours.Keys);
            Assert.DoesNotContain(ours.Keys, k => k.StartsWith("bert.pooler.", StringComparison.Ordinal));
        }
        else Assert.Contains("classifier.weight", ours.Keys);
        Assert.Equal(architecture, result.Architecture);
        Assert.Equal(hf.Where(h => h.Value.DType == DType.F32).Sum(h => h.Value.Shape.Aggregate(1L, (a, d) => a * d)), result.Parameters);

        // config.json: the same keys as transformers' (its version stamp aside), the class, the labels, and torch_dtype float16.
        var hfConfig = Config(SharedData.Fixture(fixture));
        var config = Config(output);
        Assert.Equal(hfConfig.Select(p => p.Key).Order(StringComparer.Ordinal), config.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(architecture, (string?)config["architectures"]![0]);
        Assert.Equal("float16", (string?)config["torch_dtype"]);
        Assert.True(JsonNode.DeepEquals(hfConfig["id2label"], config["id2label"]));
        Assert.True(JsonNode.DeepEquals(hfConfig["label2id"], config["label2id"]));
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "README.md" }) Assert.True(File.Exists(Path.Combine(output, f)), f);
        Assert.Equal(["tokenizer.json"], result.MissingTokenizerFiles);   // the fixtures have only the slow tokenizer's files
    }

    [Theory]
    [InlineData("bert-tiny-uncased-mlm", "f16")]
    [InlineData("bert-tiny-uncased-tokcls", "f16")]
    [InlineData("bert-tiny-uncased-tokcls", "bf16")]
    public void ReloadedExport_GivesTheFloat32ModelsLogitsWithinRoundingOfItsDType(string fixture, string dtype)
    {
        var output = Path.Combine(_dir, fixture + dtype);
        ModelExport.Export(SharedData.Fixture(fixture), output, new ModelExportOptions { DType = dtype == "bf16" ? DType.BF16 : DType.F16 });
        var f32 = AutoModel.FromPretrained(SharedData.Fixture(fixture));
        var half = AutoModel.FromPretrained(output);
        Assert.True(half.LoadReport!.IsComplete, half.LoadReport.ToString());
        double scale = dtype == "bf16" ? 8 : 1, worst = 0, worstRatio = 0;
        string where = "";
        foreach (var c in FixtureModels.Expected(fixture).Cases)
        {
            var expected = f32.Run(c.Input).Logits!.Contiguous().ToArray();
            var actual = half.Run(c.Input).Logits!.Contiguous().ToArray();
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                double diff = Math.Abs(expected[i] - actual[i]), ratio = diff / (scale * (Atol + Rtol * Math.Abs(expected[i])));
                worst = Math.Max(worst, diff);
                if (ratio > worstRatio) (worstRatio, where) = (ratio, $"{c.Name}[{i}]: {dtype} {actual[i]} vs f32 {expected[i]}");
            }
        }
        Assert.True(worstRatio <= 1, $"beyond the tolerance: {where} (largest |Δ| {worst:G3})");
        Assert.True(worst > 0, "the export changed no logit: the weights were not stored at reduced precision");
    }

    [Fact]
    public void MiniSizedMaskedLM_ExportsUnder25MB_AsTwoBytesPerParameter()
    {
        // The mini BERT: 4 layers, hidden 256, 4 heads, FFN 1024, WordPiece vocabulary of 16k, 128 positions.
        var model = AutoModel.FromConfig(PretrainingConfigs.Bert("mini", 16_000, 128));
        var source = Path.Combine(_dir, "mini-f32");
        model.SavePretrained(source);
        File.WriteAllLines(Path.Combine(source, "vocab.txt"), Enumerable.Range(0, 16_000).Select(i => i switch { 0 => "[PAD]", 100 => "[UNK]", 101 => "[CLS]", 102 => "[SEP]", 103 => "[MASK]", _ => $"w{i}" }));
        var result = ModelExport.Export(source, Path.Combine(_dir, "mini-f16"));
        long parameters = model.NamedParameters().Select(p => p.Parameter).Distinct().Sum(p => (long)p.Value.Size);
        Assert.Equal(parameters, result.Parameters);
        Assert.Equal(7_371_136, parameters);
        Assert.InRange(result.WeightBytes - 2 * parameters, 128 * 8, 128 * 8 + 16_384);   // + position_ids (I64) + the JSON header
        Assert.True(result.WeightBytes < 25_000_000, $"{result.WeightBytes} bytes");
    }

    [Fact]
    public void CheckpointOfARun_NeedsAConfig_TakesTheRunsTokenizer_AndLeavesTheTrainerStateBehind()
    {
        // A pretraining run's layout: tokenizer/, checkpoint-<step>/ (weights + optimizer state, no config), metrics.jsonl.
        var run = Path.Combine(_dir, "run");
        var checkpoint = Path.Combine(run, "checkpoint-20");
        Directory.CreateDirectory(checkpoint);
        Directory.CreateDirectory(Path.Combine(run, Pretraining.TokenizerSubdirectory));
        File.Copy(SharedData.Fixture("bert-tiny-uncased-mlm", "model.safetensors"), Path.Combine(checkpoint, "model.safetensors"));
        File.WriteAllText(Path.Combine(checkpoint, "optimizer.bin"), "state");
        File.WriteAllText(Path.Combine(checkpoint, "trainer_state.json"), "{}");
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(SharedData.Fixture("bert-tiny-uncased-mlm", f), Path.Combine(run, Pretraining.TokenizerSubdirectory, f));
        File.WriteAllLines(Path.Combine(run, ModelCard.MetricsFile),
        [
            """{"kind":"log","step":10,"epoch":0.1,"train_loss":7.5,"learning_rate":0.0001,"grad_norm":1.0,"samples_per_s":3.0}""",
            """{"kind":"eval","epoch":0.1,"step":10,"train_loss":7.5,"eval_loss":2.0,"eval_accuracy":0.25,"eval_samples_per_s":9.0,"samples_per_s":3.0}""",
            """{"kind":"log","step":20,"epoch":0.2,"train_loss":6.25,"learning_rate":0.0001,"grad_norm":1.0,"samples_per_s":3.0}""",
            """{"kind":"eval","epoch":0.3,"step":30,"train_loss":5.0,"eval_loss":1.0,"eval_accuracy":0.5,"eval_samples_per_s":9.0,"samples_per_s":3.0}""",
        ]);
        var output = Path.Combine(_dir, "shipped");

        var e = Assert.Throws<ModelExportException>(() => ModelExport.Export(checkpoint, output));
        Assert.Contains("config.json", e.Message);

        ModelExport.Export(checkpoint, output, new ModelExportOptions { Config = SharedData.Fixture("bert-tiny-uncased-mlm", "config.json"), Card = new ModelCardOptions { TokensPerStep = 4096 } });
        Assert.Equal(["README.md", "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"],
            Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(File.ReadAllText(SharedData.Fixture("bert-tiny-uncased-mlm", "vocab.txt")), File.ReadAllText(Path.Combine(output, "vocab.txt")));
        // The card reports the records up to the checkpoint's step only: the eval at step 30 came after it.
        var card = File.ReadAllText(Path.Combine(output, "README.md"));
        Assert.Contains("| optimizer updates | 20 |", card);
        Assert.Contains("| tokens seen | 81,920 (20 updates × 4,096 tokens) |", card);
        Assert.Contains("| training loss (last log, step 20) | 6.2500 |", card);
        Assert.Contains("| evaluation loss (step 10) | 2.0000 |", card);
        Assert.Contains($"| evaluation perplexity = exp(loss) (step 10) | {Math.Exp(2.0):F2} |", card);
        Assert.Contains("| evaluation accuracy (step 10) | 0.2500 |", card);
        Assert.DoesNotContain("0.5000", card);
        Assert.DoesNotContain("## Results", card);
    }

    [Fact]
    public void ModelCard_ShowsTheGivenResultFilesAndNotes_AsWritten()
    {
        var results = Path.Combine(_dir, "conll.json");
        File.WriteAllText(results, """{"task":"conll2003","split":"test","f1":0.8512,"precision":0.84,"recall":0.8627,"examples":3453}""");
        var notes = Path.Combine(_dir, "notes.md");
        File.WriteAllText(notes, "Pretrained on the shared corpus for 2 h on 2 vCPUs.\n");
        var output = Path.Combine(_dir, "ner");
        ModelExport.Export(SharedData.Fixture("bert-tiny-uncased-tokcls"), output,
            new ModelExportOptions { Card = new ModelCardOptions { ResultFiles = [results], NotesFile = notes, Title = "Sharpformer mini NER" } });
        var card = File.ReadAllText(Path.Combine(output, "README.md"));
        Assert.StartsWith("# Sharpformer mini NER\n", card);
        Assert.Contains("| task | split | f1 | precision | recall | examples |", card);
        Assert.Contains("| conll2003 | test | 0.8512 | 0.84 | 0.8627 | 3453 |", card);
        Assert.Contains("Pretrained on the shared corpus for 2 h on 2 vCPUs.", card);
        Assert.Contains("| labels | `O`, `B-PER`, `I-PER`, `B-ORG`, `I-ORG`, `B-LOC`, `I-LOC`, `B-MISC`, `I-MISC` |", card);
        Assert.Contains("./sharpformer ner --model models/ner", card);
    }

    [Fact]
    public void ExportOverAnExistingFolder_IsRefused_UnlessOverwriting_WhichLeavesNoStaleFile()
    {
        var output = Path.Combine(_dir, "out");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "optimizer.bin"), "stale");
        var e = Assert.Throws<ModelExportException>(() => ModelExport.Export(SharedData.Fixture("bert-tiny-uncased-mlm"), output));
        Assert.Contains("not empty", e.Message);
        ModelExport.Export(SharedData.Fixture("bert-tiny-uncased-mlm"), output, new ModelExportOptions { Overwrite = true });
        Assert.False(File.Exists(Path.Combine(output, "optimizer.bin")));
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.Empty(Directory.GetDirectories(_dir, ".out.*"));
    }

    [Fact]
    public void WeightsThatDoNotFillTheArchitecture_AreNotExported()
    {
        // A token-classification config over masked-LM weights: the classifier would be random.
        var source = Path.Combine(_dir, "mixed");
        Directory.CreateDirectory(source);
        File.Copy(SharedData.Fixture("bert-tiny-uncased-mlm", "model.safetensors"), Path.Combine(source, "model.safetensors"));
        File.Copy(SharedData.Fixture("bert-tiny-uncased-tokcls", "config.json"), Path.Combine(source, "config.json"));
        File.Copy(SharedData.Fixture("bert-tiny-uncased-tokcls", "vocab.txt"), Path.Combine(source, "vocab.txt"));
        var e = Assert.Throws<ModelExportException>(() => ModelExport.Export(source, Path.Combine(_dir, "never")));
        Assert.Contains("classifier.", e.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir, "never")));
    }

    [Fact]
    public void Gpt2Export_HasTransformersKeySetAsF16_AndReloadsWithinF16Rounding()
    {
        var output = Path.Combine(_dir, "gpt");
        var result = ModelExport.Export(SharedData.Fixture("gpt2-tiny"), output);
        Assert.Equal("GPT2LMHeadModel", result.Architecture);
        var hf = Header(SharedData.Fixture("gpt2-tiny"));
        var ours = Header(output);
        // transformers writes the causal-mask buffers (attn.bias, attn.masked_bias) of older versions; they are not weights.
        Assert.Equal(hf.Keys.Where(k => !Gpt2Loading.IsIgnoredBuffer(k)).Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        Assert.All(ours.Values, v => Assert.Equal(DType.F16, v.DType));
        foreach (var f in new[] { "vocab.json", "merges.txt", "tokenizer.json", "generation_config.json" }) Assert.True(File.Exists(Path.Combine(output, f)), f);
        var f32 = Gpt2LMHeadModel.FromPretrained(SharedData.Fixture("gpt2-tiny"));
        var half = Gpt2LMHeadModel.FromPretrained(output);
        var input = CausalLMInput.FromIds([5, 17, 42, 99, 3], [8, 8, 120, 7, 1]);
        var expected = f32.Forward(input).Logits.Contiguous().ToArray();
        var actual = half.Forward(input).Logits.Contiguous().ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= Atol + Rtol * Math.Abs(expected[i]), $"logit {i}: f16 {actual[i]} vs f32 {expected[i]}");
    }

    [Fact]
    public void G2PExport_KeepsTheVocabularyAndPronouncesAsTheFloat32Model()
    {
        G2PEntry[] entries = [new("cab", ["K", "AE", "B"]), new("bad", ["B", "AE", "D"]), new("dab", ["D", "AE", "B"])];
        var vocab = G2PVocabulary.Build(entries);
        var source = Path.Combine(_dir, "g2p");
        G2PTraining.Save(new BahdanauSeq2Seq(new Seq2SeqConfig(vocab.Count, 8, 8, 16, 8), seed: 3), vocab, source);
        var output = Path.Combine(_dir, "g2p-f16");
        var result = ModelExport.Export(source, output);
        Assert.Equal("BahdanauSeq2Seq", result.Architecture);
        Assert.Equal(["README.md", "config.json", "model.safetensors", G2PVocabulary.FileName], Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.All(Header(output).Values, v => Assert.Equal(DType.F16, v.DType));
        var (m32, v32) = G2PTraining.Load(source);
        var (m16, v16) = G2PTraining.Load(output);
        var words = entries.Select(e => e.Word).ToList();
        var p32 = G2PTraining.Predict(m32, v32, words, beamWidth: 1);
        var p16 = G2PTraining.Predict(m16, v16, words, beamWidth: 1);
        for (int i = 0; i < words.Count; i++)
        {
            Assert.Equal(p32[i].Best.Phonemes, p16[i].Best.Phonemes);
            Assert.Equal(p32[i].Best.Score, p16[i].Best.Score, 0.01);
        }
    }
}
