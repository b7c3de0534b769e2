using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sharpformer.Pipelines;

namespace Sharpformer.Serving;

/// <summary>One completion choice in the queue: its prompt, settings, where its text streams to, and its request's abort token.</summary>
internal sealed record CompletionWork(int[] Prompt, CompletionSettings Settings, int Index, ChannelWriter<(int Index, string Text)>? Stream, CancellationToken Aborted);

// POST /v1/completions, OpenAI's legacy completions API (https://platform.openai.com/docs/api-reference/completions): the
// fields below, usage counts, finish_reason "stop"/"length", and server-sent events when "stream": true. Every choice is one
// queued item with cost prompt + max_tokens tokens, so completions share the other routes' queue, budget, 413 and 429.
public sealed partial class SharpformerServer
{
    static readonly string[] CompletionFields = ["model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "stream", "seed", "user"];
    // OpenAI fields this server does not implement: named as such rather than as unknown.
    static readonly string[] UnsupportedCompletionFields = ["suffix", "logprobs", "echo", "presence_penalty", "frequency_penalty", "best_of", "logit_bias", "stream_options"];

    /// <summary>OpenAI's default max_tokens for completions.</summary>
    public const int DefaultCompletionTokens = 16;

    sealed record CompletionRequest(List<string> Prompts, int[][] PromptIds, int MaxTokens, double Temperature, double TopP, int N, List<string> Stop, bool Stream, long Seed);

    async Task<IResult> Completions(HttpContext ctx)
    {
        if (_pipeline is not GenerationBackend generator)
            return Error(404, "not_found", $"this server runs task '{TaskName(_pipeline.Task)}' with model {_pipeline.ModelName}; start it with a GPT-2 model (--task generate) for /v1/completions.");
        try
        {
            using var doc = await ReadJson(ctx);
            var r = ParseCompletion(doc.RootElement, generator);
            var stream = r.Stream ? Channel.CreateUnbounded<(int Index, string Text)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true }) : null;
            var work = new List<Queued>();
            for (int p = 0; p < r.Prompts.Count; p++)
                for (int j = 0; j < r.N; j++)
                {
                    int index = p * r.N + j;
                    var settings = new CompletionSettings(r.MaxTokens, r.Temperature, r.TopP, r.Stop, r.Seed + index);
                    work.Add(new Queued(new ServingItem(r.Prompts[p]), r.PromptIds[p].Length + r.MaxTokens,
                        Completion: new CompletionWork(r.PromptIds[p], settings, index, stream?.Writer, ctx.RequestAborted)));
                }
            var tasks = Admit(work, ctx.RequestAborted);   // 413 / 429 / 503 before any byte of the answer
            string id = "cmpl-" + Guid.NewGuid().ToString("N");
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            if (stream == null)
            {
                var results = (await Collect(tasks)).Cast<TextGeneration>().ToArray();
                var choices = new JsonArray();
                for (int i = 0; i < results.Length; i++) choices.Add(Choice(i, results[i].Text, results[i].FinishReason));
                int completionTokens = results.Sum(x => x.Tokens.Count);
                int promptTokens = r.PromptIds.Sum(x => x.Length);
                var body = Envelope(id, created, choices);
                body["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens };
                return Results.Content(body.ToJsonString(), "application/json");
            }
            return await StreamCompletion(ctx, id, created, tasks, stream);
        }
        catch (RequestException e) { return Error(e.Status, e.Type, e.Message); }
    }

