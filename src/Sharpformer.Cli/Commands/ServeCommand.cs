using System.CommandLine;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Serving;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer serve --model DIR [--task classify|ner|embed|fill-mask|generate|g2p] --urls http://127.0.0.1:PORT
/// [--max-batch-size 32] [--max-wait-ms 5] [--queue-capacity 1024]</c>: the HTTP inference server.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var cmd = new Command("serve", "Serve a model over HTTP (JSON API with dynamic batching, OpenAI-style /v1/embeddings, metrics, demo page).");
        var model = new Option<string?>("--model") { Description = "Model directory or Hub model id in the local cache (default with --task ner, embed, fill-mask, generate or g2p: the task's shipped model in models/)." };
        var task = new Option<string?>("--task") { Description = "classify, ner, embed, fill-mask, generate or g2p (default: from the checkpoint's head; GPT-2 generates; g2p for a train seq2seq model)." };
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on, ';'-separated.", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var maxBatch = new Option<int>("--max-batch-size") { Description = "Most texts per forward pass.", DefaultValueFactory = _ => 32 };
        var maxWait = new Option<int>("--max-wait-ms") { Description = "Longest a text waits for a batch to fill.", DefaultValueFactory = _ => 5 };
        var capacity = new Option<int>("--queue-capacity") { Description = "Texts that may wait; more get HTTP 429.", DefaultValueFactory = _ => 1024 };
        var maxText = new Option<int>("--max-text-length") { Description = "Longest text in characters; longer get HTTP 400.", DefaultValueFactory = _ => 20_000 };
        var maxTokens = new Option<long>("--max-queued-tokens") { Description = "Tokens queued or running at once; more get HTTP 429.", DefaultValueFactory = _ => new ServerOptions().MaxQueuedTokens };
        var threads = ThreadsOption.Create();
        foreach (var o in new Option[] { model, task, urls, maxBatch, maxWait, capacity, maxText, maxTokens, threads }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var execution = ThreadsOption.Read(r, threads);
            var options = new ServerOptions
            {
                MaxBatchSize = Positive(r.GetValue(maxBatch), "--max-batch-size"), MaxWaitMs = NonNegative(r.GetValue(maxWait), "--max-wait-ms"),
                QueueCapacity = Positive(r.GetValue(capacity), "--queue-capacity"), MaxTextLength = Positive(r.GetValue(maxText), "--max-text-length"),
                MaxQueuedTokens = r.GetValue(maxTokens) >= 1 ? r.GetValue(maxTokens) : throw new ArgumentException($"--max-queued-tokens must be ≥ 1, not {r.GetValue(maxTokens)}."),
            };
            var requested = ParseTask(r.GetValue(task));
            var dir = r.GetValue(model) ?? ShippedDefault(requested);
            var servingTask = requested ?? TaskOf(dir);
            IPipeline backend = servingTask == ServingTask.Generate ? GenerationBackend.Load(dir, execution)
                : servingTask == ServingTask.G2P ? G2PBackend.Load(dir, execution)
                : PipelineBackend.Load(dir, servingTask, new PipelineOptions { BatchSize = options.MaxBatchSize, MaxTextLength = options.MaxTextLength, Execution = execution });
            var output = r.InvocationConfiguration.Output;
            var server = SharpformerServer.Create(backend, options, r.GetValue(urls)!.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                new TextWriterLoggerProvider(output));
            output.WriteLine($"serving {backend.ModelName} ({SharpformerServer.TaskName(servingTask)}) on {r.GetValue(urls)} — Ctrl+C to stop");
            server.RunAsync().GetAwaiter().GetResult();
            return 0;
        });
        return cmd;
    }

    // The shipped model of a task that has one; classify has none (no classifier is shipped) and no task says nothing.
    static string ShippedDefault(ServingTask? task) => task switch
    {
        ServingTask.Ner => Hub.ShippedModels.Resolve(Hub.ShippedTask.Ner, CliHost.ModelSearch),
        ServingTask.Embed => Hub.ShippedModels.Resolve(Hub.ShippedTask.Features, CliHost.ModelSearch),
        ServingTask.FillMask => Hub.ShippedModels.Resolve(Hub.ShippedTask.FillMask, CliHost.ModelSearch),
        ServingTask.Generate => Hub.ShippedModels.Resolve(Hub.ShippedTask.Generate, CliHost.ModelSearch),
        ServingTask.G2P => Hub.ShippedModels.Resolve(Hub.ShippedTask.G2P, CliHost.ModelSearch),
        _ => throw new ArgumentException("give --model DIR, or --task ner|embed|fill-mask|generate|g2p to serve that task's shipped model."),
    };

    static int Positive(int v, string name) => v >= 1 ? v : throw new ArgumentException($"{name} must be ≥ 1, not {v}.");
    static int NonNegative(int v, string name) => v >= 0 ? v : throw new ArgumentException($"{name} must be ≥ 0, not {v}.");

    internal static ServingTask? ParseTask(string? name) => name?.ToLowerInvariant() switch
    {
        null => null,
        "classify" => ServingTask.Classify, "ner" => ServingTask.Ner, "embed" => ServingTask.Embed, "fill-mask" => ServingTask.FillMask,
        "generate" => ServingTask.Generate, "g2p" => ServingTask.G2P,
        _ => throw new ArgumentException($"--task {name} is unknown; use classify, ner, embed, fill-mask, generate or g2p."),
    };

    /// <summary>The task a checkpoint's head implies (config.json architectures).</summary>
    internal static ServingTask TaskOf(string modelDirOrId)
    {
        if (G2PTraining.IsModelDirectory(modelDirOrId)) return ServingTask.G2P;
        // A saved seed model is a text classifier (its config.json is not a BERT-family one).
        if (SeedTransformer.IsSeedTransformerDirectory(AutoModel.ResolveDirectory(modelDirOrId))) return ServingTask.Classify;
        var config = ModelConfigLoader.Load(AutoModel.ResolveDirectory(modelDirOrId));
        if (config is Gpt2Config) return ServingTask.Generate;
        var arch = config.Architectures?.FirstOrDefault() ?? "";
        return arch.EndsWith("ForSequenceClassification", StringComparison.Ordinal) ? ServingTask.Classify
            : arch.EndsWith("ForTokenClassification", StringComparison.Ordinal) ? ServingTask.Ner
            : arch.EndsWith("ForMaskedLM", StringComparison.Ordinal) ? ServingTask.FillMask
            : ServingTask.Embed;
    }
}
