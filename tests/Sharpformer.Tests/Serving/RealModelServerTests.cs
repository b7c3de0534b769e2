using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Sharpformer.Pipelines;
using Sharpformer.Serving;
using Sharpformer.Tests.Pipelines;
using Sharpformer.Tests.Visualization;

namespace Sharpformer.Tests.Serving;

/// <summary>The server with the tiny fixture models: answers equal transformers' pipeline records; batching under load.</summary>
public sealed class RealModelServerTests
{
    static PipelineBackend Backend(string dir, ServingTask task, int batch = 32)
    {
        var (tok, model) = PipelineLoader.Load(SharedData.Fixture(dir), task switch
        {
            ServingTask.Classify => PipelineTask.TextClassification, ServingTask.Ner => PipelineTask.TokenClassification,
            ServingTask.FillMask => PipelineTask.FillMask, _ => PipelineTask.FeatureExtraction,
        });
        return new PipelineBackend(task, dir, tok, model, new PipelineOptions { BatchSize = batch });
    }

    static async Task<JsonElement> Post(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task Ner_200ConcurrentRequests_MatchHf_AndAreBatched()
    {
        const string dir = "bert-tiny-uncased-tokcls";
        var (server, client) = await ServerTests.Start(Backend(dir, ServingTask.Ner), new ServerOptions { MaxBatchSize = 16, MaxWaitMs = 10 });
        await using var _ = server;
        var tcp = Fixtures.Expected(dir).GetProperty("token_classification_pipeline");
        var texts = tcp.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Post(client, "/v1/ner", new { inputs = texts[i % texts.Length], aggregation = "average" })));
        for (int i = 0; i < responses.Length; i++)
        {
            var t = i % texts.Length;
            var entities = responses[i].GetProperty("results")[0].Deserialize<List<TokenEntity>>(PipelineJson.Options)!;
            PipelineParityTests.AssertEntities(texts[t], tcp.GetProperty("fast_path_emulated").GetProperty("average")[t], entities);
        }
        var metrics = await client.GetFromJsonAsync<JsonElement>("/metrics");
        Assert.True(metrics.GetProperty("batch_sizes").GetProperty("max_size").GetInt32() > 1);
        Assert.Equal(200, metrics.GetProperty("batch_sizes").GetProperty("items").GetInt64());

