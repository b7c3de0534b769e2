using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Pipelines;
using Sharpformer.Serving;
using Sharpformer.Tensors;

namespace Sharpformer.Bench;

/// <summary>
/// HTTP load test of the inference server: N requests over C concurrent connections, then the server's /metrics.
/// Prints one JSON object: throughput, client-side latency percentiles, error count, server batch-size statistics.
/// Usage: loadtest (--url http://host:port | --model DIR [--task ner] [--max-batch-size 32] [--max-wait-ms 5]
///        [--queue-capacity 1024] [--threads N]) [--requests 10000] [--concurrency 64] [--route /v1/ner] [--json]
/// With --model the server is started in-process on 127.0.0.1 (random port).
/// </summary>
internal static class LoadTestBench
{
    static readonly string[] Texts =
    [
        "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
        "Hugging Face Inc. is a company based in New York City.",
        "Sundar Pichai is the CEO of Google, headquartered in Mountain View, California.",
        "The capital of France is [MASK].",
        "Stocks rallied after the central bank cut interest rates.",
        "Barack Obama was born in Honolulu, Hawaii.",
    ];

    public static int Run(string[] args)
    {
        string? url = Option(args, "--url"), model = Option(args, "--model");
        if ((url is null) == (model is null)) { Console.Error.WriteLine("loadtest: give exactly one of --url URL or --model DIR."); return 2; }
        int requests = Int(args, "--requests", 10_000), concurrency = Int(args, "--concurrency", 64);
        if (requests < 1 || concurrency < 1) { Console.Error.WriteLine("loadtest: --requests and --concurrency must be ≥ 1."); return 2; }
        return RunAsync(url, model, args, requests, concurrency).GetAwaiter().GetResult();
    }

    static async Task<int> RunAsync(string? url, string? model, string[] args, int requests, int concurrency)
    {
        SharpformerServer? server = null;
        string task = Option(args, "--task") ?? "ner";
        var serverOptions = new ServerOptions
        {
            MaxBatchSize = Int(args, "--max-batch-size", 32), MaxWaitMs = Int(args, "--max-wait-ms", 5), QueueCapacity = Int(args, "--queue-capacity", 1024),
        };
        if (model is not null)
        {
            var servingTask = task switch
            {
                "classify" => ServingTask.Classify, "ner" => ServingTask.Ner, "embed" => ServingTask.Embed, "fill-mask" => ServingTask.FillMask,
                _ => throw new ArgumentException($"--task {task} is unknown; use classify, ner, embed or fill-mask."),
            };
            var backend = PipelineBackend.Load(model, servingTask, new PipelineOptions { BatchSize = serverOptions.MaxBatchSize, Execution = Execution(args) });
            server = SharpformerServer.Create(backend, serverOptions, ["http://127.0.0.1:0"]);
            await server.StartAsync();
            url = server.Addresses.First();
        }
        else
        {
            using var probe = new HttpClient();
            var health = JsonNode.Parse(await probe.GetStringAsync(new Uri(new Uri(url!), "/health")))!;
            task = health["task"]?.GetValue<string>() ?? task;
        }
        string route = Option(args, "--route") ?? "/v1/" + task;
        var texts = task == "fill-mask" ? Texts.Where(x => x.Contains("[MASK]", StringComparison.Ordinal)).ToArray() : Texts.Where(x => !x.Contains('[')).ToArray();

        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = concurrency, PooledConnectionLifetime = TimeSpan.FromMinutes(10) };
        using var client = new HttpClient(handler) { BaseAddress = new Uri(url!), Timeout = TimeSpan.FromSeconds(120) };
        // OpenAI's route takes "input"; ours take "inputs".
        string field = route.EndsWith("/embeddings", StringComparison.Ordinal) ? "input" : "inputs";
        // One warm-up request so JIT and first allocations are not in the numbers (and a wrong route fails early).
        using (var warm = await client.PostAsync(route, Body(field, texts[0])))
        {
            if (!warm.IsSuccessStatusCode)
            {
                Console.Error.WriteLine($"loadtest: POST {route} answered {(int)warm.StatusCode}: {await warm.Content.ReadAsStringAsync()}");
                if (server is not null) await server.DisposeAsync();
                return 1;
            }
        }
        var before = JsonNode.Parse(await client.GetStringAsync("/metrics"))!;

