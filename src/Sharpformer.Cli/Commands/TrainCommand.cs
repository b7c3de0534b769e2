using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer train …</c>: <c>seed-agnews</c> (the one-command main job), <c>text-classifier</c>
/// (from scratch with the seed transformer or fine-tuning a BERT-family directory) and <c>token-classifier</c> (CoNLL NER).
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var cmd = new Command("train", "Train a text or token classifier (from scratch or by fine-tuning) and save it as a model directory.");
        cmd.Subcommands.Add(SeedAgNews());
        cmd.Subcommands.Add(TextClassifier());
        cmd.Subcommands.Add(TokenClassifierCommand.Create());
        cmd.Subcommands.Add(G2PCommand.TrainSeq2Seq());
        return cmd;
    }

    static Command SeedAgNews()
    {
        var data = DataOption();
        var epochs = new Option<int>("--epochs") { Description = "Training epochs.", DefaultValueFactory = _ => 3 };
        var seed = new Option<int>("--seed") { Description = "Seed for initialisation, shuffling and dropout.", DefaultValueFactory = _ => 0 };
        var masked = new Option<bool>("--masked") { Description = "Mask padding in attention and average pooling (the tutorial masks nothing)." };
        var output = new Option<string?>("--output") { Description = "Model directory to write (default: ./seed-agnews-s<seed>)." };
        var resume = ResumeOption();
        var common = new CommonOptions();
        var cmd = new Command("seed-agnews", "Train the Keras-tutorial transformer on AG News (train_subset.csv) and print test accuracy per epoch.");
        cmd.Options.Add(data); cmd.Options.Add(epochs); cmd.Options.Add(seed); cmd.Options.Add(masked); cmd.Options.Add(output); cmd.Options.Add(resume);
        common.AddTo(cmd);
        cmd.SetAction((r, ct) => StopOnCtrlC(ct, ct =>
        {
            using var executionScope = common.EnterExecution(r);
            string dir = DataFolder.Resolve(r.GetValue(data));
            var train = AgNews.ReadTrainSubset(Path.Combine(dir, "ag_news", "train_subset.csv"));
            var test = AgNews.ReadTest(Path.Combine(dir, "ag_news", "test.csv"));
            int s = r.GetValue(seed);
            string outDir = r.GetValue(output) ?? $"seed-agnews-s{s}";
            return RunSeed(train, test, AgNews.Labels, outDir,
                new SeedTrainingOptions
                {
                    Epochs = r.GetValue(epochs), Seed = s, Masked = r.GetValue(masked), DisableProgressBar = r.GetValue(common.NoProgress),
                    ResumeFrom = ResolveResume(r.GetValue(resume), outDir),
                },
                r.GetValue(common.Json), ct);
        }));
        return cmd;
    }

    static Command TextClassifier()
    {
        var train = new Option<string>("--train") { Description = "Training file: AG News CSV, emotion 'text;label', CSV with header, or JSON lines (recognised from the file).", Required = true };
        var eval = new Option<string?>("--eval") { Description = "Evaluation file (same formats), evaluated after every epoch." };
        var format = new Option<TextFileFormat>("--format") { Description = "Data format, when recognition from the file is not wanted.", DefaultValueFactory = _ => TextFileFormat.Auto };
        var textColumn = new Option<string>("--text-column") { Description = "CSV column / JSON field holding the text.", DefaultValueFactory = _ => "text" };
        var labelColumn = new Option<string>("--label-column") { Description = "CSV column / JSON field holding the label.", DefaultValueFactory = _ => "label" };
        var architecture = new Option<string?>("--architecture") { Description = "Train from scratch: 'seed-transformer' (the Keras-tutorial model)." };
        var model = new Option<string?>("--model") { Description = "Fine-tune this BERT/DistilBERT/GPT-2 model directory instead (mutually exclusive with --architecture); a GPT-2 classifies from its last non-pad token." };
        var output = new Option<string>("--output") { Description = "Model directory to write (checkpoints and metrics.jsonl go there too).", Required = true };
        var epochs = new Option<double>("--epochs") { Description = "Training epochs.", DefaultValueFactory = _ => 3 };
        var seed = new Option<int>("--seed") { Description = "Seed for initialisation, shuffling and dropout.", DefaultValueFactory = _ => 0 };
        var batch = new Option<int?>("--batch-size") { Description = "Per-step batch size of each process (default: 128 seed transformer, 16 fine-tuning); under mpirun -np N a step sees N times as many examples." };
        var lr = new Option<double?>("--learning-rate") { Description = "Peak learning rate (default: 1e-3 seed transformer, 5e-5 fine-tuning)." };
        var masked = new Option<bool>("--masked") { Description = "Seed transformer: mask padding in attention and pooling." };
        var freeze = new Option<bool>("--freeze-base") { Description = "Fine-tuning: train only the classification head (the encoder stays frozen)." };
        var maxLength = new Option<int>("--max-length") { Description = "Fine-tuning: truncate inputs to this many tokens.", DefaultValueFactory = _ => 128 };
        var warmup = new Option<double>("--warmup-ratio") { Description = "Fine-tuning: fraction of steps with linear warmup.", DefaultValueFactory = _ => 0.0 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "Fine-tuning: AdamW weight decay (not on biases and LayerNorms).", DefaultValueFactory = _ => 0.01 };
        var resume = ResumeOption();
        var saveCheckpoints = new Option<bool>("--save-checkpoints") { Description = "Write a resumable checkpoint-<step>/ after every epoch." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training texts (quick runs); the label set still comes from the whole file." };
        var dropout = new Option<float>("--dropout") { Description = "Seed transformer: dropout rate (0 makes runs depend only on the data order, e.g. to compare process counts).", DefaultValueFactory = _ => 0.1f };
        var loggingSteps = new Option<int>("--logging-steps") { Description = "Seed transformer: log train_loss to metrics.jsonl every N steps (default: once per epoch)." };
        var randomInit = RandomInitOption();
        var task = TaskOption();
        var common = new CommonOptions();
        var cmd = new Command("text-classifier", "Train a sequence classifier from scratch (--architecture seed-transformer) or by fine-tuning (--model DIR).");
        foreach (var o in new Option[] { train, eval, format, textColumn, labelColumn, architecture, model, output, epochs, seed, batch, lr, masked, freeze, maxLength, warmup, weightDecay, resume, saveCheckpoints, limit, dropout, loggingSteps, randomInit, task })
            cmd.Options.Add(o);
        common.AddTo(cmd);
        cmd.SetAction((r, ct) => StopOnCtrlC(ct, ct =>
        {
            using var executionScope = common.EnterExecution(r);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            string? arch = r.GetValue(architecture), modelDir = r.GetValue(model);
            if ((arch == null) == (modelDir == null)) throw new ArgumentException("Give exactly one of --architecture seed-transformer (from scratch) or --model DIR (fine-tuning).");
            var fmt = r.GetValue(format);
            var trainSet = TextClassificationFiles.Read(r.GetValue(train)!, fmt, null, r.GetValue(textColumn)!, r.GetValue(labelColumn)!);
            var labels = trainSet.Labels ?? throw new DataFormatException(trainSet.File, 1, "the reader produced no label set.");
            IReadOnlyList<TextExample> trainExamples = trainSet;
            if (r.GetValue(limit) is int n)
                trainExamples = n >= 1 ? trainSet.Take(n).ToList() : throw new ArgumentException($"--limit must be ≥ 1, not {n}.");
            var evalSet = r.GetValue(eval) is { } e ? TextClassificationFiles.Read(e, fmt, labels, r.GetValue(textColumn)!, r.GetValue(labelColumn)!) : null;
            string outDir = r.GetValue(output)!;
            string? resumeFrom = ResolveResume(r.GetValue(resume), outDir);
            bool json = r.GetValue(common.Json), noProgress = r.GetValue(common.NoProgress);
            if (arch != null)
            {
                if (arch != "seed-transformer") throw new ArgumentException($"--architecture '{arch}' is not known; the from-scratch architecture is 'seed-transformer'.");
                var options = new SeedTrainingOptions
                {
                    Epochs = (int)Math.Ceiling(r.GetValue(epochs)), Seed = r.GetValue(seed), BatchSize = r.GetValue(batch) ?? 128,
                    LearningRate = r.GetValue(lr) ?? 1e-3, Masked = r.GetValue(masked), DisableProgressBar = noProgress,
                    SaveCheckpoints = r.GetValue(saveCheckpoints), ResumeFrom = resumeFrom,
                    Dropout = r.GetValue(dropout), LoggingSteps = r.GetValue(loggingSteps),
                };
                return RunSeed(trainExamples, evalSet, labels, outDir, options, json, ct);
            }
            var ft = new FineTuneOptions
            {
                Epochs = r.GetValue(epochs), Seed = r.GetValue(seed), BatchSize = r.GetValue(batch) ?? 16, LearningRate = r.GetValue(lr) ?? 5e-5,
                FreezeBase = r.GetValue(freeze), MaxLength = r.GetValue(maxLength), WarmupRatio = r.GetValue(warmup), WeightDecay = r.GetValue(weightDecay),
                DisableProgressBar = noProgress, SaveCheckpoints = r.GetValue(saveCheckpoints), ResumeFrom = resumeFrom, RandomInit = r.GetValue(randomInit),
            };
            var result = FineTuning.TrainTextClassifier(modelDir!, trainExamples, evalSet, labels, outDir, ft, rec => PrintEval(rec, json), ct);
            PrintSummary(result.Evaluations, result.Train, outDir, json);
            if (json && r.GetValue(eval) is { } evalFile)
                Console.WriteLine(TaskResult.FromFineTuning(r.GetValue(task) ?? TaskResult.TaskOf(evalFile), TaskResult.SplitOf(evalFile), modelDir!, ft, result,
                    trainExamples.Count, clock.Elapsed.TotalSeconds, TaskResult.ProcessCpuSeconds()).ToJson());
            return 0;
        }));
        return cmd;
    }

    internal static Option<bool> RandomInitOption() => new("--random-init")
    {
        Description = "Ignore the checkpoint's weights: the same architecture, config and tokenizer with the model family's initialiser (the from-scratch control of a transfer experiment).",
    };

    internal static Option<string?> TaskOption() => new("--task")
    {
        Description = "Task name in the final JSON result line (default: the evaluation file's folder, e.g. ag_news, emotion, conll2003).",
    };

    internal static Option<string?> ResumeOption() => new("--resume") { Description = "Continue from a checkpoint directory (or 'latest' in --output)." };

    /// <summary>
    /// Runs a training verb so that Ctrl+C stops it at a safe point: the first Ctrl+C cancels the token the trainer
    /// watches (it finishes the current step and writes a run checkpoint); a second one ends the process at once.
    /// </summary>
    /// <remarks>
    /// System.CommandLine's own SIGINT handling only starts once a verb's action has returned its task, and these
    /// actions run synchronously, so this handler is the one that sees Ctrl+C while training.
    /// </remarks>
    internal static Task<int> StopOnCtrlC(CancellationToken ct, Func<CancellationToken, int> train)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cts.IsCancellationRequested) return;   // second Ctrl+C: let the process end
            e.Cancel = true;
            Console.Error.WriteLine();
            Console.Error.WriteLine("stopping after the current step to save a checkpoint (Ctrl+C again to abort without one)...");
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try { return Task.FromResult(train(cts.Token)); }
        catch (TrainingCancelledException e)
        {
            Console.Error.WriteLine($"stopped at step {e.Step}; checkpoint saved to {e.CheckpointDirectory}; resume with --resume {e.CheckpointDirectory} (and the same other options)");
            return Task.FromResult(130);
        }
        finally { Console.CancelKeyPress -= onCancel; }
    }

    internal static string? ResolveResume(string? resume, string outDir)
    {
        if (resume == null) return null;
        if (resume != "latest") return resume;
        return RunCheckpoint.List(outDir).LastOrDefault() ?? throw new CheckpointFormatException($"--resume latest: no checkpoint-<step>/ under '{outDir}'.");
    }

    static int RunSeed(IReadOnlyList<TextExample> train, IReadOnlyList<TextExample>? test, LabelSet labels, string outDir, SeedTrainingOptions options, bool json, CancellationToken ct)
    {
        if (!json) Console.Error.WriteLine($"training the seed transformer on {train.Count} texts ({labels.Count} labels), evaluating on {test?.Count ?? 0}; seed {options.Seed}, {options.Epochs} epochs, batch {options.BatchSize}{RanksNote()}{(options.Masked ? ", masked" : "")}");
        var result = SeedTextClassifier.Train(train, test, labels, outDir, options, rec => PrintEval(rec, json), ct);
        PrintSummary(result.Evaluations, result.Train, outDir, json);
        return 0;
    }

    /// <summary>" per rank × N ranks" under mpirun (the batch option is per process), else nothing.</summary>
    internal static string RanksNote() => Training.Distributed.ProcessGroups.Launched().Size is > 1 and int n ? $" per rank × {n} ranks" : "";

    internal static void PrintEval(EvaluationLog record, bool json)
    {
        var fields = new List<(string Key, object? Value)> { ("epoch", record.Epoch), ("step", record.Step), ("train_loss", record.TrainLoss) };
        foreach (var k in (string[])["eval_loss", "eval_accuracy", "eval_f1_weighted", "eval_entity_f1"])
            if (record.Metric(k) is double v) fields.Add((k, v));
        fields.Add(("samples_per_s", record.SamplesPerSecond));
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(fields.ToDictionary(f => f.Key, f => f.Value)));
            return;
        }
        Console.WriteLine(string.Join("  ", fields.Select(f => f.Key + " " + Format(f.Key, f.Value))));
    }

    internal static void PrintSummary(IReadOnlyList<EvaluationLog> evals, TrainResult train, string outDir, bool json)
    {
        if (json) return;
        string metric = evals.Count > 0 && evals[0].Metrics.ContainsKey("eval_entity_f1") ? "eval_entity_f1" : "eval_accuracy";
        if (evals.Count > 0)
        {
            var best = evals.Select((e, i) => (Value: e.Metrics[metric], Epoch: i + 1)).MaxBy(x => x.Value);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best {metric} {best.Value:F4} (epoch {best.Epoch}); final {evals[^1].Metrics[metric]:F4}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"trained {train.GlobalStep} steps at {train.SamplesPerSecond:F0} samples/s; model saved to {outDir}"));
    }

    static string Format(string key, object? v) => v switch
    {
        double d => d.ToString(key is "samples_per_s" or "epoch" ? (key == "epoch" ? "F2" : "F0") : "F4", CultureInfo.InvariantCulture),
        null => "-",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    internal static Option<string?> DataOption() => new("--data") { Description = "Data folder holding ag_news/, emotion/, conll2003/ (default: SHARPFORMER_DATA, else a shared/data folder above the current or program directory)." };
}

