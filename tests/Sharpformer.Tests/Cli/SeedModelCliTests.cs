using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Sharpformer.Cli;
using Sharpformer.Cli.Commands;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Serving;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Cli;

/// <summary>A seed model saved by the training workflow (as <c>train seed-agnews</c> saves it) works with the pipeline verbs.</summary>
public sealed class SeedModelCliTests : IDisposable
{
    static readonly string[] Labels = ["sports", "tech"];
    readonly string _dir = Directory.CreateTempSubdirectory("sf-seedcli-").FullName;

    public SeedModelCliTests()
    {
        string[][] words = [["ball", "goal", "team", "match", "score"], ["chip", "code", "cpu", "software", "data"]];
        var rng = new Random(0);
        var train = Enumerable.Range(0, 32).Select(i =>
            new TextExample(string.Join(' ', Enumerable.Range(0, 5).Select(_ => words[i % 2][rng.Next(5)])), i % 2)).ToList();
        SeedTextClassifier.Train(train, null, new LabelSet(Labels), _dir,
            new SeedTrainingOptions { Epochs = 2, BatchSize = 8, MaxTokens = 40, SequenceLength = 16, Seed = 1, DisableProgressBar = true });
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static (int Code, string Out, string Err) Cli(params string[] args) => CliRun.Invoke(args);

    [Fact]
    public void Classify_SeedModel_ScoresEveryLabel_SumToOne_AndMatchTheModel()
    {
        var (code, stdout, stderr) = Cli("classify", "--model", _dir, "--json", "--top-k", "0", "goal team ball", "cpu code chip!");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        var model = SeedTransformer.Load(_dir);
        var vectorizer = Sharpformer.Tokenization.TextVectorizer.Load(_dir);
        string[] texts = ["goal team ball", "cpu code chip!"];
        for (int i = 0; i < 2; i++)
        {
            var scores = JsonDocument.Parse(lines[i]).RootElement.EnumerateArray()
                .ToDictionary(e => e.GetProperty("label").GetString()!, e => e.GetProperty("score").GetDouble());
            Assert.Equal(Labels.Order(), scores.Keys.Order());
            Assert.Equal(1.0, scores.Values.Sum(), 1e-5);
            // The pipeline pads to the model's sequence length as training did, so it equals a direct forward of the vectorized text.
            var probs = model.Forward(vectorizer.Vectorize(texts[i]), 1).Probabilities();
            for (int k = 0; k < 2; k++) Assert.Equal(probs[k], scores[Labels[k]], 1e-5);
        }
    }

    [Fact]
    public void Summary_SeedModel_CountsTheModelsParameters()
    {
        var (code, stdout, stderr) = Cli("summary", "--model", _dir);
        Assert.True(code == 0, stderr);
        var total = SeedTransformer.Load(_dir).ParameterCount();
        Assert.Contains($"Total params: {total.ToString("N0", CultureInfo.InvariantCulture)}", stdout);
        Assert.Contains("classifier", stdout);
        var summary = ModelSummary.Of(SeedTransformer.Load(_dir), maxDepth: 1);
        Assert.Equal(total, summary.Rows.Sum(r => r.Parameters));
    }

    [Fact]
    public void Attention_SeedModel_DrawsTheTextsWords()
    {
        var svg = Path.Combine(_dir, "a.svg");
        var (code, stdout, stderr) = Cli("attention", "--model", _dir, "Goal, team!", "--out", svg);
        Assert.True(code == 0, stderr);
        Assert.Contains("2 tokens, 1 layers × 2 heads", stdout);
    }

    [Fact]
    public async Task Serve_SeedModel_ClassifiesOverHttp()
    {
        Assert.Equal(ServingTask.Classify, ServeCommand.TaskOf(_dir));
        var (server, client) = await Serving.ServerTests.Start(PipelineBackend.Load(_dir, ServeCommand.TaskOf(_dir)));
        await using var _ = server;
        using var response = await client.PostAsJsonAsync("/v1/classify", new { inputs = new[] { "goal ball" }, top_k = 2 });
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var result = body.GetProperty("results")[0];
        Assert.Equal(Labels.Order(), result.EnumerateArray().Select(e => e.GetProperty("label").GetString()).Order());
        Assert.Equal(1.0, result.EnumerateArray().Sum(e => e.GetProperty("score").GetDouble()), 1e-5);
    }

    [Fact]
    public void Ner_SeedModel_IsRefusedWithWhatItCanDo()
    {
        var (code, _, stderr) = Cli("ner", "--model", _dir, "goal");
        Assert.Equal(1, code);
        Assert.Contains("only classifies texts", stderr);
    }
}
