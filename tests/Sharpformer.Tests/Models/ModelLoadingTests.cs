using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

/// <summary>Checkpoint → module loading (prefixes, legacy names, tied weights, reports, errors) and save → load round trips.</summary>
public sealed class ModelLoadingTests : IDisposable
{
    readonly string _temp = Path.Combine(Path.GetTempPath(), "sf-models-" + Guid.NewGuid().ToString("N"));

    public ModelLoadingTests() => Directory.CreateDirectory(_temp);
    public void Dispose() { if (Directory.Exists(_temp)) Directory.Delete(_temp, recursive: true); }

    static string Fixture(string dir) => SharedData.Fixture(dir);

    [Theory]
    [InlineData("bert-tiny-uncased-seqcls", "BertForSequenceClassification", typeof(BertForSequenceClassification))]
    [InlineData("bert-tiny-uncased-tokcls", "BertForTokenClassification", typeof(BertForTokenClassification))]
    [InlineData("bert-tiny-uncased-mlm", "BertForMaskedLM", typeof(BertForMaskedLM))]
    [InlineData("distilbert-tiny-uncased-seqcls", "DistilBertForSequenceClassification", typeof(DistilBertForSequenceClassification))]
    [InlineData("distilbert-tiny-uncased-tokcls", "DistilBertForTokenClassification", typeof(DistilBertForTokenClassification))]
    public void FactoryBuildsConfigArchitectureAndLoadsEveryParameter(string dir, string arch, Type type)
    {
        var model = FixtureModels.Model(dir, baseModel: false);
        Assert.IsType(type, model);
        Assert.Equal(arch, model.Architecture);
        Assert.False(model.Training);
        var report = model.LoadReport!;
        Assert.True(report.IsComplete, string.Join("\n", report.Warnings()));
        Assert.Equal(model.NamedParameters().Select(p => p.Name).Order(), report.Loaded.Order());
        Assert.Empty(report.Warnings());
    }

    [Fact]
    public void ParameterNamesAreHuggingFaceKeys()
    {
        var names = FixtureModels.Model("bert-tiny-uncased-seqcls", false).NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains("bert.embeddings.word_embeddings.weight", names);
        Assert.Contains("bert.encoder.layer.0.attention.self.query.weight", names);
        Assert.Contains("bert.encoder.layer.1.output.LayerNorm.bias", names);
        Assert.Contains("bert.pooler.dense.weight", names);
        Assert.Contains("classifier.weight", names);
        var distil = FixtureModels.Model("distilbert-tiny-uncased-seqcls", false).NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains("distilbert.transformer.layer.0.attention.q_lin.weight", distil);
        Assert.Contains("distilbert.transformer.layer.1.ffn.lin2.bias", distil);
        Assert.Contains("pre_classifier.weight", distil);
        // HF's safetensors tensor list (minus the position_ids buffer) is exactly our parameter list.
        var exp = FixtureModels.Expected("bert-tiny-uncased-seqcls").Root.GetProperty("bin_vs_safetensors").GetProperty("safetensors_tensor_names")
            .EnumerateArray().Select(e => e.GetString()!).Where(n => !n.EndsWith("position_ids")).Order();
        Assert.Equal(exp, names.Order());
    }

    [Fact]
    public void HeadCheckpointIntoBareModelStripsPrefixAndReportsTheHead()
    {
        var model = FixtureModels.Model("bert-tiny-uncased-tokcls", baseModel: true);
        var r = model.LoadReport!;
        Assert.IsType<BertModel>(model);
        Assert.Empty(r.Missing);
        Assert.Equal(["classifier.bias", "classifier.weight"], r.Unexpected.Order());
        Assert.Contains("bert.embeddings.position_ids", r.Ignored);
        Assert.Contains("embeddings.word_embeddings.weight", r.Loaded);
    }