/// <summary>Options every training verb shares.</summary>
internal sealed class CommonOptions
{
    public Option<bool> Json { get; } = new("--json") { Description = "Print one JSON object per line per evaluation (epoch, step, train_loss, eval_loss, eval metrics, samples_per_s); fine-tuning with an evaluation file ends with a result line (task, split, method, model, init, seed, metrics, budget, seconds, cpu_seconds)." };
    public Option<bool> NoProgress { get; } = new("--no-progress") { Description = "Do not draw the progress line on stderr (it is also off when stderr is not a terminal)." };
    public Option<int> Threads { get; } = ThreadsOption.Create();
    public Option<bool> Bf16 { get; } = new("--bf16") { Description = "Mixed precision: linear layers multiply in bfloat16 with fp32 sums (forward and backward); weights, optimizer state, norms, softmax and losses stay fp32. Fastest on CPUs with AVX512_BF16." };

    public void AddTo(Command cmd) { cmd.Options.Add(Json); cmd.Options.Add(NoProgress); cmd.Options.Add(Threads); cmd.Options.Add(Bf16); }

    /// <summary>Runs the verb's training and evaluation with --threads and --bf16: the trainer and the models it builds inherit the scope.</summary>
    public IDisposable EnterExecution(ParseResult r)
    {
        bool bf16 = r.GetValue(Bf16);
        // The portable bf16 kernel gives the same sums but is slower than fp32 SGEMM: say so instead of silently training slower.
        if (bf16 && Kernels.Bf16Gemm.Best == Kernels.Bf16Kernel.Portable)
            Console.Error.WriteLine("warning: --bf16 on a CPU without AVX512_BF16 (or with SHARPFORMER_JIT=0) runs the portable bf16 kernel, which is slower than fp32; omit --bf16 here.");
        return Tensors.ExecutionScope.Enter(ThreadsOption.Read(r, Threads).WithBf16(bf16));
    }
}
