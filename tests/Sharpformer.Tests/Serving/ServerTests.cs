using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Sharpformer.Serving;
using Sharpformer.Tests.Visualization;

namespace Sharpformer.Tests.Serving;

public sealed class ServerTests
{
    internal static async Task<(SharpformerServer Server, HttpClient Client)> Start(IPipeline pipeline, ServerOptions? options = null, TextWriter? log = null)
    {
        var server = SharpformerServer.Create(pipeline, options, ["http://127.0.0.1:0"], log is null ? null : new TextWriterLoggerProvider(log));
        await server.StartAsync();
        var address = server.Addresses.Single();
        Assert.StartsWith("http://127.0.0.1:", address);
        return (server, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) });
    }

    internal static async Task<(HttpStatusCode Status, JsonElement Body)> Post(HttpClient client, string path, string json) =>
        await PostBytes(client, path, Encoding.UTF8.GetBytes(json));

    static async Task<(HttpStatusCode Status, JsonElement Body)> PostBytes(HttpClient client, string path, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json") { CharSet = "utf-8" };
        using var response = await client.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.False(string.IsNullOrEmpty(text), $"HTTP {(int)response.StatusCode} with an empty body");
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>The count of (route, status) in <c>GET /metrics</c>, 0 when absent.</summary>
    internal static async Task<long> Count(HttpClient client, string route, int status)
    {
        var metrics = await client.GetFromJsonAsync<JsonElement>("/metrics");
        return metrics.GetProperty("requests").EnumerateArray()
            .Where(e => e.GetProperty("route").GetString() == route && e.GetProperty("status").GetInt32() == status)
            .Sum(e => e.GetProperty("count").GetInt64());
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

    [Fact]
    public async Task InvalidUtf8_AndLoneSurrogateEscapes_Get400_LoggedAndCountedAs400()
    {
        var log = new StringWriter();
        var (server, client) = await Start(new TestPipeline(ServingTask.Ner), log: log);
        await using var _ = server;
        byte[] badUtf8 = [.. Encoding.UTF8.GetBytes("{\"inputs\": \"caf"), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("\"}")];
        AssertError(HttpStatusCode.BadRequest, await PostBytes(client, "/v1/ner", badUtf8), "invalid_request_error", "\"inputs\" is not valid Unicode text");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/ner", """{"inputs": ["fine", "x\ud800y"]}"""), "invalid_request_error", "\"inputs\"[1] is not valid Unicode text");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/ner", """{"inputs": "Bob", "aggregation": "\udc00"}"""), "invalid_request_error", "\"aggregation\" is not valid Unicode");
        AssertError(HttpStatusCode.BadRequest, await Post(client, "/v1/attention", """{"text": "\ud83d"}"""), "invalid_request_error", "text is not valid Unicode");
        Assert.Equal(3, await Count(client, "POST /v1/ner", 400));
        Assert.Equal(1, await Count(client, "POST /v1/attention", 400));
        Assert.Equal(0, await Count(client, "POST /v1/ner", 200));
        var lines = log.ToString().Split('\n');
        Assert.Equal(3, lines.Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"info Sharpformer\.Serving\.Requests: POST /v1/ner 400 \d+\.\d ms")));
    }

    [Fact]
    public async Task AModelBug_Gets500WithAJsonError_LoggedAndCountedAs500()
    {
        var log = new StringWriter();
        var (server, client) = await Start(new TestPipeline(ServingTask.Classify), log: log);
        await using var _ = server;
        AssertError(HttpStatusCode.InternalServerError, await Post(client, "/v1/classify", """{"inputs": "crash now"}"""), "server_error", "server log");
        Assert.Equal(1, await Count(client, "POST /v1/classify", 500));
        Assert.Equal(0, await Count(client, "POST /v1/classify", 200));
        Assert.Contains("a bug in the model code.", log.ToString());
        Assert.Matches(@"info Sharpformer\.Serving\.Requests: POST /v1/classify 500 \d+\.\d ms", log.ToString());
        var ok = await Post(client, "/v1/classify", """{"inputs": "fine"}""");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
    }

    [Fact]
    public async Task ClientAbortedRequests_AreCountedAs499_Not200()
    {
        var pipeline = new TestPipeline(ServingTask.Classify);
        var (server, client) = await Start(pipeline);
        await using var _ = server;
        pipeline.Gate.Reset();
        using var cts = new CancellationTokenSource();
        var running = client.PostAsync("/v1/classify", new StringContent("""{"inputs": "in the model"}""", Encoding.UTF8, "application/json"), cts.Token);
        while (pipeline.Batches.IsEmpty) await Task.Delay(5);
        var queued = client.PostAsync("/v1/classify", new StringContent("""{"inputs": "still queued"}""", Encoding.UTF8, "application/json"), cts.Token);
        while ((await client.GetFromJsonAsync<JsonElement>("/health")).GetProperty("queue_depth").GetInt32() < 1) await Task.Delay(5);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        await Task.Delay(200);   // let Kestrel see the disconnects before the model answers
        pipeline.Gate.Set();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await Count(client, "POST /v1/classify", SharpformerServer.ClientClosedRequest) < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(2, await Count(client, "POST /v1/classify", SharpformerServer.ClientClosedRequest));
        Assert.Equal(0, await Count(client, "POST /v1/classify", 200));
    }

    [Fact]
    public async Task UnknownMethods_Get405OnKnownRoutes_AndShareOneMetricsBucket()
    {
        var (server, client) = await Start(new TestPipeline(ServingTask.Classify));
        await using var _ = server;
        for (int i = 0; i < 30; i++)
        {
            using var request = new HttpRequestMessage(new HttpMethod($"RANDOM{i}X"), "/v1/classify");
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
            Assert.Equal(["POST"], response.Content.Headers.Allow);
            var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("method_not_allowed", error.GetProperty("type").GetString());
            using var elsewhere = await client.SendAsync(new HttpRequestMessage(new HttpMethod($"OTHER{i}Y"), $"/nowhere/{i}"));
            Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
        }
        using var get = await client.GetAsync("/v1/classify");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        using var post = await client.PostAsync("/health", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal(["GET"], post.Content.Headers.Allow);

        var metrics = await client.GetFromJsonAsync<JsonElement>("/metrics");
        var routes = metrics.GetProperty("requests").EnumerateArray().Select(e => (e.GetProperty("route").GetString(), e.GetProperty("status").GetInt32(), e.GetProperty("count").GetInt64())).ToList();
        Assert.Equal([("GET /v1/classify", 405, 1L), ("OTHER /v1/classify", 405, 30L), ("POST /health", 405, 1L), ("other", 404, 30L)], routes.Order());
        Assert.Equal(4, metrics.GetProperty("latency_ms").EnumerateObject().Count());
    }

    [Fact]
    public async Task ABadInput_IsRejectedBeforeBatching_SoGoodTextsRunOnce()
    {
        var pipeline = new TestPipeline(ServingTask.FillMask, delayMsPerBatch: 30);
        var (server, client) = await Start(pipeline, new ServerOptions { MaxBatchSize = 32, MaxWaitMs = 30 });
        await using var _ = server;
        var requests = Enumerable.Range(0, 10).Select(i => Post(client, "/v1/fill-mask", i == 4 ? """{"inputs": "no mask here"}""" : $$"""{"inputs": "text {{i}} is [MASK]"}""")).ToList();
        var results = await Task.WhenAll(requests);
        AssertError(HttpStatusCode.BadRequest, results[4], "invalid_request_error", "input 0: no [MASK]");
        Assert.Equal(9, results.Count(r => r.Status == HttpStatusCode.OK));
        Assert.DoesNotContain("no mask here", pipeline.Seen);
        Assert.Equal(9, pipeline.Seen.Count);   // no batch failed, so no text was run twice
        var multi = await Post(client, "/v1/fill-mask", """{"inputs": ["a [MASK]", "none"]}""");
        AssertError(HttpStatusCode.BadRequest, multi, "invalid_request_error", "input 1: no [MASK]");
        Assert.DoesNotContain("a [MASK]", pipeline.Seen);
    }

    [Fact]
    public async Task Attention_GoesThroughTheQueue_Gets429WhenFull_AndNeverRunsBesideTheModel()
    {
        var pipeline = new TestPipeline(ServingTask.Classify);
        var (server, client) = await Start(pipeline, new ServerOptions { MaxBatchSize = 1, MaxWaitMs = 0, QueueCapacity = 2 });
        await using var _ = server;
        pipeline.Gate.Reset();
        var first = Post(client, "/v1/classify", """{"inputs": "holds the model"}""");
        while (pipeline.Batches.IsEmpty) await Task.Delay(5);
        var all = Enumerable.Range(0, 8).Select(i => Post(client, "/v1/attention", $$"""{"text": "Hello number {{i}}"}""")).ToList();
        while (all.Count(t => t.IsCompleted) < 6) await Task.Delay(5);   // two fit in the queue, six are turned away
        pipeline.Gate.Set();
        var results = await Task.WhenAll(all);
        Assert.Equal(HttpStatusCode.OK, (await first).Status);
        var rejected = results.Where(r => r.Status == HttpStatusCode.TooManyRequests).ToList();
        Assert.Equal(6, rejected.Count);
        Assert.All(rejected, r => AssertError(HttpStatusCode.TooManyRequests, r, "rate_limit_exceeded", "queue is full"));
        Assert.Equal(2, results.Count(r => r.Status == HttpStatusCode.OK && r.Body.GetProperty("tokens").GetArrayLength() == 4));   // [CLS] hello number [SEP]
        Assert.Equal(1, pipeline.MaxConcurrentCalls);
    }

    [Fact]
    public async Task AMultiInputRequest_RejectedWith429_LeavesNoneOfItsTextsQueued()
    {
        var pipeline = new TestPipeline(ServingTask.Classify);
        var (server, client) = await Start(pipeline, new ServerOptions { MaxBatchSize = 1, MaxWaitMs = 0, QueueCapacity = 3 });
        await using var _ = server;
        pipeline.Gate.Reset();
        var first = Post(client, "/v1/classify", """{"inputs": "running"}""");
        while (pipeline.Batches.IsEmpty) await Task.Delay(5);
        var second = Post(client, "/v1/classify", """{"inputs": ["queued one", "queued two"]}""");
        while ((await client.GetFromJsonAsync<JsonElement>("/health")).GetProperty("queue_depth").GetInt32() < 2) await Task.Delay(5);   // 2 of 3 places taken
        var third = await Post(client, "/v1/classify", """{"inputs": ["rejected a", "rejected b"]}""");
        AssertError(HttpStatusCode.TooManyRequests, third, "rate_limit_exceeded", "queue is full");
        pipeline.Gate.Set();
        Assert.Equal(HttpStatusCode.OK, (await first).Status);
        Assert.Equal(HttpStatusCode.OK, (await second).Status);
        Assert.Equal(["running", "queued one", "queued two"], pipeline.Seen);
    }

    [Fact]
    public async Task TheQueue_IsBudgetedByTokens_NotByTexts()
    {
        var pipeline = new TestPipeline(ServingTask.Classify);
        var (server, client) = await Start(pipeline, new ServerOptions { MaxBatchSize = 1, MaxWaitMs = 0, MaxQueuedTokens = 100 });
        await using var _ = server;
        static string Words(int n) => string.Join(' ', Enumerable.Repeat("word", n));
        pipeline.Gate.Reset();
        var big = Post(client, "/v1/classify", $$"""{"inputs": "{{Words(60)}}"}""");   // 62 tokens with [CLS] and [SEP]
        while (pipeline.Batches.IsEmpty) await Task.Delay(5);
        AssertError(HttpStatusCode.TooManyRequests, await Post(client, "/v1/classify", $$"""{"inputs": "{{Words(40)}}"}"""), "rate_limit_exceeded", "needs 42 tokens and 62 of its 100-token budget");
        var small = Post(client, "/v1/classify", """{"inputs": "a few words fit"}""");   // 6 tokens
        AssertError(HttpStatusCode.RequestEntityTooLarge, await Post(client, "/v1/classify", $$"""{"inputs": ["{{Words(50)}}", "{{Words(49)}}"]}"""), "request_too_large", "103 tokens");
        pipeline.Gate.Set();
        Assert.Equal(HttpStatusCode.OK, (await big).Status);
        Assert.Equal(HttpStatusCode.OK, (await small).Status);
        Assert.Equal(HttpStatusCode.OK, (await Post(client, "/v1/classify", $$"""{"inputs": "{{Words(40)}}"}""")).Status);   // the budget was released
        Assert.DoesNotContain(Words(50), pipeline.Seen);
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