    [Fact]
    public void MlmDecoderIsTiedToWordEmbeddings()
    {
        var model = (BertForMaskedLM)FixtureModels.Model("bert-tiny-uncased-mlm", false);
        Assert.True(model.LoadReport!.IsComplete);
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.DoesNotContain("cls.predictions.decoder.weight", names);
        Assert.Contains("cls.predictions.bias", names);
        // The decoder reads the live embedding matrix: the MLM logits are h·Eᵀ + b (checked against HF in the parity tests).
        var tensors = model.ToCheckpointTensors().Select(t => t.Name).ToList();
        Assert.DoesNotContain("cls.predictions.decoder.weight", tensors);
        Assert.DoesNotContain("cls.predictions.decoder.bias", tensors);
    }

    [Fact]
    public void TiedAliasesInACheckpointFillTheRealParameters()
    {
        // A .bin of BertForMaskedLM holds decoder.weight/decoder.bias as aliases; if only the aliases are present they must be used.
        var src = FixtureModels.Model("bert-tiny-uncased-mlm", false);
        var tensors = src.ToCheckpointTensors().Where(t => t.Name != "cls.predictions.bias")
            .Append(Renamed(src.ToCheckpointTensors().Single(t => t.Name == "cls.predictions.bias"), "cls.predictions.decoder.bias"))
            .Append(Renamed(src.ToCheckpointTensors().Single(t => t.Name == "bert.embeddings.word_embeddings.weight"), "cls.predictions.decoder.weight"))
            .ToList();
        var model = new BertForMaskedLM(((BertForMaskedLM)src).Config, seed: 5);
        var report = model.LoadCheckpoint(new StateDict(tensors));
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Equal(["cls.predictions.decoder.bias", "cls.predictions.decoder.weight"], report.Tied.Order());
        Assert.Equal(((BertForMaskedLM)src).OutputBias!.Value.ToArray(), model.OutputBias!.Value.ToArray());
    }

    static CheckpointTensor Renamed(CheckpointTensor t, string name) =>
        t.DType == DType.I64 ? CheckpointTensor.FromInt64(name, t.ToInt64(), t.CopyShape()) : CheckpointTensor.FromFloat32(name, t.ToFloat32(), t.CopyShape());

    [Fact]
    public void LegacyGammaBetaAndUnprefixedBaseKeysLoadIntoAHeadModel()
    {
        // A bare-encoder checkpoint with TF-era LayerNorm names, loaded into a classifier: prefix added, gamma/beta mapped,
        // the head reported missing and freshly initialised (normal(0, initializer_range), bias 0).
        var bare = (BertModel)FixtureModels.Model("bert-tiny-uncased-seqcls", baseModel: true);
        var tensors = bare.ToCheckpointTensors().Select(t => t.Name.EndsWith("LayerNorm.weight") ? Renamed(t, t.Name[..^"weight".Length] + "gamma")
            : t.Name.EndsWith("LayerNorm.bias") ? Renamed(t, t.Name[..^"bias".Length] + "beta") : t).ToList();
        Assert.Contains(tensors, t => t.Name == "embeddings.LayerNorm.gamma");
        var model = new BertForSequenceClassification(bare.Config, seed: 3);
        var report = model.LoadCheckpoint(new StateDict(tensors));
        Assert.Equal(["classifier.bias", "classifier.weight"], report.Missing.Order());
        Assert.Empty(report.Unexpected);
        Assert.Equal(bare.Embeddings.LayerNorm.Weight.Value.ToArray(), model.Bert.Embeddings.LayerNorm.Weight.Value.ToArray());
        Assert.Equal(bare.Pooler!.Dense.Weight.Value.ToArray(), model.Bert.Pooler!.Dense.Weight.Value.ToArray());
        Assert.All(model.Classifier!.Bias!.Value.ToArray(), b => Assert.Equal(0f, b));
        var w = model.Classifier!.Weight.Value.ToArray();
        double std = Math.Sqrt(w.Select(x => (double)x * x).Average());
        Assert.InRange(std, 0.2 * 0.75, 0.2 * 1.25); // initializer_range 0.2, 256 samples
        Assert.Contains(report.Warnings(), s => s.Contains("classifier.weight") && s.Contains("newly initialized"));
    }

