using System.Diagnostics;
using System.Globalization;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Bench;

/// <summary>
/// Encoder inference speed of randomly initialised bert-base-uncased / distilbert-base-uncased (real sizes), eval mode
/// under NoGrad (the kernel fast path). One JSON line per (model, batch×seq): median ms per batch, tokens/s, process peak
/// working set, and the ONNX Runtime anchor of ANCHORS.md for comparison.
/// Options: --json, --threads N (default 2), --model bert|distilbert (default both, each in its own child process so
/// the peak working set belongs to one model), --shapes 1x128,8x128,32x128,1x512, --repeats N (default 5; 3 for 32×128),
/// --warmup-ms M (default 2000: untimed forwards of each shape until M ms have passed, at least one; .NET compiles hot
/// methods unoptimised first and re-compiles them in the background, and timing before that settles measured the JIT),
/// --quantized (int8 dynamic quantization of the encoder linear layers, compared with ORT's dynamic int8 anchor),
/// --bf16 (the encoder linear layers in bf16, Models/Bf16Inference; compared with the fp32 anchor),
/// --profile (adds "profile_ms": mean ms per forward per operation kind, "cpu_per_wall" and "thread_busy_ms": the busiest
/// threads' CPU ms over the timed runs, from /proc/self/task on Linux).
/// </summary>
internal static class InferBench
{
    static readonly (int Batch, int Seq)[] DefaultShapes = [(1, 128), (8, 128), (32, 128), (1, 512)];

    // ONNX Runtime 1.30 (MLAS), 2 threads, ms per batch — ANCHORS.md.
    static readonly Dictionary<(string, int, int), double> Anchors = new()
    {
        [("bert-base-uncased", 1, 128)] = 168, [("bert-base-uncased", 8, 128)] = 939,
        [("bert-base-uncased", 32, 128)] = 4765, [("bert-base-uncased", 1, 512)] = 631,
        [("distilbert-base-uncased", 1, 128)] = 77, [("distilbert-base-uncased", 8, 128)] = 475,
        [("distilbert-base-uncased", 32, 128)] = 2410, [("distilbert-base-uncased", 1, 512)] = 345,
    };

    // ONNX Runtime 1.30 dynamic int8 (U8S8), 2 threads, ms per batch — issue 11's Intel host; re-measure with compare.sh.
    static readonly Dictionary<(string, int, int), double> Int8Anchors = new()
    {
        [("bert-base-uncased", 1, 128)] = 53, [("bert-base-uncased", 8, 128)] = 380,
        [("distilbert-base-uncased", 1, 128)] = 26, [("distilbert-base-uncased", 8, 128)] = 199,
    };

