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
/// vocab 50257, 1024 positions) and "small" (4 layers, 256 wide, 4 heads, vocab 8192: the ≤ 25 MB class of a shipped model).
/// One JSON line per (model, batch): prefill ms of a --prompt-token prompt, median per-token decode ms (one new token per row
/// through the cache and the LM head, as a generate step), process CPU ms per token, and the weight bandwidth decode
/// achieves (bytes of weights read per token / per-token time) next to a measured memory-read bandwidth of this machine, and
/// the bytes a decode step allocates on the calling thread (activations and logits; no weight-sized buffers).
/// Options: --json, --threads N (default 2), --models 124m,small, --batches 1,8, --prompt 64, --new 32, --repeats 3.
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

        double bandwidth = ReadBandwidthGBs(threads);
        if (!json) Console.WriteLine($"memory read bandwidth ({threads} threads): {bandwidth:F1} GB/s");
        using var scope = ExecutionScope.Enter(threads);
        foreach (var name in models)
        {
            var config = name switch
            {
                "124m" => new Gpt2Config(),
                "small" => new Gpt2Config { VocabSize = 8192, NPositions = 512, NEmbd = 256, NLayer = 4, NHead = 4 },
                _ => throw new ArgumentException($"--models {name}: expected 124m or small."),
            };
            var model = new Gpt2LMHeadModel(config, seed: 1);
            model.Eval();
            long parameters = model.Parameters().Sum(p => (long)p.Value.Size);
            long decodeBytes = 4 * (parameters - (long)config.NPositions * config.NEmbd);   // wpe: one row per token
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            foreach (int batch in batches)
            {
                var rng = new Random(3);
                var ids = Enumerable.Range(0, batch * prompt).Select(_ => rng.Next(config.VocabSize)).ToArray();
                Measure(model, ids, batch, prompt, Math.Min(2, steps));   // warm-up: JIT, pools
                var prefill = new List<double>(); var prefillCpu = new List<double>(); var decode = new List<double>(); var decodeCpu = new List<double>();
                long allocated = 0;
                for (int r = 0; r < repeats; r++)
                {
                    var m = Measure(model, ids, batch, prompt, steps);
                    allocated = m.DecodeAllocated;
                    prefill.Add(m.PrefillMs); prefillCpu.Add(m.PrefillCpuMs); decode.Add(m.DecodeMs); decodeCpu.Add(m.DecodeCpuMs);
                }
                double perToken = Median(decode);
                var row = new
                {
                    bench = "generate", model = name == "124m" ? "gpt2-124m-random" : "gpt2-small-random", parameters, batch, prompt_tokens = prompt, new_tokens = steps,
                    threads, prefill_ms = Round(Median(prefill)), prefill_cpu_ms = Round(Median(prefillCpu)),
                    decode_ms_per_token = Round(perToken), decode_cpu_ms_per_token = Round(Median(decodeCpu)),
                    decode_tokens_per_s = Round(batch * 1000 / perToken),
                    weight_bytes = decodeBytes, weight_gbs = Round(decodeBytes / perToken / 1e6), memory_read_gbs = Round(bandwidth),
                    fraction_of_bandwidth = Round(decodeBytes / perToken / 1e6 / bandwidth),
                    decode_allocated_bytes_per_token = allocated, repeats,
                };
                Console.WriteLine(json ? JsonSerializer.Serialize(row)
                    : $"{row.model} batch {batch}: prefill {row.prefill_ms} ms, decode {row.decode_ms_per_token} ms/token (cpu {row.decode_cpu_ms_per_token}), {row.weight_gbs} GB/s of weights ({row.fraction_of_bandwidth:P0} of {row.memory_read_gbs})");
            }
        }
        return 0;
    }

    static double Round(double x) => Math.Round(x, 3);

    /// <summary>Prefill of [batch, prompt] into a fresh cache, then <paramref name="steps"/> one-token steps (median wall ms, CPU ms per step).</summary>
    static (double PrefillMs, double PrefillCpuMs, double DecodeMs, double DecodeCpuMs, long DecodeAllocated) Measure(Gpt2LMHeadModel model, int[] ids, int batch, int prompt, int steps)
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
        return (prefillMs, prefillCpu, Median(times), decodeCpu, allocated);
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
