using System.Diagnostics;
using System.Globalization;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Bench;

/// <summary>
/// Training throughput. Options: --json, --repeats N (default 7), --threads T (default: all),
/// --only seed|bert, --gc-each-step (BERT: full collection after every step, so the peak shows live memory, not garbage),
/// --no-pool (BERT: run the step outside a TensorScope, so every activation and gradient is a new array).
/// (a) seed: the Keras-tutorial transformer, one training step (forward + loss + backward + Keras Adam)
///     at batch 128 × 256 with random ids of AG News-like lengths (20–90 tokens, zero-padded to 256); median of the
///     timed steps after two warm-up steps; as the tutorial (no masking) and with padding masks (attention then
///     skips the key columns after each row's last token).
/// (b) bert: BERT-base (random init) sequence classification, batch 8 × 128, forward + backward + AdamW.
/// --bf16: the seed (unmasked) and BERT steps in fp32 against mixed precision, alternated (<see cref="ComparePrecisions"/>).
/// Each line also reports the process's peak working set and, over the timed steps, the managed bytes allocated per step
/// (all threads) and the garbage collections per step of each generation.
/// </summary>
internal static class TrainBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int repeats = IntOption(args, "--repeats", 7);
        int threads = IntOption(args, "--threads", 0);
        string only = Option(args, "--only") ?? "all";
        // The whole bench (models, trainer steps) runs in the --threads scope.
        using var threadScope = Tensors.ExecutionScope.Enter(Tensors.ExecutionOptions.FromEnvironment(threads));
        if (args.Contains("--bf16"))
        {
            if (only is "all" or "seed" or "seed-unmasked")
                ComparePrecisions(json, "seed_transformer_train", 128, 256, repeats, () => SeedStep(masked: false, out _, out _, out _));
            if (only is "all" or "bert") ComparePrecisions(json, "bert_base_seqcls_train_step", 8, 128, Math.Max(3, repeats / 2), () => BertBench.Step(false, false));
            return 0;
        }
        if (only is "all" or "seed" or "seed-unmasked") Seed(json, repeats, masked: false);
        if (only is "all" or "seed" or "seed-masked") Seed(json, repeats, masked: true);
        if (only is "all" or "bert") BertBench.Run(json, Math.Max(3, repeats / 2), args.Contains("--gc-each-step"), args.Contains("--no-pool"));
        return 0;
    }

    static void Seed(bool json, int repeats, bool masked)
    {
        const int batch = 128, seqLen = 256;
        var update = SeedStep(masked, out var model, out var ids, out var pool);
        void Step() => update();
        Step(); Step();
        var st = TrainBench.MedianStep(Step, repeats);
        double s = st.MedianSeconds;
        // Inference (eval mode, forward only) for comparison with PyTorch's 718 samples/s.
        model.Eval();
        using var noGrad = Tensors.Autograd.NoGrad();
        using (pool.Scope()) model.Forward(ids, batch);
        var inf = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            using (pool.Scope()) model.Forward(ids, batch);
            inf[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        Array.Sort(inf);
        double si = inf[repeats / 2];
        Print(json, masked ? "seed_transformer_train_masked" : "seed_transformer_train", batch, seqLen, s, batch / s, st.Json + $",\"inference_ms\":{si * 1000:F1},\"inference_samples_per_s\":{batch / si:F1}");
    }

    /// <summary>A fresh seed model (seed 0) and one Keras-Adam update on a fixed batch of 128 × 256; returns the step's loss.</summary>
    static Func<float> SeedStep(bool masked, out SeedTransformer model, out int[] ids, out Tensors.TensorPool pool)
    {
        const int batch = 128, seqLen = 256;
        var cfg = new SeedTransformerConfig(MaskedAttention: masked, MaskedPooling: masked);
        var m = model = new SeedTransformer(cfg, new TrainingRandom(0));
        var rng = new TrainingRandom(1);
        var x = ids = new int[batch * seqLen];
        var labels = new int[batch];
        // AG News-like lengths (title + description: 20–90 tokens, mean ≈ 45) padded to 256.
        for (int b = 0; b < batch; b++)
        {
            int len = 20 + rng.Next(70);
            for (int t = 0; t < len; t++) ids[b * seqLen + t] = 2 + rng.Next(cfg.VocabSize - 2);
            labels[b] = rng.Next(cfg.NumLabels);
        }
        var parameters = TrainingOptimizer.TrainableParameters(model).Select(p => p.Parameter).ToList();
        var opt = new Optim.Adam(parameters, learningRate: 1e-3, epsilon: 1e-7, flavor: Optim.AdamFlavor.Keras);
        model.UseRandom(new TrainingRandom(2));
        var p = pool = new Tensors.TensorPool();
        return () =>
        {
            TrainingOptimizer.ZeroGradients(parameters);
            float loss;
            // as the Trainer: the step runs in a scope over a pool that lives as long as the training loop
            using (p.Scope())
            {
                var l = Tensors.Losses.CrossEntropy(m.Forward(x, batch).Logits, labels);
                l.Backward();
                loss = l.Item();
            }
            opt.Step();
            return loss;
        };
    }

    /// <summary>
    /// fp32 against mixed precision (<see cref="Tensors.ExecutionOptions.Bf16"/>) on one workload: <paramref name="build"/>
    /// makes two identical copies (same init, same batch), whose updates then alternate — fp32, bf16, fp32, … — so machine
    /// noise hits both alike. Two warm-up updates each, then <paramref name="repeats"/> timed pairs: median wall ms and
    /// median process CPU ms per update, their ratios, and each copy's loss at its last update (after the same updates).
    /// </summary>
    internal static void ComparePrecisions(bool json, string name, int batch, int seqLen, int repeats, Func<Func<float>> build)
    {
        var steps = new[] { build(), build() };
        var wall = new double[2][]; var cpu = new double[2][]; var loss = new float[2];
        var proc = Process.GetCurrentProcess();
        for (int i = 0; i < 2; i++) { wall[i] = new double[repeats]; cpu[i] = new double[repeats]; }
        float Run(int i)
        {
            using var scope = Tensors.ExecutionScope.Enter(new Tensors.ExecutionOptions(Bf16: i == 1));
            return steps[i]();
        }
        for (int w = 0; w < 2; w++) { Run(0); Run(1); }
        for (int r = 0; r < repeats; r++)
            for (int i = 0; i < 2; i++)
            {
                proc.Refresh();
                var c0 = proc.TotalProcessorTime;
                long t0 = Stopwatch.GetTimestamp();
                loss[i] = Run(i);
                wall[i][r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                proc.Refresh();
                cpu[i][r] = (proc.TotalProcessorTime - c0).TotalMilliseconds;
            }
        static double Median(double[] v) { var s = (double[])v.Clone(); Array.Sort(s); return s[s.Length / 2]; }
        double w32 = Median(wall[0]), w16 = Median(wall[1]), c32 = Median(cpu[0]), c16 = Median(cpu[1]);
        var inv = CultureInfo.InvariantCulture;
        string line = string.Create(inv,
            $"{{\"bench\":\"{name}_bf16_vs_fp32\",\"batch\":{batch},\"seq_len\":{seqLen},\"threads\":{Tensors.ExecutionScope.Threads},\"repeats\":{repeats},\"bf16_kernel\":\"{Kernels.Bf16Gemm.Best}\",\"fp32_step_ms\":{w32:F1},\"bf16_step_ms\":{w16:F1},\"fp32_cpu_ms\":{c32:F1},\"bf16_cpu_ms\":{c16:F1},\"speedup_wall\":{w32 / w16:F3},\"speedup_cpu\":{c32 / c16:F3},\"fp32_loss\":{loss[0]:F5},\"bf16_loss\":{loss[1]:F5},\"loss_diff\":{loss[1] - loss[0]:F5}}}");
        Console.WriteLine(json ? line : line.Replace(",", ", ", StringComparison.Ordinal));
    }

    /// <summary>What <see cref="MedianStep"/> measured: median wall seconds; per step, mean process CPU seconds, managed MiB allocated and collections by generation.</summary>
    internal sealed record StepStats(double MedianSeconds, double CpuSecondsPerStep, double AllocatedMiBPerStep, double Gen0PerStep, double Gen1PerStep, double Gen2PerStep)
    {
        public string Json => string.Create(CultureInfo.InvariantCulture,
            $",\"cpu_seconds_per_step\":{CpuSecondsPerStep:F3},\"allocated_mib_per_step\":{AllocatedMiBPerStep:F2},\"gen0_per_step\":{Gen0PerStep:F2},\"gen1_per_step\":{Gen1PerStep:F2},\"gen2_per_step\":{Gen2PerStep:F2}");
    }

    /// <summary>Runs <paramref name="step"/> <paramref name="repeats"/> times and measures it (see <see cref="StepStats"/>).</summary>
    /// <remarks>Collection counts include induced ones (GC.Collect in the step), as they cost the same pause.</remarks>
    internal static StepStats MedianStep(Action step, int repeats)
    {
        var times = new double[repeats];
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        long bytes0 = GC.GetTotalAllocatedBytes(precise: true);
        int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
        for (int r = 0; r < repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            step();
            times[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        double bytes = GC.GetTotalAllocatedBytes(precise: true) - bytes0;
        double n = repeats;
        var gens = ((GC.CollectionCount(0) - g0) / n, (GC.CollectionCount(1) - g1) / n, (GC.CollectionCount(2) - g2) / n);
        proc.Refresh();
        double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / repeats;
        Array.Sort(times);
        return new StepStats(times[repeats / 2], cpu, bytes / n / (1024.0 * 1024), gens.Item1, gens.Item2, gens.Item3);
    }

    internal static void Print(bool json, string name, int batch, int seqLen, double seconds, double samplesPerSecond, string extra = "")
    {
        double peakGiB = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);
        var inv = CultureInfo.InvariantCulture;
        if (json)
            Console.WriteLine(string.Create(inv,
                $"{{\"bench\":\"{name}\",\"batch\":{batch},\"seq_len\":{seqLen},\"threads\":{Tensors.ExecutionScope.Threads},\"step_ms\":{seconds * 1000:F1},\"samples_per_s\":{samplesPerSecond:F1},\"peak_working_set_gib\":{peakGiB:F3}{extra}}}"));
        else
            Console.WriteLine(string.Create(inv, $"{name}: batch {batch}×{seqLen}, {seconds * 1000:F1} ms/step, {samplesPerSecond:F1} samples/s, peak {peakGiB:F2} GiB {extra}"));
    }

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static int IntOption(string[] args, string name, int fallback) => Option(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}

/// <summary>BERT-base (random init) sequence classification: one training step, batch 8 × 128, forward + backward + AdamW.</summary>
internal static class BertBench
{
    public static void Run(bool json, int repeats, bool gcEachStep, bool noPool)
    {
        const int batch = 8, seqLen = 128;
        var update = Step(gcEachStep, noPool);
        void Step1() => update();
        Step1();
        var st = TrainBench.MedianStep(Step1, repeats);
        TrainBench.Print(json, "bert_base_seqcls_train_step", batch, seqLen, st.MedianSeconds, batch / st.MedianSeconds,
            st.Json + $",\"gc_each_step\":{(gcEachStep ? "true" : "false")},\"tensor_pool\":{(noPool ? "false" : "true")}");
    }

    /// <summary>A fresh BERT-base classifier (seed 0) and one AdamW update on a fixed batch of 8 × 128; returns the step's loss.</summary>
    public static Func<float> Step(bool gcEachStep, bool noPool)
    {
        const int batch = 8, seqLen = 128;
        var config = new Models.BertConfig();
        var model = new Models.BertForSequenceClassification(config, seed: 0);
        model.Train();
        var trainable = new EncoderClassifierTrainable(model);
        var parameters = TrainingOptimizer.TrainableParameters(model).Select(p => p.Parameter).ToList();
        var opt = new Optim.AdamW(Optim.ParameterGroups.HuggingFaceWeightDecay(model, 0.01f), 2e-5, 0.9, 0.999, 1e-8, 0.01f);
        var rng = new TrainingRandom(1);
        var ids = new int[batch * seqLen];
        for (int i = 0; i < ids.Length; i++) ids[i] = i % seqLen == 0 ? 101 : 1000 + rng.Next(20000);
        var b = new Data.CollatedBatch(batch, seqLen, ids, new int[ids.Length], Enumerable.Repeat(1, ids.Length).ToArray(), [0, 1, 0, 1, 0, 1, 0, 1]);
        var dropout = new TrainingRandom(2);
        var pool = new Tensors.TensorPool();
        return () =>
        {
            TrainingOptimizer.ZeroGradients(parameters);
            float loss;
            // as the Trainer: the step runs in a scope over a pool that lives as long as the training loop
            if (noPool) loss = trainable.TrainStep(b, dropout, 1f);
            else using (pool.Scope()) loss = trainable.TrainStep(b, dropout, 1f);
            Optim.GradClip.ClipGradNorm(parameters, 1.0);
            opt.Step();
            if (gcEachStep) GC.Collect();
            return loss;
        };
    }
}