    [Fact]
    public void ShapeMismatchThrowsNamingTheKeyUnlessIgnored()
    {
        var dir = CopyFixture("bert-tiny-uncased-seqcls");
        var ex = Assert.Throws<CheckpointShapeMismatchException>(() => AutoModel.FromPretrained(dir, new ModelLoadOptions { NumLabels = 3 }));
        Assert.Contains("classifier.weight", ex.Message);
        Assert.Contains("[4, 64]", ex.Message);
        var model = (BertForSequenceClassification)AutoModel.FromPretrained(dir, new ModelLoadOptions { NumLabels = 3, IgnoreMismatchedSizes = true });
        Assert.Equal(3, model.NumLabels);
        Assert.Equal(["classifier.bias", "classifier.weight"], model.LoadReport!.ShapeMismatched.Select(m => m.Key).Order());
        Assert.Equal(3, model.Run(FixtureModels.Expected("bert-tiny-uncased-seqcls").Cases[0].Input).Logits!.Dim(1));
        // Only the mismatched head is initialised (HF's fast init): N(0, initializer_range) weights, zero bias.
        Assert.All(model.Classifier!.Bias!.Value.ToArray(), b => Assert.Equal(0f, b));
        var w = model.Classifier!.Weight.Value.ToArray();
        Assert.InRange(Math.Sqrt(w.Average(x => (double)x * x)), 0.2 * 0.7, 0.2 * 1.3);
        Assert.Equal(["classifier.bias", "classifier.weight"], model.LoadReport.ShapeMismatched.Select(m => m.ParameterName).Order());
        var named = AutoModel.FromPretrained(dir, new ModelLoadOptions { Labels = ["neg", "neu", "pos"], IgnoreMismatchedSizes = true });
        Assert.Equal(["neg", "neu", "pos"], named.Labels);
        Assert.Equal(3, ((EncoderWithHead)named).NumLabels);
    }

    [Fact]
    public void Loading_DrawsRandomNumbersOnlyForWeightsTheCheckpointLacks()
    {
        // The only fresh tensors are the resized classifier's: its weight must be the very first normals of Random(seed),
        // so no number was drawn for the encoder weights the checkpoint supplies.
        var dir = CopyFixture("bert-tiny-uncased-seqcls");
        var model = (BertForSequenceClassification)AutoModel.FromPretrained(dir, new ModelLoadOptions { NumLabels = 3, IgnoreMismatchedSizes = true, Seed = 7 });
        var expected = new float[3 * 64];
        WeightInit.Normal(model.Config.InitializerRange).Fill(expected, new Random(7));
        Assert.Equal(expected, model.Classifier!.Weight.Value.ToArray());
        Assert.Equal(model.NamedParameters().Count() - 2, model.LoadReport!.Loaded.Count);
    }

    [Theory]
    [InlineData("num_hidden_layers", "1000000", "num_hidden_layers")]
    [InlineData("hidden_size", "1000000000", "hidden_size")]
    [InlineData("vocab_size", "2000000000", "vocab_size")]
    public void AbsurdConfigSizesAreRefusedBeforeAllocationNamingTheKey(string key, string value, string named)
    {
        var dir = CopyFixture("bert-tiny-uncased-seqcls");
        var cfg = Path.Combine(dir, "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(cfg))!.AsObject();
        json[key] = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        if (key == "hidden_size") json["num_attention_heads"] = 1;
        File.WriteAllText(cfg, json.ToJsonString());
        if (key == "vocab_size") File.Delete(Path.Combine(dir, "vocab.txt"));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var ex = Assert.Throws<ConfigException>(() => AutoModel.FromPretrained(dir));
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64L << 20, "refused only after allocating weights");
        Assert.Equal(named, ex.Key);
        Assert.Contains("config.json", ex.Message);
        Assert.Contains(named, ex.Message);
    }

