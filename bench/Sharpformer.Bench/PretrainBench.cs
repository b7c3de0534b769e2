using System.Globalization;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Bench;

/// <summary>
/// Pretraining throughput of the mini config (4 layers, hidden 256, 4 heads, FFN 1024, vocabulary 16 000, 128 positions):
/// one update = forward + loss + backward + global-norm clipping + AdamW, on a batch of --batch (default 32) random blocks
/// of --seq (default 128) ids, inside the trainer's pooled step scope. Options: --json, --repeats N (default 7),
/// --threads T, --objective mlm|clm|all (default all), --full-logits (MLM: the head over every position, as HF's
/// BertForMaskedLM, instead of only the masked ones), --bf16 (fp32 against mixed-precision updates, alternated:
/// <see cref="TrainBench.ComparePrecisions"/>), --profile (instead of timing: the CPU and wall milliseconds per update of
/// each op kind, forward, backward and optimizer, from <see cref="Tensors.OpProfile"/>, in fp32, or in bf16 with --bf16).
/// MLM blocks are masked by <see cref="MaskedLanguageModeling"/> (15 %, 80/10/10). Reports the median wall time per update,
/// tokens/s, and process CPU seconds per update (on a shared machine wall times are noisy; CPU time is the steadier figure).
/// The PyTorch peer bench/peers/pretrain_torch.py runs the same model, batch and update.
/// </summary>
internal static class PretrainBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int repeats = Int(args, "--repeats", 7), threads = Int(args, "--threads", 0), batch = Int(args, "--batch", 32), seq = Int(args, "--seq", 128);
        string objective = BenchData.Option(args, "--objective") ?? "all";
        using var threadScope = Tensors.ExecutionScope.Enter(Tensors.ExecutionOptions.FromEnvironment(threads));
        if (args.Contains("--profile"))
        {
            bool bf16 = args.Contains("--bf16");
            if (objective is "all" or "mlm") Profile(json, "pretrain_mlm_mini", bf16, batch, seq, repeats, p => MlmStep(batch, seq, out _, p));
            if (objective is "all" or "clm") Profile(json, "pretrain_clm_mini", bf16, batch, seq, repeats, p => ClmStep(batch, seq, out _, p));
            return 0;
        }
        if (args.Contains("--bf16"))
        {
            // fp32 and bf16 updates of two identical models alternated (see TrainBench.ComparePrecisions)
            if (objective is "all" or "mlm")
                TrainBench.ComparePrecisions(json, "pretrain_mlm_mini", batch, seq, repeats, () => MlmStep(batch, seq, out _));
            if (objective is "all" or "clm")
                TrainBench.ComparePrecisions(json, "pretrain_clm_mini", batch, seq, repeats, () => ClmStep(batch, seq, out _));
            return 0;
        }
        if (objective is "all" or "mlm") Mlm(json, repeats, batch, seq, args.Contains("--full-logits"));
        if (objective is "all" or "clm") Clm(json, repeats, batch, seq);
        return 0;
    }

    /// <summary>A fresh mini BERT (seed 0) and its whole update on the fixed masked batch; returns the step's loss.</summary>
    static Func<float> MlmStep(int batch, int seq, out Nn.Module model, Tensors.OpProfile? profile = null)
    {
        var bert = new BertForMaskedLM(PretrainingConfigs.Bert("mini", Vocab, seq), seed: 0);
        var masking = new MaskedLanguageModeling(Vocab, maskTokenId: 4, specialTokenIds: [0, 1, 2, 3, 4], padTokenId: 0);
        var batchData = LanguageModelingData.Masked(RandomBlocks(batch, seq, true), masking, seed: 1).Collate(Enumerable.Range(0, batch).ToArray());
        var trainable = new MaskedLMTrainable(bert);
        model = bert;
        return Update(bert, rng => trainable.TrainStep(batchData, rng, 1f), profile);
    }

    /// <summary>A fresh mini GPT-2 (seed 0) and its whole update on the fixed batch; returns the step's loss.</summary>
    static Func<float> ClmStep(int batch, int seq, out Nn.Module model, Tensors.OpProfile? profile = null)
    {
        var gpt = new Gpt2LMHeadModel(PretrainingConfigs.Gpt2("mini", Vocab, seq, 0), seed: 0);
        var batchData = LanguageModelingData.Causal(RandomBlocks(batch, seq, false)).Collate(Enumerable.Range(0, batch).ToArray());
        var trainable = new CausalLMTrainable(gpt);
        model = gpt;
        return Update(gpt, rng => trainable.TrainStep(batchData, rng, 1f), profile);
    }

    static int Int(string[] args, string name, int fallback) => BenchData.Option(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    const int Vocab = 16_000;

    static int[][] RandomBlocks(int batch, int seq, bool bertSpecials)
    {
        var rng = new TrainingRandom(7);
        return Enumerable.Range(0, batch).Select(_ =>
        {
            var b = new int[seq];
            for (int i = 0; i < seq; i++) b[i] = 5 + rng.Next(Vocab - 5);
            if (bertSpecials) { b[0] = 2; b[seq - 1] = 3; }   // [CLS] … [SEP]
            return b;
        }).ToArray();
    }

    static void Mlm(bool json, int repeats, int batch, int seq, bool fullLogits)
    {
        var model = new BertForMaskedLM(PretrainingConfigs.Bert("mini", Vocab, seq), seed: 0);
        var masking = new MaskedLanguageModeling(Vocab, maskTokenId: 4, specialTokenIds: [0, 1, 2, 3, 4], padTokenId: 0);
        var data = LanguageModelingData.Masked(RandomBlocks(batch, seq, true), masking, seed: 1);
        var trainable = new MaskedLMTrainable(model);
        var batchData = data.Collate(Enumerable.Range(0, batch).ToArray());
        Func<TrainingRandom, float> loss = fullLogits
            ? rng =>
            {
                model.UseRandom(rng);
                var l = model.Run(batchData.ToEncoderInput(), labels: SequenceLabels.FromIds(batchData.Labels!)).Loss!;
                l.Backward();
                return l.Item();
            }
            : rng => trainable.TrainStep(batchData, rng, 1f);
        Measure(json, fullLogits ? "pretrain_mlm_mini_full_logits" : "pretrain_mlm_mini", model, batch, seq, repeats, Update(model, loss));
    }

    static void Clm(bool json, int repeats, int batch, int seq)
    {
        var step = ClmStep(batch, seq, out var model);
        Measure(json, "pretrain_clm_mini", model, batch, seq, repeats, step);
    }

    /// <summary>One update as the trainer runs it: forward + loss + backward in a pooled scope, clipping, AdamW, zeroed gradients.</summary>
    /// <remarks>With <paramref name="profile"/>, the update charges the phases after the backward to it (the tape charges the ops).</remarks>
    static Func<float> Update(Nn.Module model, Func<TrainingRandom, float> forwardBackward, Tensors.OpProfile? profile = null)
    {
        model.Train();
        var args = new TrainingArguments { OutputDir = ".", LearningRate = 5e-4, WeightDecay = 0.01 };
        var optimizer = TrainingOptimizer.Create(model, args);
        var parameters = TrainingOptimizer.TrainableParameters(model).Select(p => p.Parameter).ToList();
        var pool = new Tensors.TensorPool();
        var rng = new TrainingRandom(3);
        return () =>
        {
            float loss;
            using (pool.Scope()) loss = forwardBackward(rng);
            profile?.Lap("step", "end of step scope (buffers back to the pool)");
            Optim.GradClip.ClipGradNorm(parameters, 1.0);
            profile?.Lap("step", "ClipGradNorm");
            optimizer.Step();
            profile?.Lap("step", "optimizer step (AdamW)");
            TrainingOptimizer.ZeroGradients(parameters);
            profile?.Lap("step", "ZeroGradients");
            return loss;
        };
    }

    /// <summary>
    /// Per-op profile of <paramref name="repeats"/> updates after two warm-up ones: one JSON line per (phase, op) with CPU and wall
    /// ms per update, most CPU first, then a total line with the GC pause time and managed allocation per update.
    /// </summary>
    static void Profile(bool json, string name, bool bf16, int batch, int seq, int repeats, Func<Tensors.OpProfile, Func<float>> build)
    {
        var profile = new Tensors.OpProfile();
        var update = build(profile);
        using var precision = Tensors.ExecutionScope.Enter(new Tensors.ExecutionOptions(Bf16: bf16));
        update(); update();
        profile.Clear();   // the warm-up updates charged their optimizer phases
        var pause0 = GC.GetTotalPauseDuration(); long alloc0 = GC.GetTotalAllocatedBytes(); var cpu0 = Environment.CpuUsage.TotalTime;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        float loss = 0;
        using (Tensors.OpProfile.Enter(profile))
            for (int r = 0; r < repeats; r++) { profile.Restart(); loss = update(); }
        double wall = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds / repeats, cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds / repeats;
        double pause = (GC.GetTotalPauseDuration() - pause0).TotalMilliseconds / repeats, mib = (GC.GetTotalAllocatedBytes() - alloc0) / 1048576.0 / repeats;
        var inv = CultureInfo.InvariantCulture;
        string precisionName = bf16 ? "bf16" : "fp32";
        int threads = Tensors.ExecutionScope.Threads;
        foreach (var row in profile.Rows)
            Console.WriteLine(json
                ? string.Create(inv, $"{{\"bench\":\"{name}_profile\",\"precision\":\"{precisionName}\",\"threads\":{threads},\"phase\":\"{row.Phase}\",\"op\":\"{row.Op}\",\"calls_per_update\":{(double)row.Count / repeats:F1},\"cpu_ms\":{row.CpuMilliseconds / repeats:F1},\"wall_ms\":{row.WallMilliseconds / repeats:F1},\"cpu_share\":{row.CpuMilliseconds / repeats / cpu:F3}}}")
                : string.Create(inv, $"{row.Phase,-4} {row.Op,-48} {row.CpuMilliseconds / repeats,8:F1} cpu ms {row.WallMilliseconds / repeats,8:F1} wall ms {100 * row.CpuMilliseconds / repeats / cpu,5:F1} %"));
        string total = string.Create(inv, $"{{\"bench\":\"{name}_profile_total\",\"precision\":\"{precisionName}\",\"threads\":{threads},\"batch\":{batch},\"seq_len\":{seq},\"repeats\":{repeats},\"cpu_ms_per_update\":{cpu:F1},\"wall_ms_per_update\":{wall:F1},\"gc_pause_ms_per_update\":{pause:F1},\"allocated_mib_per_update\":{mib:F1},\"last_loss\":{loss:F5}}}");
        Console.WriteLine(json ? total : total.Replace(",", ", ", StringComparison.Ordinal));
    }

    static void Measure(bool json, string name, Nn.Module model, int batch, int seq, int repeats, Func<float> update)
    {
        float last = 0;
        void Step() => last = update();
        Step(); Step();
        var st = TrainBench.MedianStep(Step, repeats);
        double tokens = (double)batch * seq;
        TrainBench.Print(json, name, batch, seq, st.MedianSeconds, batch / st.MedianSeconds, st.Json + string.Create(CultureInfo.InvariantCulture,
            $",\"tokens_per_s\":{tokens / st.MedianSeconds:F0},\"tokens_per_cpu_s\":{tokens / st.CpuSecondsPerStep:F0},\"parameters\":{model.ParameterCount()},\"last_loss\":{last:F4}"));
    }
}