        var latencies = new double[requests];
        int next = -1, errors = 0;
        var statusCounts = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var wall = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests)
            {
                var sw = Stopwatch.StartNew();
                try
                {
                    using var response = await client.PostAsync(route, Body(field, texts[i % texts.Length]));
                    await response.Content.ReadAsByteArrayAsync();
                    statusCounts.AddOrUpdate((int)response.StatusCode, 1, (_, n) => n + 1);
                    if (response.StatusCode != HttpStatusCode.OK) Interlocked.Increment(ref errors);
                }
                catch (Exception) { Interlocked.Increment(ref errors); statusCounts.AddOrUpdate(0, 1, (_, n) => n + 1); }
                latencies[i] = sw.Elapsed.TotalMilliseconds;
            }
        }).ToArray();
        await Task.WhenAll(workers);
        double seconds = wall.Elapsed.TotalSeconds;
        var metrics = JsonNode.Parse(await client.GetStringAsync("/metrics"))!;
        if (server is not null) await server.DisposeAsync();

        Array.Sort(latencies);
        var batches = metrics["batch_sizes"]!;
        long batchCount = batches["batches"]!.GetValue<long>() - before["batch_sizes"]!["batches"]!.GetValue<long>();
        long items = batches["items"]!.GetValue<long>() - before["batch_sizes"]!["items"]!.GetValue<long>();
        var result = new JsonObject
        {
            ["suite"] = "loadtest",
            ["url"] = model is null ? url : "in-process",
            ["model"] = model is null ? null : Path.GetFileName(Path.TrimEndingDirectorySeparator(model)),
            ["task"] = task,
            ["route"] = route,
            ["requests"] = requests,
            ["concurrency"] = concurrency,
            ["errors"] = errors,
            ["status_counts"] = new JsonObject(statusCounts.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key.ToString(CultureInfo.InvariantCulture), (JsonNode?)kv.Value))),
            ["seconds"] = Math.Round(seconds, 3),
            ["throughput_rps"] = Math.Round(requests / seconds, 1),
            ["latency_ms"] = new JsonObject
            {
                ["p50"] = Math.Round(ServerMetrics.Percentile(latencies, 0.50), 2), ["p90"] = Math.Round(ServerMetrics.Percentile(latencies, 0.90), 2),
                ["p99"] = Math.Round(ServerMetrics.Percentile(latencies, 0.99), 2), ["max"] = Math.Round(latencies[^1], 2),
            },
            ["server_options"] = model is null ? null : new JsonObject
            {
                ["max_batch_size"] = serverOptions.MaxBatchSize, ["max_wait_ms"] = serverOptions.MaxWaitMs, ["queue_capacity"] = serverOptions.QueueCapacity,
                ["threads"] = Sharpformer.Kernels.Parallelism.Resolve(Execution(args).Threads),
            },
            ["server_batches"] = new JsonObject
            {
                ["batches"] = batchCount, ["items"] = items, ["mean_size"] = batchCount == 0 ? 0 : Math.Round((double)items / batchCount, 2),
                ["max_size"] = batches["max_size"]!.GetValue<int>(), ["histogram_since_start"] = batches["histogram"]!.DeepClone(),
            },
            ["server_latency_ms"] = metrics["latency_ms"]?[$"POST {route}"]?.DeepClone(),
        };
        Console.WriteLine(result.ToJsonString(args.Contains("--json") ? new JsonSerializerOptions() : new JsonSerializerOptions { WriteIndented = true }));
        return errors == 0 ? 0 : 1;
    }

    static StringContent Body(string field, string text) =>
        new(new JsonObject { [field] = text }.ToJsonString(), Encoding.UTF8, "application/json");

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static int Int(string[] args, string name, int fallback) =>
        Option(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    /// <summary>--threads for the served model (else SHARPFORMER_THREADS, else all cores).</summary>
    static ExecutionOptions Execution(string[] args) =>
        ExecutionOptions.FromEnvironment(Option(args, "--threads") is { } t ? int.Parse(t, CultureInfo.InvariantCulture) : 0);
}
