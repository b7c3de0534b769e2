using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sharpformer.Pipelines;
using Sharpformer.Models;

namespace Sharpformer.Serving;

/// <summary>
/// HTTP inference server over one <see cref="IPipeline"/>: JSON endpoints with dynamic batching, limits, metrics,
/// health and a demo page.
/// </summary>
/// <remarks>
/// Routes: <c>POST /v1/classify</c>, <c>/v1/ner</c>, <c>/v1/embed</c>, <c>/v1/fill-mask</c>, <c>/v1/g2p</c> (<c>{"inputs": string | [string], ...}</c>
/// → <c>{"model", "results": [one per input]}</c>), OpenAI-style <c>POST /v1/embeddings</c>, <c>POST /v1/attention</c>,
/// <c>GET /health</c>, <c>GET /metrics</c>, <c>GET /</c>; with a <see cref="GenerationBackend"/> OpenAI-style <c>POST /v1/completions</c>
/// (JSON or server-sent events) and a page that streams the generated text. Errors are <c>{"error": {"message", "type"}}</c> with status
/// 400 (bad JSON / field / text, invalid UTF-8), 404 (route of another task), 405 (known route, wrong method), 413 (body or
/// token count too large), 429 (queue full or token budget in flight), 500 (NaN model output, unexpected failure),
/// 503 (shutting down). Every request is logged as one line (method, route, status, ms) and counted in the metrics by
/// its real status (499 when the client went away first).
/// </remarks>
public sealed partial class SharpformerServer : IAsyncDisposable
{
    /// <summary>nginx's status for "the client closed the connection before the response": such requests are counted apart.</summary>
    public const int ClientClosedRequest = 499;

    /// <summary>
    /// One queued unit: a text for the task, a text whose attention maps are wanted, or one completion choice. Attention and
    /// completions share the queue so they get the same 429s and run on the one model thread instead of tying up the thread pool.
    /// </summary>
    sealed record Queued(ServingItem Item, int Tokens, bool Attention = false, CompletionWork? Completion = null);

    readonly WebApplication _app;
    readonly DynamicBatcher<Queued, object> _batcher;
    readonly ILogger _log;
    readonly IPipeline _pipeline;
    readonly ServerOptions _options;
    bool _stopped;

    public ServerMetrics Metrics { get; } = new();