    [Fact]
    public void UnsupportedArchitectureIsATypedErrorNamingIt()
    {
        var dir = CopyFixture("bert-tiny-uncased-seqcls");
        var cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("BertForSequenceClassification", "BertForQuestionAnswering"));
        var ex = Assert.Throws<UnsupportedArchitectureException>(() => AutoModel.FromPretrained(dir));
        Assert.Equal("BertForQuestionAnswering", ex.Architecture);
        Assert.Contains("BertForQuestionAnswering", ex.Message);
        Assert.Contains("config.json", ex.Message);
        Assert.Throws<UnsupportedArchitectureException>(() => AutoModel.FromPretrained(dir, new ModelLoadOptions { Architecture = "DistilBertModel" }));
    }

    [Fact]
    public void VocabularyThatDisagreesWithVocabSizeIsATypedErrorNamingTheFile()
    {
        var dir = CopyFixture("bert-tiny-uncased-seqcls");
        var vocab = Path.Combine(dir, "vocab.txt");
        File.WriteAllLines(vocab, File.ReadAllLines(vocab).Take(1000));
        var ex = Assert.Throws<VocabularyMismatchException>(() => AutoModel.FromPretrained(dir));
        Assert.Equal(vocab, ex.VocabFile);
        Assert.Contains("vocab.txt", ex.Message);
        Assert.Contains("30522", ex.Message);
    }

    [Fact]
    public void OutOfRangeInputsAreTypedErrors()
    {
        var model = FixtureModels.Model("bert-tiny-uncased-seqcls", false);
        var ex = Assert.Throws<ModelInputException>(() => model.Run(new EncoderInput([101, 40000, 102], 1, 3)));
        Assert.Contains("40000", ex.Message);
        Assert.Throws<ModelInputException>(() => model.Run(new EncoderInput(new int[129], 1, 129)));
        Assert.Throws<ModelInputException>(() => model.Run(new EncoderInput([101, 102], 1, 2, tokenTypeIds: [0, 2])));
        Assert.Throws<ArgumentException>(() => new EncoderInput([101, 102], 1, 3));
    }

    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("bert-tiny-uncased-mlm")]
    [InlineData("bert-tiny-cased-tokcls")]
    [InlineData("distilbert-tiny-uncased-seqcls")]
    [InlineData("distilbert-tiny-uncased-tokcls")]
    public void SavePretrainedReproducesTheHuggingFaceFilesAndRoundTrips(string dir)
    {
        var model = FixtureModels.Model(dir, false);
        var outDir = Path.Combine(_temp, dir);
        model.SavePretrained(outDir);
        // Same tensors, names, order, header layout and padding as transformers' save_pretrained: byte-identical files.
        Assert.Equal(File.ReadAllBytes(Path.Combine(Fixture(dir), "model.safetensors")), File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(Fixture(dir), "config.json")), File.ReadAllText(Path.Combine(outDir, "config.json")));
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(Fixture(dir), f)), File.ReadAllBytes(Path.Combine(outDir, f)));
        Assert.Empty(Directory.GetDirectories(_temp, ".*tmp*"));

        var reloaded = AutoModel.FromPretrained(outDir);
        Assert.True(reloaded.LoadReport!.IsComplete);
        var a = model.NamedParameters().ToList(); var b = reloaded.NamedParameters().ToList();
        Assert.Equal(a.Select(p => p.Name), b.Select(p => p.Name));
        for (int i = 0; i < a.Count; i++)
            Assert.True(a[i].Parameter.Value.ToArray().AsSpan().SequenceEqual(b[i].Parameter.Value.ToArray()), $"{a[i].Name} differs after save → load");
    }

    [Fact]
    public void SavingOverAnExistingDirectoryReplacesFilesAtomically()
    {
        var model = FixtureModels.Model("distilbert-tiny-uncased-seqcls", false);
        var outDir = Path.Combine(_temp, "out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "config.json"), "stale");
        File.WriteAllText(Path.Combine(outDir, "README.md"), "keep me");
        model.SavePretrained(outDir);
        Assert.StartsWith("{", File.ReadAllText(Path.Combine(outDir, "config.json")));
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(outDir, "README.md")));
        Assert.Single(Directory.GetDirectories(_temp));
    }

    string CopyFixture(string dir)
    {
        var dst = Path.Combine(_temp, "copy-" + dir);
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(Fixture(dir)))
            if (!f.EndsWith("expected.json") && !f.EndsWith(".bin")) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }
}