    /// <summary>Server-sent events: one <c>data: {chunk}</c> per released piece as the model produces it, a closing chunk per choice with its finish_reason, then <c>data: [DONE]</c>.</summary>
    async Task<IResult> StreamCompletion(HttpContext ctx, string id, long created, IReadOnlyList<Task<object>> tasks, Channel<(int Index, string Text)> stream)
    {
        var all = Collect(tasks);
        _ = all.ContinueWith(_ => stream.Writer.TryComplete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        var aborted = ctx.RequestAborted;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";   // proxies must not buffer the stream
        await ctx.Response.Body.FlushAsync(aborted);
        async Task Send(string data)
        {
            await ctx.Response.WriteAsync("data: " + data + "\n\n", aborted);
            await ctx.Response.Body.FlushAsync(aborted);
        }
        await foreach (var (index, text) in stream.Reader.ReadAllAsync(aborted))
            if (text.Length > 0) await Send(Envelope(id, created, [Choice(index, text, null)]).ToJsonString());
        object[] results;
        try { results = await all; }
        catch (Exception e) when (!aborted.IsCancellationRequested)
        {
            // The status line is gone: the error travels as an event and the stream ends without [DONE].
            var (message, type) = e is RequestException re ? (re.Message, re.Type) : ("the server failed on this request; the error is in the server log.", "server_error");
            if (e is not RequestException) _log.LogError(e, "POST /v1/completions failed while streaming");
            await Send(new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type } }.ToJsonString());
            return Results.Empty;
        }
        for (int i = 0; i < results.Length; i++)
            await Send(Envelope(id, created, [Choice(i, "", ((TextGeneration)results[i]).FinishReason)]).ToJsonString());
        await Send("[DONE]");
        return Results.Empty;
    }

    JsonObject Envelope(string id, long created, JsonArray choices) => new()
    {
        ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = _pipeline.ModelName, ["choices"] = choices,
    };

    static JsonObject Choice(int index, string text, FinishReason? finish) => new()
    {
        ["text"] = text, ["index"] = index, ["logprobs"] = null,
        ["finish_reason"] = finish switch { null => null, FinishReason.Stop => "stop", _ => "length" },
    };

    /// <summary>Runs one choice on the batching thread. Failures are returned, not thrown, so the batcher never re-runs (and re-streams) the other choices of a batch.</summary>
    object RunCompletion(CompletionWork c)
    {
        var backend = (GenerationBackend)_pipeline;
        try
        {
            Action<GeneratedPiece>? onPiece = c.Stream == null ? null : piece => c.Stream.TryWrite((c.Index, piece.Text));
            return backend.Complete(c.Prompt, c.Settings, onPiece, c.Aborted);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Cancellation (the client went away) and bad input are the request's own affair; anything else is logged by the handler.
            return e;
        }
    }

    CompletionRequest ParseCompletion(JsonElement body, GenerationBackend generator)
    {
        if (body.ValueKind != JsonValueKind.Object)
            throw new RequestException(400, "invalid_request_error", "the body must be a JSON object like {\"prompt\": \"text\", \"max_tokens\": 16}.");
        foreach (var property in body.EnumerateObject())
        {
            if (Array.IndexOf(CompletionFields, property.Name) >= 0) continue;
            string supported = string.Join(", ", CompletionFields);
            throw new RequestException(400, "invalid_request_error", Array.IndexOf(UnsupportedCompletionFields, property.Name) >= 0
                ? $"\"{property.Name}\" is not supported by this server; supported fields: {supported}."
                : $"unknown field \"{property.Name}\"; supported fields: {supported}.");
        }
        if (body.TryGetProperty("model", out var model) && model.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            throw new RequestException(400, "invalid_request_error", "\"model\" must be a string.");
        if (body.TryGetProperty("user", out var user) && user.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            throw new RequestException(400, "invalid_request_error", "\"user\" must be a string.");
        if (!body.TryGetProperty("prompt", out var promptEl) || promptEl.ValueKind == JsonValueKind.Null)
            throw new RequestException(400, "invalid_request_error", "missing field \"prompt\" (a string or an array of strings).");
        if (promptEl.ValueKind == JsonValueKind.Array && promptEl.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.Number))
            throw new RequestException(400, "invalid_request_error", "\"prompt\" as token ids is not supported; send the text.");
        var prompts = Texts(promptEl, "prompt", allowEmpty: true);   // "" starts from BOS
        int maxTokens = OptionalInt(body, "max_tokens", 1, generator.ContextLength) ?? DefaultCompletionTokens;
        double temperature = OptionalNumber(body, "temperature", 0, 2) ?? 1.0;
        double topP = OptionalNumber(body, "top_p", 0, 1) ?? 1.0;
        if (topP <= 0) throw new RequestException(400, "invalid_request_error", "\"top_p\" must be in (0, 1].");
        int n = OptionalInt(body, "n", 1, _options.MaxInputsPerRequest) ?? 1;
        if (prompts.Count * n > _options.MaxInputsPerRequest)
            throw new RequestException(400, "invalid_request_error", $"{prompts.Count} prompts × n = {n} make {prompts.Count * n} choices; the limit is {_options.MaxInputsPerRequest} per request.");
        var stop = StopStrings(body);
        bool stream = false;
        if (body.TryGetProperty("stream", out var s) && s.ValueKind != JsonValueKind.Null)
            stream = s.ValueKind is JsonValueKind.True or JsonValueKind.False ? s.GetBoolean() : throw new RequestException(400, "invalid_request_error", "\"stream\" must be true or false.");
        long seed;
        if (body.TryGetProperty("seed", out var seedEl) && seedEl.ValueKind != JsonValueKind.Null)
        {
            if (seedEl.ValueKind != JsonValueKind.Number || !seedEl.TryGetInt64(out seed))
                throw new RequestException(400, "invalid_request_error", "\"seed\" must be an integer.");
        }
        else seed = Random.Shared.NextInt64();
        var ids = new int[prompts.Count][];
        for (int i = 0; i < prompts.Count; i++)
        {
            string field = prompts.Count == 1 ? "prompt" : $"prompt[{i}]";
            ids[i] = Run(() => generator.EncodePrompt(prompts[i]));
            if (ids[i].Length + maxTokens > generator.ContextLength)
                throw new RequestException(400, "invalid_request_error",
                    $"{field} has {ids[i].Length} tokens and max_tokens is {maxTokens}: {ids[i].Length + maxTokens} > the model's context of {generator.ContextLength} tokens. Shorten the prompt or lower max_tokens.");
        }
        return new CompletionRequest(prompts, ids, maxTokens, temperature, topP, n, stop, stream, seed);
    }

    static List<string> StopStrings(JsonElement body)
    {
        const string Shape = "\"stop\" must be a string or an array of at most 4 non-empty strings.";
        if (!body.TryGetProperty("stop", out var stop) || stop.ValueKind == JsonValueKind.Null) return [];
        var list = stop.ValueKind switch
        {
            JsonValueKind.String => [JsonText(stop, "\"stop\"")],
            JsonValueKind.Array => stop.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.String ? JsonText(e, $"\"stop\"[{i}]")
                : throw new RequestException(400, "invalid_request_error", Shape)).ToList(),
            _ => throw new RequestException(400, "invalid_request_error", Shape),
        };
        if (list.Count > 4 || list.Any(string.IsNullOrEmpty)) throw new RequestException(400, "invalid_request_error", Shape);
        return list;
    }

    static double? OptionalNumber(JsonElement body, string name, double min, double max)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var x) || x < min || x > max)
            throw new RequestException(400, "invalid_request_error", $"\"{name}\" must be a number in [{min}, {max}].");
        return x;
    }
}
