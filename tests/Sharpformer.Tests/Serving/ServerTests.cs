using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Sharpformer.Serving;
using Sharpformer.Tests.Visualization;

namespace Sharpformer.Tests.Serving;

public sealed class ServerTests
{
    internal static async Task<(SharpformerServer Server, HttpClient Client)> Start(IPipeline pipeline, ServerOptions? options = null)
    {
        var server = SharpformerServer.Create(pipeline, options, ["http://127.0.0.1:0"]);
        await server.StartAsync();
        var address = server.Addresses.Single();
        Assert.StartsWith("http://127.0.0.1:", address);
        return (server, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) });
    }

    static async Task<(HttpStatusCode Status, JsonElement Body)> Post(HttpClient client, string path, string json)
    {
        using var response = await client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    static void AssertError(HttpStatusCode expected, (HttpStatusCode Status, JsonElement Body) r, string type, string messagePart)
    {
        Assert.Equal(expected, r.Status);
        var error = r.Body.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Contains(messagePart, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Health_Classify_Ner_FillMask_Endpoints_AnswerWithTypedJson()
    {
        var (server, client) = await Start(new TestPipeline(ServingTask.Ner));
        await using var _ = server;
        var health = await client.GetFromJsonAsync<JsonElement>("/health");
        Assert.Equal("ok", health.GetProperty("status").GetString());
        Assert.Equal("ner", health.GetProperty("task").GetString());

        var r = await Post(client, "/v1/ner", """{"inputs": "Angela met Emmanuel in Paris", "aggregation": "first"}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal("test-model", r.Body.GetProperty("model").GetString());
        var ents = r.Body.GetProperty("results")[0];
        Assert.Equal(3, ents.GetArrayLength());
        Assert.Equal("""{"entity_group":"PER","score":0.9,"word":"Emmanuel","start":11,"end":19}""", ents[1].GetRawText());

        var many = await Post(client, "/v1/ner", """{"inputs": ["Bob", "no names here", "Zoë Ünal"]}""");
        Assert.Equal([1, 0, 2], many.Body.GetProperty("results").EnumerateArray().Select(e => e.GetArrayLength()));

        // Other tasks' routes say which task this server runs.
        AssertError(HttpStatusCode.NotFound, await Post(client, "/v1/classify", """{"inputs": "x"}"""), "not_found", "runs task 'ner'");
        AssertError(HttpStatusCode.NotFound, await Post(client, "/v1/embeddings", """{"input": "x"}"""), "not_found", "--task embed");
        using var nowhere = await client.GetAsync("/v2/nothing");
        Assert.Equal(HttpStatusCode.NotFound, nowhere.StatusCode);
    }

    [Fact]
    public async Task BadRequests_Get400Or413_WithJsonErrors()
    {
        var (server, client) = await Start(new TestPipeline(ServingTask.Classify), new ServerOptions { MaxBodyBytes = 4096, MaxTextLength = 100, MaxInputsPerRequest = 3 });
        await using var _ = server;
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", "{not json"), "invalid_request_error", "not valid JSON");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", "[1, 2]"), "invalid_request_error", "JSON object");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"text": "x"}"""), "invalid_request_error", "missing field \"inputs\"");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": 5}"""), "invalid_request_error", "not number");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": ["a", 7]}"""), "invalid_request_error", "\"inputs\"[1] must be a string");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": []}"""), "invalid_request_error", "empty array");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": "   "}"""), "invalid_request_error", "empty or only whitespace");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": "x", "top_k": "3"}"""), "invalid_request_error", "top_k");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": ["a", "b", "c", "d"]}"""), "invalid_request_error", "limit is 3");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", $$"""{"inputs": "{{new string('a', 101)}}"}"""), "invalid_request_error", "101 characters; the limit is 100");
        AssertError(HttpStatusCode.RequestEntityTooLarge, await Post(client, "/v1/classify", $$"""{"inputs": "{{new string('a', 5000)}}"}"""), "request_too_large", "limit is 4096");
        // A text the model rejects fails only its own request.
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/classify", """{"inputs": "boom"}"""), "invalid_request_error", "says boom");
        var ok = await Post(client, "/v1/classify", """{"inputs": "a longer text", "top_k": 2}""");
        Assert.Equal("""[[{"label":"long","score":0.75},{"label":"short","score":0.25}]]""", ok.Body.GetProperty("results").GetRawText());

        // A chunked body (no Content-Length) over the limit is caught while reading.
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes($$"""{"inputs": "{{new string('b', 9000)}}"}""")));
        content.Headers.ContentType = new("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/classify") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var chunked = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, chunked.StatusCode);
    }

    [Fact]
    public async Task OpenAiEmbeddings_HaveTheOpenAiShape()
    {
        var (server, client) = await Start(new TestPipeline(ServingTask.Embed));
        await using var _ = server;
        var r = await Post(client, "/v1/embeddings", """{"input": ["Hello World", "a b c"], "model": "whatever"}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal("list", r.Body.GetProperty("object").GetString());
        Assert.Equal("test-model", r.Body.GetProperty("model").GetString());
        var data = r.Body.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal("embedding", data[1].GetProperty("object").GetString());
        Assert.Equal(1, data[1].GetProperty("index").GetInt32());
        Assert.Equal([11f, 2f, 1f, 1f], data[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()));
        Assert.Equal(5, r.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5, r.Body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        var single = await Post(client, "/v1/embeddings", """{"input": "one"}""");
        Assert.Equal(1, single.Body.GetProperty("data").GetArrayLength());
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/embeddings", """{"input": "x", "encoding_format": "base64"}"""), "invalid_request_error", "encoding_format");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/embeddings", """{"input": {"a": 1}}"""), "invalid_request_error", "\"input\" must be a string or an array");
        var embed = await Post(client, "/v1/embed", """{"inputs": "Hi"}""");
        Assert.Equal("[[2,1,0,1]]", embed.Body.GetProperty("results").GetRawText());
    }

    [Fact]
    public async Task ConcurrentRequests_AllSucceed_AndAreBatchedDynamically()
    {
        var pipeline = new TestPipeline(ServingTask.Classify, delayMsPerBatch: 3);
        var (server, client) = await Start(pipeline, new ServerOptions { MaxBatchSize = 16, MaxWaitMs = 5 });
        await using var _ = server;
        var tasks = Enumerable.Range(0, 200).Select(i => Post(client, "/v1/classify", $$"""{"inputs": "request number {{i}}"}""")).ToList();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.All(results, r => Assert.Equal("long", r.Body.GetProperty("results")[0][0].GetProperty("label").GetString()));
        Assert.Equal(200, pipeline.Batches.Sum());
        Assert.True(pipeline.Batches.Max() > 1, "no batch had more than one request");
        Assert.True(pipeline.Batches.Max() <= 16);

        var metrics = await client.GetFromJsonAsync<JsonElement>("/metrics");
        var requests = metrics.GetProperty("requests").EnumerateArray()
            .Single(e => e.GetProperty("route").GetString() == "POST /v1/classify" && e.GetProperty("status").GetInt32() == 200);
        Assert.Equal(200, requests.GetProperty("count").GetInt64());
        var batches = metrics.GetProperty("batch_sizes");
        Assert.Equal(200, batches.GetProperty("items").GetInt64());
        Assert.Equal(pipeline.Batches.Count, batches.GetProperty("batches").GetInt64());
        Assert.True(batches.GetProperty("max_size").GetInt32() > 1);
        Assert.Equal(200, batches.GetProperty("histogram").EnumerateObject().Sum(p => int.Parse(p.Name) * p.Value.GetInt64()));
        var latency = metrics.GetProperty("latency_ms").GetProperty("POST /v1/classify");
        Assert.Equal(200, latency.GetProperty("count").GetInt32());
        Assert.True(latency.GetProperty("p50_ms").GetDouble() <= latency.GetProperty("p99_ms").GetDouble());
        Assert.Equal(0, metrics.GetProperty("queue_depth").GetInt32());
    }

    [Fact]
    public async Task FullQueue_Answers429()
    {
        var pipeline = new TestPipeline(ServingTask.Classify, delayMsPerBatch: 300);
        var (server, client) = await Start(pipeline, new ServerOptions { MaxBatchSize = 1, MaxWaitMs = 0, QueueCapacity = 2 });
        await using var _ = server;
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Post(client, "/v1/classify", """{"inputs": "hello"}""")));
        var rejected = results.Where(r => r.Status == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(rejected);
        Assert.All(rejected, r => AssertError(HttpStatusCode.TooManyRequests, r, "rate_limit_exceeded", "queue is full"));
        Assert.Contains(results, r => r.Status == HttpStatusCode.OK);
    }

    [Fact]
    public async Task Shutdown_FinishesInFlightRequests()
    {
        var pipeline = new TestPipeline(ServingTask.Classify, delayMsPerBatch: 400);
        var (server, client) = await Start(pipeline);
        var inFlight = Post(client, "/v1/classify", """{"inputs": "still answered"}""");
        while (pipeline.Batches.IsEmpty) await Task.Delay(5);   // the request is inside the model now
        await server.StopAsync();
        var r = await inFlight;
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal("long", r.Body.GetProperty("results")[0][0].GetProperty("label").GetString());
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("/health"));
        await server.DisposeAsync();
    }

    [Fact]
    public async Task Attention_ReturnsTokensAndMaps()
    {
        var (server, client) = await Start(new TestPipeline(ServingTask.Ner));
        await using var _ = server;
        var r = await Post(client, "/v1/attention", """{"text": "Hello big World"}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal(["[CLS]", "hello", "big", "world", "[SEP]"], r.Body.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(2 * 2 * 25, r.Body.GetProperty("data").GetArrayLength());
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/attention", """{"text": 3}"""), "invalid_request_error", "{\"text\"");
    }

    [BrowserFact]
    public async Task DemoPage_InChromium_HighlightsEntities_AndDrawsTheHeatmap()
    {
        var (server, client) = await Start(new TestPipeline(ServingTask.Ner));
        await using var _ = server;
        var page = await client.GetStringAsync("/");
        Assert.Contains("Sharpformer — ner", page);
        var url = client.BaseAddress + "?demo=" + Uri.EscapeDataString("Angela Merkel met Emmanuel Macron in Paris.");
        var dom = Chromium.DumpDom(url, 10_000);
        Assert.Contains("data-done=\"1\"", dom);
        Assert.Contains("<mark class=\"PER\" title=\"0.900\">Angela<small>PER</small></mark>", dom);
        Assert.Contains("5 entities", dom);
        Assert.Equal(9 * 9, System.Text.RegularExpressions.Regex.Matches(dom, "<rect ").Count);   // [CLS] + 7 words + [SEP] → 9×9 heatmap cells
        var dir = Directory.CreateTempSubdirectory("sf-serve-").FullName;
        var png = Chromium.Screenshot(url, Path.Combine(dir, "demo.png"), 1000, 800, virtualTimeBudgetMs: 10_000);
        var img = PngImage.Read(png);
        Assert.True(img.DistinctColors() > 30);
        // PER highlight colour (#ffd6a5) is on screen.
        Assert.True(img.FractionMatching((r, g, b) => r > 245 && g is > 200 and < 225 && b is > 150 and < 180) > 0.001);
    }
}