        var none = await Post(client, "/v1/ner", new { inputs = texts[1], aggregation = "none" });
        Assert.Equal(tcp.GetProperty("fast_path_emulated").GetProperty("none")[1].GetArrayLength(), none.GetProperty("results")[0].GetArrayLength());
        Assert.Equal(tcp.GetProperty("fast_path_emulated").GetProperty("none")[1][0].GetProperty("index").GetInt32(), none.GetProperty("results")[0][0].GetProperty("index").GetInt32());
    }

    [Fact]
    public async Task Classify_FillMask_Embeddings_WithRealModels()
    {
        {
            const string dir = "distilbert-tiny-uncased-seqcls";
            var (server, client) = await ServerTests.Start(Backend(dir, ServingTask.Classify));
            await using var _ = server;
            var tc = Fixtures.Expected(dir).GetProperty("text_classification_pipeline");
            var texts = tc.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
            var r = await Post(client, "/v1/classify", new { inputs = texts, top_k = 4 });
            for (int i = 0; i < texts.Length; i++)
                RecordedOutputTests.AssertLabels(tc.GetProperty("top_k_none")[i], r.GetProperty("results")[i].Deserialize<List<LabelScore>>(PipelineJson.Options)!);
        }
        {
            const string dir = "bert-tiny-uncased-mlm";
            var (server, client) = await ServerTests.Start(Backend(dir, ServingTask.FillMask));
            await using var _ = server;
            var fm = Fixtures.Expected(dir).GetProperty("mlm").GetProperty("fill_mask_pipeline");
            var r = await Post(client, "/v1/fill-mask", new { inputs = fm.GetProperty("texts")[1].GetString(), top_k = 3 });
            var masks = r.GetProperty("results")[0];
            Assert.Equal(2, masks.GetArrayLength());
            for (int m = 0; m < 2; m++)
            {
                var expected = fm.GetProperty("outputs")[1][m];
                var actual = masks[m].Deserialize<List<FillMaskCandidate>>(PipelineJson.Options)!;
                Assert.Equal(3, actual.Count);
                for (int c = 0; c < 3; c++)
                {
                    Assert.Equal(expected[c].GetProperty("token_str").GetString(), actual[c].TokenStr);
                    Assert.Equal(expected[c].GetProperty("score").GetSingle(), actual[c].Score, 1e-5);
                }
            }
        }
        {
            const string dir = "bert-tiny-uncased-seqcls";
            var (server, client) = await ServerTests.Start(Backend(dir, ServingTask.Embed));
            await using var _ = server;
            var r = await Post(client, "/v1/embeddings", new { input = new[] { "hello world", "hello world" }, model = dir });
            var data = r.GetProperty("data");
            var v0 = data[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(64, v0.Length);
            Assert.Equal(1.0, Math.Sqrt(v0.Sum(x => x * x)), 1e-5);
            Assert.Equal(v0, data[1].GetProperty("embedding").EnumerateArray().Select(e => e.GetDouble()));
            Assert.Equal(4, r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());   // "hello", "world" twice
        }
    }

    [Fact]
    public async Task AModelWithNaNWeights_Gets500WithAJsonError_NotNaNScoresOrMissingEntities()
    {
        foreach (var (dir, task, route) in new[] { ("bert-tiny-uncased-seqcls", ServingTask.Classify, "/v1/classify"), ("bert-tiny-uncased-tokcls", ServingTask.Ner, "/v1/ner") })
        {
            var (tokenizer, model) = PipelineLoader.Load(SharedData.Fixture(dir), task == ServingTask.Classify ? PipelineTask.TextClassification : PipelineTask.TokenClassification);
            var poisoned = new PipelineBackend(task, dir, tokenizer, model);
            var weight = ((ModelPipelineAdapter)model).Model.NamedParameters().Single(p => p.Name == "classifier.weight").Parameter.Value;
            weight.Data.AsSpan(weight.Offset, weight.Size).Fill(float.NaN);
            var log = new StringWriter();
            var (server, client) = await ServerTests.Start(poisoned, log: log);
            await using var _ = server;
            var r = await ServerTests.Post(client, route, """{"inputs": ["Angela Merkel visited Paris.", "Stocks rose today."]}""");
            Assert.Equal(HttpStatusCode.InternalServerError, r.Status);
            Assert.Equal("model_error", r.Body.GetProperty("error").GetProperty("type").GetString());
            Assert.Contains("NaN", r.Body.GetProperty("error").GetProperty("message").GetString());
            Assert.Equal(1, await ServerTests.Count(client, "POST " + route, 500));
            Assert.Contains("model output is not finite", log.ToString());
        }
    }

    [BrowserFact]
    public async Task DemoPage_WithTheRealNerModel_InChromium()
    {
        const string dir = "bert-tiny-cased-tokcls";
        var (server, client) = await ServerTests.Start(Backend(dir, ServingTask.Ner));
        await using var _ = server;
        var text = "Sundar Pichai is the CEO of Google, headquartered in Mountain View, California.";
        var url = client.BaseAddress + "?demo=" + Uri.EscapeDataString(text);
        var dom = Chromium.DumpDom(url, 10_000);
        Assert.Contains("data-done=\"1\"", dom);
        var expected = Fixtures.Expected(dir).GetProperty("token_classification_pipeline").GetProperty("fast_path_emulated").GetProperty("simple")[5];
        Assert.Contains($"{expected.GetArrayLength()} entities", dom);
        var first = expected[0];
        Assert.Contains($">{text[first.GetProperty("start").GetInt32()..first.GetProperty("end").GetInt32()]}<small>{first.GetProperty("entity_group").GetString()}</small></mark>", dom);
        int tokens = Sharpformer.Tokenization.BertTokenizer.FromDirectory(SharedData.Fixture(dir)).Encode(text).Length;
        Assert.Equal(tokens * tokens, System.Text.RegularExpressions.Regex.Matches(dom, "<rect ").Count);
        var png = Chromium.Screenshot(url, Path.Combine(Directory.CreateTempSubdirectory("sf-serve-real-").FullName, "demo.png"), 1100, 900, 10_000);
        var img = PngImage.Read(png);
        Assert.True(img.DistinctColors() > 30);
        Assert.True(img.FractionMatching((r, g, b) => b - r >= 15) > 0.02);   // the heatmap
    }
}