    SharpformerServer(IPipeline pipeline, ServerOptions options, IEnumerable<string> urls, ILoggerProvider? logger)
    {
        _pipeline = pipeline;
        _options = options;
        _batcher = new DynamicBatcher<Queued, object>(RunQueued, options.MaxBatchSize, TimeSpan.FromMilliseconds(options.MaxWaitMs),
            options.QueueCapacity, Metrics.RecordBatch, q => q.Tokens, options.MaxQueuedTokens);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        if (logger is not null) builder.Logging.AddProvider(logger);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter(LogCategory, LogLevel.Information);   // our request lines, not ASP.NET's chatter
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        // Our own reader enforces MaxBodyBytes with a JSON 413. Kestrel's cap is a backstop set well above it, so that after a
        // 413 Kestrel can still drain a moderately oversized body and the client reads the JSON error instead of a reset.
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = Math.Max(options.MaxBodyBytes * 4, options.MaxBodyBytes + (1 << 20)));
        _app = builder.Build();
        _log = _app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(LogCategory);
        foreach (var url in urls) _app.Urls.Add(url);
        Map();
    }

    /// <summary>Builds (but does not start) a server.</summary>
    public static SharpformerServer Create(IPipeline pipeline, ServerOptions? options = null, IEnumerable<string>? urls = null, ILoggerProvider? logger = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        options ??= new ServerOptions();
        return new SharpformerServer(pipeline, options, urls ?? ["http://127.0.0.1:8080"], logger);
    }

    /// <summary>The bound addresses (after <see cref="StartAsync"/>; resolves port 0 to the real port).</summary>
    public IReadOnlyList<string> Addresses =>
        _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];

    public Task StartAsync(CancellationToken cancellationToken = default) => _app.StartAsync(cancellationToken);

    /// <summary>Runs until Ctrl+C / SIGTERM, then shuts down gracefully.</summary>
    public async Task RunAsync()
    {
        await _app.RunAsync().ConfigureAwait(false);
        _stopped = true;
        await _batcher.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Stops accepting connections, lets in-flight requests finish (their queued texts still run), then drains the batcher.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopped) return;
        _stopped = true;
        await _app.StopAsync(cancellationToken).ConfigureAwait(false);
        await _batcher.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    const string LogCategory = "Sharpformer.Serving.Requests";

    /// <summary>Each route and the one method it answers; other methods on it get 405.</summary>
    static readonly Dictionary<string, string> KnownRoutes = new(StringComparer.Ordinal)
    {
        ["/"] = "GET", ["/health"] = "GET", ["/metrics"] = "GET", ["/v1/classify"] = "POST", ["/v1/ner"] = "POST", ["/v1/embed"] = "POST",
        ["/v1/embeddings"] = "POST", ["/v1/fill-mask"] = "POST", ["/v1/attention"] = "POST", ["/v1/completions"] = "POST", ["/v1/g2p"] = "POST",
    };

    // The method is the client's free-form string: metrics and logs keep only the standard ones, so labels stay a bounded set.
    static readonly string[] StandardMethods = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"];

    static string MethodLabel(string method) => Array.IndexOf(StandardMethods, method) >= 0 ? method : "OTHER";

    static string RouteLabel(HttpContext ctx)
    {
        var path = ctx.Request.Path.Value ?? "/";
        if (KnownRoutes.ContainsKey(path)) return path;
        // Routing also matches e.g. a trailing slash; take the template of the endpoint it chose.
        return ctx.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } raw } && KnownRoutes.ContainsKey(raw) ? raw : "other";
    }

    static readonly Action<ILogger, string, string, int, double, Exception?> LogRequest =
        LoggerMessage.Define<string, string, int, double>(LogLevel.Information, new EventId(1, "Request"), "{Method} {Route} {Status} {ElapsedMs:0.0} ms");

    async Task Observe(HttpContext ctx, RequestDelegate next)
    {
        long start = Stopwatch.GetTimestamp();
        int? status = null;
        try { await next(ctx); }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested) { status = ClientClosedRequest; }
        catch (Exception e)
        {
            status = 500;
            _log.LogError(e, "{Method} {Path} failed", ctx.Request.Method, ctx.Request.Path.Value);
            if (!ctx.Response.HasStarted)
            {
                ctx.Response.Clear();
                await Error(500, "server_error", "the server failed on this request; the error is in the server log.").ExecuteAsync(ctx);
            }
        }
        finally
        {
            if (ctx.RequestAborted.IsCancellationRequested) status = ClientClosedRequest;   // nobody read the answer
            status ??= ctx.Response.StatusCode;
            string method = MethodLabel(ctx.Request.Method), route = RouteLabel(ctx);
            double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            Metrics.RecordRequest(route == "other" ? "other" : $"{method} {route}", status.Value, ms);
            LogRequest(_log, method, route, status.Value, ms, null);
        }
    }

    void Map()
    {
        _app.Use(Observe);

        _app.MapGet("/", (HttpContext ctx) => Results.Content(DemoPage.Html(_pipeline.Task, _pipeline.ModelName), "text/html; charset=utf-8"));
        _app.MapGet("/health", () => Results.Json(new { status = "ok", model = _pipeline.ModelName, task = TaskName(_pipeline.Task), queue_depth = _batcher.QueueDepth }));
        _app.MapGet("/metrics", () => Results.Json(Metrics.Snapshot(_batcher.QueueDepth), PipelineJson.Options));

        _app.MapPost("/v1/classify", (Delegate)((HttpContext ctx) => Handle(ctx, ServingTask.Classify, (body, texts) =>
        {
            int? topK = OptionalInt(body, "top_k", 1, 1000);
            return texts.Select(t => new ServingItem(t, TopK: topK)).ToList();
        })));
        _app.MapPost("/v1/ner", (Delegate)((HttpContext ctx) => Handle(ctx, ServingTask.Ner, (body, texts) =>
        {
            var aggregation = body.TryGetProperty("aggregation", out var a) || body.TryGetProperty("aggregation_strategy", out a)
                ? ParseAggregation(a) : AggregationStrategy.Simple;
            return texts.Select(t => new ServingItem(t, Aggregation: aggregation)).ToList();
        })));
        _app.MapPost("/v1/embed", (Delegate)((HttpContext ctx) => Handle(ctx, ServingTask.Embed, (_, texts) => texts.Select(t => new ServingItem(t)).ToList())));
        _app.MapPost("/v1/fill-mask", (Delegate)((HttpContext ctx) => Handle(ctx, ServingTask.FillMask, (body, texts) =>
        {
            int? topK = OptionalInt(body, "top_k", 1, 1000);
            return texts.Select(t => new ServingItem(t, TopK: topK)).ToList();
        })));
        _app.MapPost("/v1/g2p", (Delegate)((HttpContext ctx) => Handle(ctx, ServingTask.G2P, (body, words) =>
        {
            int? nBest = OptionalInt(body, "n_best", 1, 1000);
            bool alignment = body.TryGetProperty("alignment", out var a) && a.ValueKind != JsonValueKind.Null
                && (a.ValueKind is JsonValueKind.True or JsonValueKind.False ? a.GetBoolean()
                    : throw new RequestException(400, "invalid_request_error", "\"alignment\" must be true or false."));
            return words.Select(w => new ServingItem(w, TopK: nBest, Alignment: alignment)).ToList();
        })));
        _app.MapPost("/v1/embeddings", (Delegate)((HttpContext ctx) => OpenAiEmbeddings(ctx)));
        _app.MapPost("/v1/attention", (Delegate)((HttpContext ctx) => Attention(ctx)));
        _app.MapPost("/v1/completions", (Delegate)((HttpContext ctx) => Completions(ctx)));
        _app.MapFallback((HttpContext ctx) =>
        {
            if (!KnownRoutes.TryGetValue(RouteLabel(ctx), out var allowed))
                return Error(404, "not_found", $"no route {MethodLabel(ctx.Request.Method)} {ctx.Request.Path}; see GET / for the API.");
            ctx.Response.Headers.Allow = allowed;
            return Error(405, "method_not_allowed", $"{RouteLabel(ctx)} answers {allowed} only.");
        });
    }

    public static string TaskName(ServingTask t) => t switch
    {
        ServingTask.Classify => "classify", ServingTask.Ner => "ner", ServingTask.Embed => "embed", ServingTask.Generate => "generate", ServingTask.G2P => "g2p", _ => "fill-mask",
    };

    /// <summary>The route that runs <paramref name="t"/>.</summary>
    public static string RouteOf(ServingTask t) => t == ServingTask.Generate ? "/v1/completions" : $"/v1/{TaskName(t)}";

    async Task<IResult> Handle(HttpContext ctx, ServingTask task, Func<JsonElement, IReadOnlyList<string>, List<ServingItem>> items)
    {
        if (task != _pipeline.Task)
            return Error(404, "not_found", $"this server runs task '{TaskName(_pipeline.Task)}' with model {_pipeline.ModelName}; use POST {RouteOf(_pipeline.Task)}.");
        try
        {
            using var doc = await ReadJson(ctx);
            var body = doc.RootElement;
            if (body.ValueKind != JsonValueKind.Object) throw new RequestException(400, "invalid_request_error", "the body must be a JSON object like {\"inputs\": \"text\"}.");
            if (!body.TryGetProperty("inputs", out var inputs)) throw new RequestException(400, "invalid_request_error", "missing field \"inputs\" (a string or an array of strings).");
            var texts = Texts(inputs, "inputs");
            var results = await RunAll(items(body, texts), ctx.RequestAborted);
            return Results.Json(new { model = _pipeline.ModelName, results }, PipelineJson.Options);
        }
        catch (RequestException e) { return Error(e.Status, e.Type, e.Message); }
    }

    async Task<IResult> OpenAiEmbeddings(HttpContext ctx)
    {
        if (_pipeline.Task != ServingTask.Embed)
            return Error(404, "not_found", $"this server runs task '{TaskName(_pipeline.Task)}'; start it with --task embed for /v1/embeddings.");
        try
        {
            using var doc = await ReadJson(ctx);
            var body = doc.RootElement;
            if (body.ValueKind != JsonValueKind.Object) throw new RequestException(400, "invalid_request_error", "the body must be a JSON object like {\"input\": \"text\"}.");
            if (!body.TryGetProperty("input", out var input)) throw new RequestException(400, "invalid_request_error", "missing field \"input\" (a string or an array of strings).");
            if (body.TryGetProperty("encoding_format", out var fmt) && (fmt.ValueKind != JsonValueKind.String || JsonText(fmt, "encoding_format") != "float"))
                throw new RequestException(400, "invalid_request_error", "only \"encoding_format\": \"float\" is supported.");
            if (body.TryGetProperty("model", out var model) && model.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                throw new RequestException(400, "invalid_request_error", "field \"model\" must be a string.");
            var texts = Texts(input, "input");
            var vectors = await RunAll(texts.Select(t => new ServingItem(t)).ToList(), ctx.RequestAborted);
            int tokens = texts.Sum(_pipeline.CountTokens);
            var data = new JsonArray();
            for (int i = 0; i < vectors.Length; i++)
                data.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = JsonSerializer.SerializeToNode((float[])vectors[i]) });
            var response = new JsonObject
            {
                ["object"] = "list", ["data"] = data, ["model"] = _pipeline.ModelName,
                ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
            };
            return Results.Content(response.ToJsonString(), "application/json");
        }
        catch (RequestException e) { return Error(e.Status, e.Type, e.Message); }
    }

    async Task<IResult> Attention(HttpContext ctx)
    {
        if (_pipeline.Task == ServingTask.Generate)
            return Error(404, "not_found", $"this server generates text with {_pipeline.ModelName}; attention maps are served for the encoder tasks. Use POST /v1/completions.");
        try
        {
            using var doc = await ReadJson(ctx);
            var body = doc.RootElement;
            if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("text", out var textEl) || textEl.ValueKind != JsonValueKind.String)
                throw new RequestException(400, "invalid_request_error", "the body must be {\"text\": \"...\"}.");
            var text = JsonText(textEl, "text");
            CheckText(text, "text");
            var maps = (AttentionMaps)(await Enqueue([new Queued(new ServingItem(text), _pipeline.CountTokens(text) + 2, Attention: true)], ctx.RequestAborted))[0];
            return Results.Json(new { tokens = maps.Tokens, layers = maps.Layers, heads = maps.Heads, data = maps.Data }, PipelineJson.Options);
        }
        catch (RequestException e) { return Error(e.Status, e.Type, e.Message); }
    }

    /// <summary>Validates and counts every text first, so a bad one never joins (and spoils) a batch, then queues them all or none.</summary>
    Task<object[]> RunAll(List<ServingItem> items, CancellationToken aborted) =>
        Enqueue(items.Select((item, i) => new Queued(item, Run(() => _pipeline.Validate(item, i)))).ToList(), aborted);

    async Task<object[]> Enqueue(IReadOnlyList<Queued> work, CancellationToken aborted) => await Collect(Admit(work, aborted));

    /// <summary>Queues all of <paramref name="work"/> or none: 413 when it alone exceeds the token budget, 429 when the queue is full, 503 when closing.</summary>
    IReadOnlyList<Task<object>> Admit(IReadOnlyList<Queued> work, CancellationToken aborted)
    {
        long tokens = work.Sum(w => (long)w.Tokens);
        if (tokens > _options.MaxQueuedTokens)
            throw new RequestException(413, "request_too_large",
                $"the request has {tokens} tokens; the server runs at most {_options.MaxQueuedTokens} at a time (--max-queued-tokens). Split it into smaller requests.");
        IReadOnlyList<Task<object>> tasks;
        try { tasks = _batcher.EnqueueAll(work, aborted); }
        catch (QueueFullException e) { throw new RequestException(429, "rate_limit_exceeded", e.Message); }
        catch (BatcherClosedException e) { throw new RequestException(503, "unavailable", e.Message); }
        return tasks;
    }

    /// <summary>The results of admitted work; a failed item becomes the request's error (400 for bad input, 500 for a model failure).</summary>
    async Task<object[]> Collect(IReadOnlyList<Task<object>> tasks)
    {
        try
        {
            var results = await Task.WhenAll(tasks);
            // A completion that failed is returned as its exception (see RunQueued): rethrow it here, on its own request.
            foreach (var r in results) if (r is Exception failed) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
            return results;
        }
        catch (PipelineInputException e) { throw new RequestException(400, "invalid_request_error", e.Message); }
        catch (NotSupportedException e) { throw new RequestException(400, "invalid_request_error", e.Message); }
        catch (NonFiniteOutputException e)
        {
            _log.LogError("model output is not finite: {Message}", e.Message);
            throw new RequestException(500, "model_error", e.Message);
        }
    }

    /// <summary>The batch function: task texts go to the model as one batch, attention texts run one by one.</summary>
    IReadOnlyList<object> RunQueued(IReadOnlyList<Queued> work, CancellationToken cancellationToken)
    {
        var results = new object[work.Count];
        var batch = new List<int>(work.Count);
        for (int i = 0; i < work.Count; i++)
        {
            if (work[i].Attention) results[i] = _pipeline.Attention(work[i].Item.Text, cancellationToken);
            else if (work[i].Completion is { } c) results[i] = RunCompletion(c);
            else batch.Add(i);
        }
        if (batch.Count == 0) return results;
        var outputs = _pipeline.RunBatch(batch.Select(i => work[i].Item).ToList(), cancellationToken);
        if (outputs.Count != batch.Count) throw new InvalidOperationException($"the pipeline returned {outputs.Count} results for {batch.Count} texts.");
        for (int j = 0; j < batch.Count; j++) results[batch[j]] = outputs[j];
        return results;
    }

    static T Run<T>(Func<T> body)
    {
        try { return body(); }
        catch (PipelineInputException e) { throw new RequestException(400, "invalid_request_error", e.Message); }
        catch (NotSupportedException e) { throw new RequestException(400, "invalid_request_error", e.Message); }
    }

    async Task<JsonDocument> ReadJson(HttpContext ctx)
    {
        long limit = _options.MaxBodyBytes;
        if (ctx.Request.ContentLength is long declared && declared > limit)
            throw new RequestException(413, "request_too_large", $"the request body has {declared} bytes; the limit is {limit}.");
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        try
        {
            while ((read = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted)) > 0)
            {
                buffer.Write(chunk, 0, read);
                if (buffer.Length > limit) throw new RequestException(413, "request_too_large", $"the request body exceeds the limit of {limit} bytes.");
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413) { throw new RequestException(413, "request_too_large", $"the request body exceeds the limit of {limit} bytes."); }
        if (buffer.Length == 0) throw new RequestException(400, "invalid_request_error", "the request body is empty; send JSON.");
        try { return JsonDocument.Parse(buffer.ToArray()); }
        catch (JsonException e) { throw new RequestException(400, "invalid_request_error", $"the body is not valid JSON: {e.Message}"); }
    }

    /// <summary>A string or a non-empty array of strings, each within the text limits (<paramref name="allowEmpty"/>: a completion prompt may be "").</summary>
    List<string> Texts(JsonElement inputs, string field, bool allowEmpty = false)
    {
        var texts = new List<string>();
        if (inputs.ValueKind == JsonValueKind.String) texts.Add(JsonText(inputs, $"\"{field}\""));
        else if (inputs.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var e in inputs.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) throw new RequestException(400, "invalid_request_error", $"\"{field}\"[{i}] must be a string, not {e.ValueKind.ToString().ToLowerInvariant()}.");
                texts.Add(JsonText(e, $"\"{field}\"[{i}]"));
                i++;
            }
            if (texts.Count == 0) throw new RequestException(400, "invalid_request_error", $"\"{field}\" is an empty array.");
        }
        else throw new RequestException(400, "invalid_request_error", $"\"{field}\" must be a string or an array of strings, not {inputs.ValueKind.ToString().ToLowerInvariant()}.");
        if (texts.Count > _options.MaxInputsPerRequest)
            throw new RequestException(400, "invalid_request_error", $"\"{field}\" has {texts.Count} texts; the limit is {_options.MaxInputsPerRequest} per request.");
        for (int i = 0; i < texts.Count; i++) CheckText(texts[i], texts.Count == 1 ? field : $"{field}[{i}]", allowEmpty);
        return texts;
    }

    void CheckText(string text, string field, bool allowEmpty = false)
    {
        if (text.Length > _options.MaxTextLength)
            throw new RequestException(400, "invalid_request_error", $"{field} has {text.Length} characters; the limit is {_options.MaxTextLength}.");
        if (!allowEmpty && string.IsNullOrWhiteSpace(text)) throw new RequestException(400, "invalid_request_error", $"{field} is empty or only whitespace.");
    }

    /// <summary>A JSON string's text; invalid UTF-8 or an unpaired surrogate escape ("\ud800") is the client's error, not ours.</summary>
    static string JsonText(JsonElement e, string field)
    {
        try { return e.GetString()!; }
        catch (InvalidOperationException)
        {
            throw new RequestException(400, "invalid_request_error",
                $"{field} is not valid Unicode text: it holds invalid UTF-8 bytes or an unpaired surrogate escape (\\ud800-\\udfff). Send UTF-8 JSON.");
        }
    }

    static int? OptionalInt(JsonElement body, string name, int min, int max)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n < min || n > max)
            throw new RequestException(400, "invalid_request_error", $"\"{name}\" must be an integer in [{min}, {max}].");
        return n;
    }

    static AggregationStrategy ParseAggregation(JsonElement v)
    {
        var s = v.ValueKind == JsonValueKind.String ? JsonText(v, "\"aggregation\"") : null;
        return s?.ToLowerInvariant() switch
        {
            "none" => AggregationStrategy.None, "simple" => AggregationStrategy.Simple, "first" => AggregationStrategy.First,
            "average" => AggregationStrategy.Average, "max" => AggregationStrategy.Max,
            _ => throw new RequestException(400, "invalid_request_error", "\"aggregation\" must be one of none, simple, first, average, max."),
        };
    }

    static IResult Error(int status, string type, string message) =>
        Results.Json(new { error = new { message, type } }, statusCode: status);

    sealed class RequestException(int status, string type, string message) : Exception(message)
    {
        public int Status { get; } = status;
        public string Type { get; } = type;
    }
}