    public static int Run(string[] args)
    {
        var model = Option(args, "--model");
        if (model == null)
        {
            // One child process per model: PeakWorkingSet64 never goes down, so it must not mix the two models.
            foreach (var m in new[] { "bert", "distilbert" })
            {
                var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = false, UseShellExecute = false };
                if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(InferBench).Assembly.Location);
                psi.ArgumentList.Add("infer");
                foreach (var a in args) psi.ArgumentList.Add(a);
                psi.ArgumentList.Add("--model"); psi.ArgumentList.Add(m);
                using var p = Process.Start(psi)!;
                p.WaitForExit();
                if (p.ExitCode != 0) return p.ExitCode;
            }
            return 0;
        }

        bool json = args.Contains("--json");
        int threads = int.Parse(Option(args, "--threads") ?? "2", CultureInfo.InvariantCulture);
        int? repeatsOption = Option(args, "--repeats") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : null;
        double warmupMs = Option(args, "--warmup-ms") is { } wm ? double.Parse(wm, CultureInfo.InvariantCulture) : 2000;
        var shapes = Option(args, "--shapes") is { } s
            ? s.Split(',').Select(x => x.Split('x')).Select(x => (int.Parse(x[0], CultureInfo.InvariantCulture), int.Parse(x[1], CultureInfo.InvariantCulture))).ToArray()
            : DefaultShapes;
        bool quantized = args.Contains("--quantized"), bf16 = args.Contains("--bf16"), profiling = args.Contains("--profile");
        if (quantized && bf16) throw new ArgumentException("--quantized and --bf16 exclude each other.");

        var buildWatch = Stopwatch.StartNew();
        // --quantized builds the encoder's linear layers int8 directly (the same weights as quantizing the fp32 model afterwards),
        // so the peak working set is the int8 model's, as when loading a checkpoint written by sharpformer quantize.
        var weights = Nn.VarBuilder.Fresh(new Nn.WeightLoadOptions(Seed: 1, QuantizeInt8: quantized));
        (string name, TransformerEncoder encoder, PretrainedModel module) = model switch
        {
            "bert" => Build("bert-base-uncased", new BertModel(new BertConfig(), weights, addPoolingLayer: true)),
            "distilbert" => Build("distilbert-base-uncased", new DistilBertModel(new DistilBertConfig(), weights)),
            _ => throw new ArgumentException($"--model {model}: expected bert or distilbert."),
        };
        module.Eval();
        module.Execution = new ExecutionOptions(threads);
        if (quantized && !DynamicQuantization.IsQuantized(module)) throw new InvalidOperationException("The encoder was not built int8.");
        if (bf16) Bf16Inference.Convert(module);
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        double buildSeconds = buildWatch.Elapsed.TotalSeconds;
        if (!json) Console.WriteLine($"{name}: {module.ParameterCount():N0} parameters, built in {buildSeconds:F1} s, {threads} threads");

        var rng = new Random(7);
        foreach (var (batch, seq) in shapes)
        {
            var ids = new int[batch * seq];
            for (int i = 0; i < ids.Length; i++) ids[i] = 1000 + rng.Next(28000);
            var mask = Enumerable.Repeat(1, ids.Length).ToArray();
            var input = new EncoderInput(ids, batch, seq, attentionMask: mask);
            int repeats = repeatsOption ?? (batch * seq >= 4096 ? 3 : 5);
            // Start each shape from a collected heap (untimed), so its peak is not inflated by the previous shape's garbage.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            var profile = profiling ? new EncoderProfile() : null;
            var forwardOptions = new ForwardOptions { Profile = profile };
            var times = new double[repeats];
            string profileJson = "";
            var cpu = new double[repeats];
            var allocated = new double[repeats];
            using (Autograd.NoGrad())
            {
                // Warm-up (untimed): tiered JIT re-compilation, workspace allocation. One forward was not enough: the first
                // timed bert-base 1×128 runs took ~2× the settled CPU time.
                long warm0 = Stopwatch.GetTimestamp();
                do encoder.Forward(input);
                while (Stopwatch.GetElapsedTime(warm0).TotalMilliseconds < warmupMs);
                var threadsBefore = profiling ? ThreadCpuMs() : null;
                long wall0 = Stopwatch.GetTimestamp();
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                for (int i = 0; i < repeats; i++)
                {
                    var c0 = Process.GetCurrentProcess().TotalProcessorTime;
                    long a0 = GC.GetTotalAllocatedBytes(precise: false);
                    long t0 = Stopwatch.GetTimestamp();
                    encoder.Forward(input, forwardOptions);
                    times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    cpu[i] = (Process.GetCurrentProcess().TotalProcessorTime - c0).TotalMilliseconds;
                    allocated[i] = (GC.GetTotalAllocatedBytes(precise: false) - a0) / (1024.0 * 1024.0);
                }
                if (profile != null)
                {
                    double wall = Stopwatch.GetElapsedTime(wall0).TotalMilliseconds;
                    double cpuAll = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds;
                    var after = ThreadCpuMs();
                    var busy = after.Select(kv => kv.Value - threadsBefore!.GetValueOrDefault(kv.Key)).Where(x => x > 0).OrderDescending().Take(8);
                    var inv0 = CultureInfo.InvariantCulture;
                    var ops = Enum.GetValues<EncoderOp>().Select(op => string.Create(inv0, $"\"{op}\":{profile.Milliseconds(op) / repeats:F2}"));
                    profileJson = string.Create(inv0, $",\"profile_ms\":{{{string.Join(",", ops)}}},\"profile_total_ms\":{profile.TotalMilliseconds / repeats:F1},\"cpu_per_wall\":{cpuAll / wall:F2},\"thread_busy_ms\":[{string.Join(",", busy.Select(b => b.ToString("F0", inv0)))}]");
                }
            }
            Array.Sort(times);
            Array.Sort(cpu);
            // CPU time per batch next to wall time: on a shared machine the wall time includes waiting for a core.
            string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "null";
            double median = times[repeats / 2];
            using var self = Process.GetCurrentProcess();
            self.Refresh();
            double peakMiB = self.PeakWorkingSet64 / (1024.0 * 1024.0);
            var gc = GC.GetGCMemoryInfo();
            double heapMiB = gc.HeapSizeBytes / (1024.0 * 1024.0), committedMiB = gc.TotalCommittedBytes / (1024.0 * 1024.0);
            double anchor = (quantized ? Int8Anchors : Anchors).GetValueOrDefault((name, batch, seq), double.NaN);
            var inv = CultureInfo.InvariantCulture;
            if (json)
                Console.WriteLine(string.Create(inv,
                    $"{{\"suite\":\"infer\",\"model\":\"{name}\",\"batch\":{batch},\"seq\":{seq},\"threads\":{threads},\"dtype\":\"{(quantized ? "int8" : bf16 ? "bf16" : "fp32")}\",\"kernel\":\"{(quantized ? Int8Gemm.Best.ToString() : bf16 ? Bf16Gemm.Best.ToString() : "fp32")}\",\"runs\":{repeats},\"median_ms\":{median:F1},\"min_ms\":{times[0]:F1},\"tokens_per_s\":{batch * seq / (median / 1000):F0},\"cpu_ms\":{cpu[repeats / 2]:F0},\"peak_working_set_mib\":{peakMiB:F0},\"gc_heap_mib\":{heapMiB:F0},\"allocated_mib_per_batch\":{allocated.Average():F1},\"gc_committed_mib\":{committedMiB:F0},\"load_avg_1m\":{load},\"onnxruntime_ms\":{anchor:F0},\"speedup_vs_onnxruntime\":{anchor / median:F2}{profileJson}}}"));
            else
                Console.WriteLine(string.Create(inv, $"{name} {batch}x{seq}: median {median:F1} ms (min {times[0]:F1}, cpu {cpu[repeats / 2]:F0} ms, load {load}), {batch * seq / (median / 1000):F0} tokens/s, peak WS {peakMiB:F0} MiB, ORT {anchor:F0} ms → {anchor / median:F2}×"));
        }
        return 0;
    }

    /// <summary>CPU ms (user + system) per thread of this process, from /proc/self/task/*/stat; empty where that does not exist.</summary>
    static Dictionary<int, double> ThreadCpuMs()
    {
        var result = new Dictionary<int, double>();
        if (!Directory.Exists("/proc/self/task")) return result;
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // Fields after the parenthesised command name: state is field 3, utime 14, stime 15 (clock ticks, 100 per s).
                var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                result[int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture)] =
                    (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) * 10.0;
            }
            catch (IOException) { } // the thread ended meanwhile
        }
        return result;
    }

    static (string, TransformerEncoder, PretrainedModel) Build(string name, TransformerEncoder model) => (name, model, model);

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
