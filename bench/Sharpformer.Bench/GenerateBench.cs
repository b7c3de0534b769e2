using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Bench;

/// <summary>
/// KV-cached GPT-2 inference speed on randomly initialised models: "124m" (GPT-2 small: 12 layers, 768 wide, 12 heads,
/// vocab 50257, 1024 positions) and "small" (4 layers, 256 wide, 4 heads, vocab 8192: the ≤ 25 MB class of a shipped model),
/// "fixture" (../shared/fixtures/gpt2-tiny, found as the checkpoint bench finds fixtures or with --fixtures DIR) and
/// "shipped" (models/sharpformer-mini-gpt, found as the CLI finds it: 4 layers, 256 wide, 4 heads, vocab 16000, 128
/// positions; its torch peer is gpt2_decode.py's "mini", the same shapes with random weights).
/// Each model runs in the weight types of --dtypes: fp32, int8 (DynamicQuantization: block projections and the LM head's copy
/// of wte) and bf16 (Bf16Inference); the types alternate within every round so they share the machine's conditions.
/// One JSON line per (model, dtype, batch): prefill ms of a --prompt-token prompt, median per-token decode ms (one new token
/// per row through the cache and the LM head, as a generate step), process CPU ms per token, and the weight bandwidth decode
/// achieves (bytes of weights read per token / per-token time) next to a measured memory-read bandwidth of this machine, and
/// the bytes a decode step allocates on the calling thread (activations and logits; no weight-sized buffers).
/// Options: --json, --threads N (default 2), --models 124m,small,fixture,shipped, --dtypes fp32,int8,bf16 (default fp32; --quantized
/// adds int8, --bf16 adds bf16), --batches 1,8, --prompt 64 (capped at the model's positions), --new 32, --repeats 3.
/// </summary>
/// <remarks>
/// A decode step must read every weight once (the block projections and the tied LM head; of wpe only one row), so at
/// batch 1 its floor is weight bytes / memory bandwidth. The bandwidth figure is a multi-threaded sequential read of a
/// 1 GiB array (sum), median of 5. Wall times on a shared machine are noisy: compare CPU ms too and alternate runs.
/// </remarks>
internal static class GenerateBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int threads = int.Parse(Option(args, "--threads") ?? "2", CultureInfo.InvariantCulture);
        var models = (Option(args, "--models") ?? "124m,small").Split(',');
        var batches = (Option(args, "--batches") ?? "1,8").Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        int prompt = int.Parse(Option(args, "--prompt") ?? "64", CultureInfo.InvariantCulture);
        int steps = int.Parse(Option(args, "--new") ?? "32", CultureInfo.InvariantCulture);
        int repeats = int.Parse(Option(args, "--repeats") ?? "3", CultureInfo.InvariantCulture);

        var dtypes = (Option(args, "--dtypes") ?? "fp32").Split(',').ToList();
        if (args.Contains("--quantized") && !dtypes.Contains("int8")) dtypes.Add("int8");
        if (args.Contains("--bf16") && !dtypes.Contains("bf16")) dtypes.Add("bf16");

        double bandwidth = ReadBandwidthGBs(threads);
        if (!json) Console.WriteLine($"memory read bandwidth ({threads} threads): {bandwidth:F1} GB/s");
        using var scope = ExecutionScope.Enter(threads);
        foreach (var name in models)
        {
            var variants = dtypes.Select(d => (DType: d, Model: Build(name, d, args))).ToArray();
            var config = variants[0].Model.Config;
            string label = name switch { "124m" => "gpt2-124m-random", "small" => "gpt2-small-random", "shipped" => "gpt2-mini-shipped", _ => "gpt2-tiny-fixture" };
            long parameters = variants[0].Model.Parameters().Sum(p => (long)p.Value.Size);
            int promptTokens = Math.Min(prompt, config.NPositions - steps);
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            foreach (int batch in batches)
            {
                var rng = new Random(3);
                var ids = Enumerable.Range(0, batch * promptTokens).Select(_ => rng.Next(config.VocabSize)).ToArray();
                // Warm-up: pools, and tiered JIT — a small model's forward is over before the hot kernels are promoted from tier 0:
                // after one round the mini model's 64-token prefill measured ~50 ms, ~19-26 ms once warm (2026-12-04), so ≥ 2 s.
                var warm = Stopwatch.StartNew();
                do foreach (var v in variants) Measure(v.Model, ids, batch, promptTokens, Math.Min(2, steps));
                while (warm.Elapsed < TimeSpan.FromSeconds(2));
                var runs = variants.Select(_ => new List<DecodeRun>()).ToArray();
                for (int r = 0; r < repeats; r++)
                    for (int i = 0; i < variants.Length; i++) runs[i].Add(Measure(variants[i].Model, ids, batch, promptTokens, steps));
                for (int i = 0; i < variants.Length; i++)
                {
                    var m = runs[i];
                    long decodeBytes = DecodeWeightBytes(variants[i].Model);
                    double perToken = Median(m.Select(x => x.DecodeMs));
                    var row = new
                    {
                        bench = "generate", model = label, dtype = variants[i].DType, parameters, batch, prompt_tokens = promptTokens, new_tokens = steps,
                        threads, prefill_ms = Round(Median(m.Select(x => x.PrefillMs))), prefill_cpu_ms = Round(Median(m.Select(x => x.PrefillCpuMs))),
                        decode_ms_per_token = Round(perToken), decode_cpu_ms_per_token = Round(Median(m.Select(x => x.DecodeCpuMs))),
                        decode_tokens_per_s = Round(batch * 1000 / perToken),
                        weight_bytes = decodeBytes, weight_gbs = Round(decodeBytes / perToken / 1e6), memory_read_gbs = Round(bandwidth),
                        fraction_of_bandwidth = Round(decodeBytes / perToken / 1e6 / bandwidth),
                        decode_allocated_bytes_per_token = m[^1].DecodeAllocated, repeats, load_average = Math.Round(LoadAverage(), 2),
                    };
                    Console.WriteLine(json ? JsonSerializer.Serialize(row)
                        : $"{row.model} {row.dtype} batch {batch}: prefill {row.prefill_ms} ms (cpu {row.prefill_cpu_ms}), decode {row.decode_ms_per_token} ms/token (cpu {row.decode_cpu_ms_per_token}), {row.weight_gbs} GB/s of weights ({row.fraction_of_bandwidth:P0} of {row.memory_read_gbs})");
                }
            }
        }
        return 0;
    }

    static Gpt2LMHeadModel Build(string name, string dtype, string[] args)
    {
        Gpt2LMHeadModel model;
        if (name == "fixture")
        {
            var dir = CheckpointBench.FindFixtures(Option(args, "--fixtures")) is { } f ? Path.Combine(f, "gpt2-tiny")
                : throw new ArgumentException("--models fixture: ../shared/fixtures not found; pass --fixtures DIR.");
            model = Gpt2LMHeadModel.FromPretrained(dir);
        }
        else if (name == "shipped")
            model = Gpt2LMHeadModel.FromPretrained(Hub.ShippedModels.Resolve(Hub.ShippedTask.Generate, Hub.ShippedModelSearch.FromEnvironment()));
        else
        {
            var config = name switch
            {
                "124m" => new Gpt2Config(),
                "small" => new Gpt2Config { VocabSize = 8192, NPositions = 512, NEmbd = 256, NLayer = 4, NHead = 4 },
                _ => throw new ArgumentException($"--models {name}: expected 124m, small, fixture or shipped."),
            };
            model = new Gpt2LMHeadModel(config, seed: 1);
        }
        switch (dtype)
        {
            case "fp32": break;
            case "int8": DynamicQuantization.Quantize(model); break;
            case "bf16": Bf16Inference.Convert(model); break;
            default: throw new ArgumentException($"--dtypes {dtype}: expected fp32, int8 or bf16.");
        }
        model.Eval();
        return model;
    }

    /// <summary>
    /// Bytes of weights one decode step must read: every parameter except the two embedding tables (a step gathers only B rows
    /// of them), each packed projection at its packed size (int8: 1 byte per weight + scale and column sum per channel; bf16: 2
    /// bytes), and the LM head: wte at 4 bytes, or its packed copy.
    /// </summary>
    static long DecodeWeightBytes(Gpt2LMHeadModel m)
    {
        long bytes = 0;
        foreach (var (name, p) in m.NamedParameters())
            if (!p.Value.IsReleased && !name.EndsWith("wte.weight", StringComparison.Ordinal) && !name.EndsWith("wpe.weight", StringComparison.Ordinal))
                bytes += 4L * p.Value.Size;
        foreach (var conv in m.NamedModules().Select(x => x.Module).OfType<Sharpformer.Nn.Conv1D>()) bytes += Packed(conv.Int8Weight, conv.Bf16Weight);
        var head = m.LmHead;
        bytes += head.Int8Weight == null && head.Bf16Weight == null ? 4L * head.OutFeatures * head.InFeatures : Packed(head.Int8Weight, head.Bf16Weight);
        return bytes;
    }

    static long Packed(Int8PackedWeights? q, Bf16PackedWeights? b) =>
        q != null ? (long)q.Out * q.In + 8L * q.Out : b != null ? 2L * b.Out * b.In : 0;

    static double LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture); }
        catch (IOException) { return double.NaN; }
    }

    readonly record struct DecodeRun(double PrefillMs, double PrefillCpuMs, double DecodeMs, double DecodeCpuMs, long DecodeAllocated);

    static double Round(double x) => Math.Round(x, 3);

    /// <summary>Prefill of [batch, prompt] into a fresh cache, then <paramref name="steps"/> one-token steps (median wall ms, CPU ms per step).</summary>
    static DecodeRun Measure(Gpt2LMHeadModel model, int[] ids, int batch, int prompt, int steps)
    {
        using var _ = Autograd.NoGrad();
        var cache = model.NewCache(batch, prompt + steps);
        var proc = Process.GetCurrentProcess();
        var c0 = proc.TotalProcessorTime; var w = Stopwatch.StartNew();
        var logits = model.NextTokenLogits(new CausalLMInput(ids, batch, prompt), cache);
        double prefillMs = w.Elapsed.TotalMilliseconds;
        proc.Refresh();
        double prefillCpu = (proc.TotalProcessorTime - c0).TotalMilliseconds;
        var times = new double[steps];
        var next = new int[batch];
        var cpuStart = proc.TotalProcessorTime;
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        for (int s = 0; s < steps; s++)
        {
            int v = model.Config.VocabSize;
            for (int b = 0; b < batch; b++) next[b] = LogitsProcessing.ArgMax(logits.AsSpan(b * v, v));
            w.Restart();
            logits = model.NextTokenLogits(new CausalLMInput((int[])next.Clone(), batch, 1), cache);
            times[s] = w.Elapsed.TotalMilliseconds;
        }
        long allocated = (GC.GetAllocatedBytesForCurrentThread() - a0) / Math.Max(1, steps);
        proc.Refresh();
        double decodeCpu = (proc.TotalProcessorTime - cpuStart).TotalMilliseconds / Math.Max(1, steps);
        return new DecodeRun(prefillMs, prefillCpu, Median(times), decodeCpu, allocated);
    }

    /// <summary>GB/s of a sequential multi-threaded read (sum) of a 1 GiB array, median of 5 passes.</summary>
    static double ReadBandwidthGBs(int threads)
    {
        var data = new float[1 << 28];
        for (int i = 0; i < data.Length; i += 1024) data[i] = 1f;   // touch every page
        int workers = Parallelism.Resolve(threads);
        var sums = new float[workers];
        var results = new List<double>();
        for (int pass = 0; pass < 6; pass++)
        {
            var w = Stopwatch.StartNew();
            Parallelism.For(workers, t =>
            {
                var (lo, hi) = Parallelism.Range(data.Length, t, workers);
                var span = data.AsSpan(lo, hi - lo);
                var acc0 = Vector512<float>.Zero; var acc1 = Vector512<float>.Zero; var acc2 = Vector512<float>.Zero; var acc3 = Vector512<float>.Zero;
                int i = 0;
                for (; i + 64 <= span.Length; i += 64)
                {
                    acc0 += Vector512.Create<float>(span.Slice(i, 16)); acc1 += Vector512.Create<float>(span.Slice(i + 16, 16));
                    acc2 += Vector512.Create<float>(span.Slice(i + 32, 16)); acc3 += Vector512.Create<float>(span.Slice(i + 48, 16));
                }
                float s = Vector512.Sum(acc0 + acc1 + acc2 + acc3);
                for (; i < span.Length; i++) s += span[i];
                sums[t] = s;
            });
            if (pass > 0) results.Add(4.0 * data.Length / w.Elapsed.TotalSeconds / 1e9);
        }
        if (sums.Sum() <= 0) throw new InvalidOperationException("bandwidth probe read nothing");
        return Median(results);
    }

    static double Median(IEnumerable<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
