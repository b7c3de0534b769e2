using System.Diagnostics;
using System.Globalization;
using Sharpformer.Models;
using Sharpformer.Training;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Bench;

/// <summary>
/// Data parallelism over Open MPI on this machine (loopback, shared memory). Options: --json, --ranks N (default 2),
/// --floats F (default 25,000,000 = 100 MB), --repeats R (default 7), --rounds K (default 3), --batch B (default 32),
/// --steps S (default 8).
/// (a) allreduce: MPI_Allreduce (sum, in place) of F floats across N ranks through Sharpformer's binding
///     (<see cref="MpiProcessGroup"/>, the nonblocking call the trainer uses, then wait) against the same collective from C
///     (mpi/allreduce.c, compiled with mpicc): median of R timed calls after one warm-up, each between barriers, the
///     slowest rank's time; K rounds alternating C and .NET so both see the same machine load.
/// (b) train: the seed transformer through the Trainer, batch B × 256 per rank (AG News-like lengths), 1 kernel thread per
///     rank, 1 rank vs N ranks: median step time after two warm-up steps, padded tokens/s of the whole job, and the process
///     CPU time per step summed over the ranks (tokens per CPU second: the scaling a quiet machine with a core per rank shows).
/// (c) pretrain: masked-LM pretraining of a tiny BERT (2 layers, hidden 128, 2 heads, intermediate 512 — bert-tiny's shape —
///     vocabulary 8,192, dropout 0.1) through the Trainer on random 128-token blocks masked at 15%, batch B/2 blocks per rank,
///     1 kernel thread per rank, 1 rank vs N ranks: the same figures as (b), tokens being block tokens.
/// Launched without mpirun, it starts the MPI runs itself (mpirun --oversubscribe --bind-to none, root allowed) and prints
/// their JSON lines.
/// </summary>
internal static class AllReduceBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        if (args.Contains("--child-allreduce")) return ChildAllReduce(args);
        if (args.Contains("--child-train")) return ChildTrain(args);
        if (args.Contains("--child-pretrain")) return ChildPretrain(args);
        string mpirun = new[] { "/usr/bin/mpirun", "/usr/local/bin/mpirun" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("mpirun not found: apt-get install openmpi-bin libopenmpi-dev");
        int ranks = IntOption(args, "--ranks", 2), rounds = IntOption(args, "--rounds", 3);
        string floats = (Option(args, "--floats") ?? "25000000"), repeats = Option(args, "--repeats") ?? "7";
        string reference = CompileReference();
        string self = typeof(AllReduceBench).Assembly.Location;
        var lines = new List<string>();
        for (int k = 0; k < rounds; k++)
        {
            lines.AddRange(Mpi(mpirun, ranks, [reference, floats, repeats]));
            lines.AddRange(Mpi(mpirun, ranks, ["dotnet", self, "allreduce", "--child-allreduce", "--floats", floats, "--repeats", repeats]));
        }
        string batch = Option(args, "--batch") ?? "32", steps = Option(args, "--steps") ?? "8";
        for (int k = 0; k < Math.Max(1, rounds - 1); k++)
        {
            lines.AddRange(Mpi(mpirun, 1, ["dotnet", self, "allreduce", "--child-train", "--batch", batch, "--steps", steps]));
            lines.AddRange(Mpi(mpirun, ranks, ["dotnet", self, "allreduce", "--child-train", "--batch", batch, "--steps", steps]));
        }
        for (int k = 0; k < Math.Max(1, rounds - 1); k++)
        {
            lines.AddRange(Mpi(mpirun, 1, ["dotnet", self, "allreduce", "--child-pretrain", "--batch", batch, "--steps", steps]));
            lines.AddRange(Mpi(mpirun, ranks, ["dotnet", self, "allreduce", "--child-pretrain", "--batch", batch, "--steps", steps]));
        }
        foreach (var l in lines) Console.WriteLine(json ? l : l.Replace(",\"", ", \"", StringComparison.Ordinal));
        return 0;
    }

    static IEnumerable<string> Mpi(string mpirun, int ranks, string[] command)
    {
        var psi = new ProcessStartInfo(mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-np", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none", .. command]) psi.ArgumentList.Add(a);
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["TERM"] = "dumb";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"mpirun {string.Join(' ', command)} failed ({p.ExitCode}): {err.Result}");
        return output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{')).ToList();
    }

    static string CompileReference()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "mpi", "allreduce.c");
        string exe = Path.Combine(Path.GetTempPath(), $"sharpformer-allreduce-ref-{Environment.ProcessId}");
        var psi = new ProcessStartInfo("mpicc", ["-O2", "-o", exe, source]) { RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("mpicc not found: apt-get install libopenmpi-dev");
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"mpicc {source} failed: {err}");
        return exe;
    }

    static int ChildAllReduce(string[] args)
    {
        var world = MpiProcessGroup.World;
        int n = IntOption(args, "--floats", 25_000_000), repeats = IntOption(args, "--repeats", 7);
        var buffer = GC.AllocateArray<float>(n, pinned: true);
        buffer.AsSpan().Fill(world.Rank + 1);
        var times = new double[repeats];
        for (int r = -1; r < repeats; r++)
        {
            world.Barrier();
            long t0 = Stopwatch.GetTimestamp();
            world.StartAllReduceSum(buffer).Wait();
            // the slowest rank's time, as the C reference: every rank's time in its own slot, summed, then the maximum
            var all = new double[world.Size];
            all[world.Rank] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            world.AllReduceSum(all);
            if (r >= 0) times[r] = all.Max();
        }
        Array.Sort(times);
        double s = times[repeats / 2], bytes = n * 4.0;
        if (world.Rank == 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"bench\":\"allreduce_sharpformer\",\"ranks\":{world.Size},\"call\":\"MPI_Iallreduce+MPI_Wait\",\"bytes\":{bytes:F0},\"median_s\":{s:F4},\"algbw_gb_s\":{bytes / s / 1e9:F3},\"busbw_gb_s\":{bytes / s / 1e9 * 2.0 * (world.Size - 1) / world.Size:F3},\"library\":\"{world.LibraryVersion.Split(',')[0]}\"}}"));
        return 0;
    }

    /// <summary>Wall clock and process CPU time at the end of every step.</summary>
    sealed class StepClock : ITrainerCallback
    {
        public readonly List<(long Wall, TimeSpan Cpu)> Ends = [];
        public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log) =>
            Ends.Add((Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime));
    }

    static int ChildTrain(string[] args)
    {
        var group = ProcessGroups.FromEnvironment();
        int batch = IntOption(args, "--batch", 32), steps = IntOption(args, "--steps", 8);
        const int seqLen = 256;
        var cfg = new SeedTransformerConfig(SequenceLength: seqLen);
        var rng = new TrainingRandom(1);
        var rows = Enumerable.Range(0, batch * group.Size * steps).Select(_ =>
        {
            var ids = new int[seqLen];
            int len = 20 + rng.Next(70);   // AG News-like: 20–90 tokens, padded to 256
            for (int t = 0; t < len; t++) ids[t] = 2 + rng.Next(cfg.VocabSize - 2);
            return (ids, rng.Next(cfg.NumLabels));
        }).ToList();
        var data = new ListTrainingData<(int[], int), SeedBatch>(rows, r => SeedTransformerTrainable.Collate(r, seqLen));
        var model = new SeedTransformer(cfg, new TrainingRandom(0));
        var clock = new StepClock();
        var args2 = new TrainingArguments
        {
            OutputDir = Path.Combine(Path.GetTempPath(), $"sharpformer-dp-bench-{Environment.ProcessId}"), MaxSteps = steps, PerDeviceTrainBatchSize = batch,
            Optimizer = OptimizerKind.KerasAdam, LearningRate = 1e-3, AdamEpsilon = 1e-7, MaxGradNorm = 0, LrSchedulerType = SchedulerType.Constant,
            LoggingStrategy = IntervalStrategy.No, DisableProgressBar = true, Execution = new Tensors.ExecutionOptions(1),
        };
        var trainer = new Trainer<SeedBatch>(new SeedTransformerTrainable(model), args2, data, callbacks: [clock], processGroup: group);
        long start = Stopwatch.GetTimestamp();
        trainer.Train();
        Report(group, clock, start, args2.OutputDir, "seed_transformer_data_parallel", batch, seqLen, steps);
        return 0;
    }

    static int ChildPretrain(string[] args)
    {
        var group = ProcessGroups.FromEnvironment();
        int batch = Math.Max(1, IntOption(args, "--batch", 32) / 2), steps = IntOption(args, "--steps", 8);
        const int block = 128, vocab = 8192;
        var rng = new TrainingRandom(1);
        var blocks = Enumerable.Range(0, batch * group.Size * steps)
            .Select(_ => Enumerable.Range(0, block).Select(_ => 5 + rng.Next(vocab - 5)).ToArray()).ToList();
        var data = LanguageModelingData.Masked(blocks, new Data.MaskedLanguageModeling(vocab, maskTokenId: 4, specialTokenIds: [0, 1, 2, 3, 4], padTokenId: 0), seed: 3);
        var config = new BertConfig
        {
            VocabSize = vocab, HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 512, MaxPositionEmbeddings = block,
        };
        var clock = new StepClock();
        var options = new TrainingArguments
        {
            OutputDir = Path.Combine(Path.GetTempPath(), $"sharpformer-dp-pretrain-bench-{Environment.ProcessId}"), MaxSteps = steps, PerDeviceTrainBatchSize = batch,
            LearningRate = 5e-4, LoggingStrategy = IntervalStrategy.No, DisableProgressBar = true, Execution = new Tensors.ExecutionOptions(1),
        };
        var trainer = new Trainer<Data.CollatedBatch>(new MaskedLMTrainable(new BertForMaskedLM(config, seed: 0)), options, data, callbacks: [clock], processGroup: group);
        long start = Stopwatch.GetTimestamp();
        trainer.Train();
        Report(group, clock, start, options.OutputDir, "bert_tiny_mlm_pretraining_data_parallel", batch, block, steps);
        return 0;
    }

    // Steps 3.. (two warm-up steps): median wall time; process CPU per step over them, summed over the ranks; rank 0 prints.
    static void Report(IProcessGroup group, StepClock clock, long start, string outputDir, string bench, int batch, int seqLen, int steps)
    {
        var timed = clock.Ends.Skip(1).ToList();
        var stepTimes = timed.Zip(timed.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a.Wall, b.Wall).TotalSeconds).Order().ToArray();
        double median = stepTimes[stepTimes.Length / 2];
        Span<double> cpuAll = [(timed[^1].Cpu - timed[0].Cpu).TotalSeconds / (timed.Count - 1)];
        group.AllReduceSum(cpuAll);
        if (group.Rank != 0) return;
        if (Directory.Exists(outputDir)) Directory.Delete(outputDir, recursive: true);
        int global = batch * group.Size;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"bench\":\"{bench}\",\"ranks\":{group.Size},\"threads_per_rank\":1,\"batch_per_rank\":{batch},\"seq_len\":{seqLen},\"step_ms\":{median * 1000:F1},\"tokens_per_s\":{global * seqLen / median:F0},\"samples_per_s\":{global / median:F1},\"cpu_ms_per_step_all_ranks\":{cpuAll[0] * 1000:F1},\"tokens_per_cpu_s\":{global * seqLen / cpuAll[0]:F0},\"steps\":{steps},\"wall_s\":{Stopwatch.GetElapsedTime(start).TotalSeconds:F2}}}"));
    }

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static int IntOption(string[] args, string name, int fallback) => Option(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
