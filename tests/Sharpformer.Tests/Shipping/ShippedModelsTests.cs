using Sharpformer.Hub;

namespace Sharpformer.Tests.Shipping;

/// <summary>
/// Default models: <see cref="ShippedModels"/> finds <c>models/&lt;name&gt;</c> above a start directory or in the folder
/// SHARPFORMER_MODELS names, and says which model is expected where when it is missing; the CLI verbs use it when --model is absent.
/// </summary>
public sealed class ShippedModelsTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("sf-shipped-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    string PlaceModel(string modelsFolder, string name, string fixture)
    {
        var dir = Path.Combine(modelsFolder, name);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(SharedData.Fixture(fixture)).Where(f => Path.GetFileName(f) != "expected.json"))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [Fact]
    public void EachTaskHasItsDefaultModelName()
    {
        Assert.Equal("sharpformer-mini-ner", ShippedModels.DefaultName(ShippedTask.Ner));
        Assert.Equal("sharpformer-mini-uncased", ShippedModels.DefaultName(ShippedTask.FillMask));
        Assert.Equal("sharpformer-mini-uncased", ShippedModels.DefaultName(ShippedTask.Features));
        Assert.Equal("sharpformer-g2p", ShippedModels.DefaultName(ShippedTask.G2P));
        Assert.Equal("sharpformer-mini-gpt", ShippedModels.DefaultName(ShippedTask.Generate));
    }

    [Fact]
    public void ModelsFolderIsFoundWalkingUpFromAStartDirectory_NearestFirst()
    {
        var clone = Path.Combine(_root, "clone");
        var nested = Directory.CreateDirectory(Path.Combine(clone, "src", "Sharpformer.Cli", "bin")).FullName;
        var expected = PlaceModel(Path.Combine(clone, "models"), ShippedModels.MiniNer, "bert-tiny-uncased-tokcls");
        PlaceModel(Path.Combine(_root, "models"), ShippedModels.MiniNer, "bert-tiny-uncased-tokcls");   // farther up: not taken
        var search = new ShippedModelSearch(null, [nested]);
        Assert.Equal(expected, ShippedModels.Resolve(ShippedTask.Ner, search));
        Assert.Equal([Path.Combine(clone, "models"), Path.Combine(_root, "models")], ShippedModels.CandidateFolders(search).Take(2));
    }

    [Fact]
    public void AFolderWithoutConfigJson_IsNotAModel_AndTheSearchGoesOn()
    {
        var inner = Directory.CreateDirectory(Path.Combine(_root, "a", "models", ShippedModels.MiniNer)).FullName;   // half-copied: no config.json
        var expected = PlaceModel(Path.Combine(_root, "models"), ShippedModels.MiniNer, "bert-tiny-uncased-tokcls");
        Assert.Equal(expected, ShippedModels.Resolve(ShippedTask.Ner, new ShippedModelSearch(null, [Path.Combine(_root, "a")])));
        Assert.True(Directory.Exists(inner));
    }

    [Fact]
    public void EnvironmentVariable_NamesTheFolder_AndThenNothingElseIsSearched()
    {
        var clone = Path.Combine(_root, "clone");
        PlaceModel(Path.Combine(clone, "models"), ShippedModels.MiniNer, "bert-tiny-uncased-tokcls");
        var other = Path.Combine(_root, "elsewhere");
        var expected = PlaceModel(other, ShippedModels.MiniNer, "bert-tiny-uncased-tokcls");
        Assert.Equal(expected, ShippedModels.Resolve(ShippedTask.Ner, new ShippedModelSearch(other, [clone])));

        var e = Assert.Throws<ShippedModelNotFoundException>(() => ShippedModels.Resolve(ShippedTask.G2P, new ShippedModelSearch(other, [clone])));
        Assert.Equal([Path.Combine(other, ShippedModels.G2P)], e.LookedIn);
        Assert.Contains("SHARPFORMER_MODELS is set", e.Message);

        var previous = Environment.GetEnvironmentVariable(ShippedModels.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(ShippedModels.EnvironmentVariable, other);
            Assert.Equal(other, ShippedModelSearch.FromEnvironment().ModelsDirectory);
        }
        finally { Environment.SetEnvironmentVariable(ShippedModels.EnvironmentVariable, previous); }
    }

    [Fact]
    public void MissingModel_IsATypedErrorNamingTheModelWhereItWasExpectedAndHowToMakeIt()
    {
        Directory.CreateDirectory(Path.Combine(_root, "models"));
        var e = Assert.Throws<ShippedModelNotFoundException>(() => ShippedModels.Resolve(ShippedTask.Ner, new ShippedModelSearch(null, [_root])));
        Assert.Equal(ShippedModels.MiniNer, e.ModelName);
        Assert.Contains(Path.Combine(_root, "models", ShippedModels.MiniNer, "config.json"), e.Message);
        Assert.Contains("--model DIR", e.Message);
        Assert.Contains("sharpformer export", e.Message);
        Assert.Contains("train token-classifier", e.Message);
    }

    [Theory]
    [InlineData("simple")]
    [InlineData("none")]
    public void NerWithoutModel_UsesTheShippedModel_AndFindsWhatItFindsWithModel(string aggregation)
    {
        var modelDir = PlaceModel(Path.Combine(_root, "models"), ShippedModels.MiniNer, "bert-tiny-uncased-tokcls");
        var search = new ShippedModelSearch(null, [Directory.CreateDirectory(Path.Combine(_root, "work")).FullName]);
        string[] texts = ["My name is Wolfgang and I live in Berlin.", "Angela Merkel met Emmanuel Macron in Paris on Tuesday."];
        var (withCode, withModel, withErr) = Run(["ner", "--model", modelDir, "--json", "--aggregation", aggregation, .. texts], search);
        var (code, without, err) = Run(["ner", "--json", "--aggregation", aggregation, .. texts], search);
        Assert.True(withCode == 0, withErr);
        Assert.True(code == 0, err);
        Assert.Equal(withModel, without);
        Assert.Contains("\"entity", without);   // the tiny fixture tags some words (untrained, but not nothing)
    }

    [Fact]
    public void NerWithoutModel_WhenNoneIsShipped_FailsWithOneLineSayingWhatToDo()
    {
        var (code, output, err) = Run(["ner", "Berlin"], new ShippedModelSearch(Path.Combine(_root, "no-models"), []));
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.StartsWith("error: no --model given and the default model 'sharpformer-mini-ner' was not found", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void ServeWithoutModel_TakesTheTasksShippedModel_AndWithoutATaskAsksForOne()
    {
        var search = new ShippedModelSearch(Path.Combine(_root, "no-models"), []);
        var (code, _, err) = Run(["serve", "--task", "g2p"], search);
        Assert.Equal(1, code);
        Assert.StartsWith("error: no --model given and the default model 'sharpformer-g2p' was not found", err);
        (code, _, err) = Run(["serve"], search);
        Assert.Equal(1, code);
        Assert.StartsWith("error: give --model DIR, or --task ner|embed|fill-mask|generate|g2p", err);
    }

    [Fact]
    public void ExportVerb_WritesTheFolderThatTheVerbsFindByDefault()
    {
        var models = Path.Combine(_root, "models");
        var (code, output, err) = Run(["export", "--model", SharedData.Fixture("bert-tiny-uncased-mlm"), "--output", Path.Combine(models, ShippedModels.MiniUncased)],
            new ShippedModelSearch(null, [_root]));
        Assert.True(code == 0, err);
        Assert.StartsWith("BertForMaskedLM: ", output);
        Assert.Contains("as F16", output);
        Assert.Contains("warning: the tokenizer folder has no tokenizer.json", err);
        var (fillCode, fill, fillErr) = Run(["fill-mask", "--json", "the capital of france is [MASK]."], new ShippedModelSearch(null, [_root]));
        Assert.True(fillCode == 0, fillErr);
        Assert.Contains("\"token_str\"", fill);
    }

    static (int Code, string Out, string Err) Run(string[] args, ShippedModelSearch search)
    {
        var output = new StringWriter(); var error = new StringWriter();
        int code = Sharpformer.Cli.CliHost.Invoke(args, new StringReader(""), output, error, search);
        return (code, output.ToString(), error.ToString());
    }
}
