using System.Diagnostics;
using System.Globalization;
using Sharpformer.Kernels;

namespace Sharpformer.Bench;

/// <summary>
/// SGEMM throughput on the shapes BERT-base spends its time in, at 1 and 2 threads.
/// Options: --json, --repeats N (default 9), --threads LIST (default 1,2), --shapes MxKxN[T],... (default set below),
/// --cpu (time by process CPU time divided by threads instead of wall clock: for tuning while other processes load the machine).
/// Reports the median of the timed repeats after two warm-up calls (which also get the kernel out of tier-0),
/// and the fastest repeat (best_ms), which is the better estimate when other processes share the cores.
/// --dtypes LIST (fp32, int8, int8-managed, bf16, bf16-managed) switches to the linear-layer comparison of
/// <see cref="RunLinear"/>: y += x·Wᵀ with W [N, K] as a model's layers use it, the dtypes timed in alternation.
/// </summary>
internal static class GemmBench
{
    // Attention in BERT-base at 8×128: 96 (batch·heads) products of 128×64·64×128 (scores, x·Kᵀ) and 128×128·128×64 (context).
    static readonly (int Batch, int M, int K, int N, bool TransB)[] AttentionShapes = [(96, 128, 64, 128, true), (96, 128, 128, 64, false)];

    static readonly (int M, int K, int N, bool TransB)[] DefaultShapes =
    [
        (128, 768, 768, false), (1024, 768, 768, false), (1024, 768, 3072, false), (1024, 3072, 768, false),
        (2048, 2048, 2048, false), (1024, 768, 3072, true), (1024, 3072, 768, true), (128, 768, 768, true),
    ];

    public static int Run(string[] args)
    {
        if (Option(args, "--dtypes") is { } dtypes) return RunLinear(args, dtypes.Split(','));
        bool json = args.Contains("--json");
        bool cpuTime = args.Contains("--cpu");
        var process = Process.GetCurrentProcess();
        int repeats = IntOption(args, "--repeats", 9);
        int[] threadList = (Option(args, "--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();
        var shapes = Option(args, "--shapes") is { } s
            ? s.Split(',').Select(ParseShape).ToArray()
            : DefaultShapes;

        bool customShapes = Option(args, "--shapes") is not null;
        if (!json) Console.WriteLine($"{"M",6} {"K",6} {"N",6} {"transB",6} {"thr",3} {"ms",9} {"GFLOP/s",8} {"best ms",9} {"best",8}");
        var rng = new Random(1);
        var inv = CultureInfo.InvariantCulture;
        foreach (var (m, k, n, transB) in shapes)
        {
            var a = RandomArray(rng, m * k); var b = RandomArray(rng, k * n); var c = new float[m * n];
            foreach (int threads in threadList)
            {
                var (ms, best) = Time(() => Gemm.Sgemm(false, transB, m, n, k, 1f, a, k, b, transB ? k : n, 0f, c, n, threads), repeats, cpuTime, threads, process);
                double gflops = 2.0 * m * n * k / (ms * 1e6);
                if (json)
                    Console.WriteLine(string.Create(inv, $"{{\"m\":{m},\"k\":{k},\"n\":{n},{(transB ? "\"transB\":true," : "")}\"threads\":{threads},\"gflops\":{gflops:F1},\"ms\":{ms:F3},\"best_ms\":{best:F3}}}"));
                else
                    Console.WriteLine(string.Create(inv, $"{m,6} {k,6} {n,6} {(transB ? "yes" : "no"),6} {threads,3} {ms,9:F3} {gflops,8:F1} {best,9:F3} {2.0 * m * n * k / (best * 1e6),8:F1}"));
            }
        }
        if (customShapes) return 0;
        foreach (var (batch, m, k, n, transB) in AttentionShapes)
        {
            var a = RandomArray(rng, batch * m * k); var b = RandomArray(rng, batch * k * n); var c = new float[batch * m * n];
            foreach (int threads in threadList)
            {
                var (ms, best) = Time(() => Gemm.SgemmBatched(false, transB, m, n, k, 1f, a, k, (long)m * k, b, transB ? k : n, (long)k * n,
                    0f, c, n, (long)m * n, batch, threads), repeats, cpuTime, threads, process);
                double gflops = 2.0 * batch * m * n * k / (ms * 1e6);
                if (json)
                    Console.WriteLine(string.Create(inv, $"{{\"batch\":{batch},\"m\":{m},\"k\":{k},\"n\":{n},{(transB ? "\"transB\":true," : "")}\"threads\":{threads},\"gflops\":{gflops:F1},\"ms\":{ms:F3},\"best_ms\":{best:F3}}}"));
                else
                    Console.WriteLine(string.Create(inv, $"{batch + "×" + m,6} {k,6} {n,6} {(transB ? "yes" : "no"),6} {threads,3} {ms,9:F3} {gflops,8:F1} {best,9:F3} {2.0 * batch * m * n * k / (best * 1e6),8:F1}"));
            }
        }
        return 0;
    }

    static readonly (int M, int K, int N)[] LinearShapes = [(128, 768, 768), (128, 768, 3072), (1024, 768, 3072)];

    /// <summary>
    /// fp32 SGEMM vs the int8 and bf16 linear kernels on BERT-base layer shapes (M tokens × K in → N out), 1 and 2 threads.
    /// Each round times every dtype once in turn (alternation, so a burst of load from other processes hits them all
    /// alike); the JSON gives per dtype the median wall ms, GFLOP/s (int8: GOP/s, 2·M·N·K operations) from it, the median
    /// process CPU ms per call and the fastest call. Quantizing or rounding the activations is inside the timed call,
    /// as in a model; packing the weights is not.
    /// </summary>
    static int RunLinear(string[] args, string[] dtypes)
    {
        int repeats = IntOption(args, "--repeats", 9);
        int[] threadList = (Option(args, "--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();
        var shapes = Option(args, "--shapes") is { } s ? s.Split(',').Select(ParseShape).Select(t => (t.Item1, t.Item2, t.Item3)).ToArray() : LinearShapes;
        var inv = CultureInfo.InvariantCulture;
        var process = Process.GetCurrentProcess();
        Console.WriteLine(string.Create(inv, $"{{\"suite\":\"gemm-dtypes\",\"cpu\":\"{CpuName()}\",\"features\":\"{CpuFeatures.Describe()}\",\"int8_best\":\"{Int8Gemm.Best}\",\"bf16_best\":\"{Bf16Gemm.Best}\"}}"));
        var rng = new Random(1);
        foreach (var (m, k, n) in shapes)
        {
            var x = RandomArray(rng, m * k); var w = RandomArray(rng, n * k); var y = new float[m * n];
            var q = Int8PackedWeights.Quantize(w, n, k);
            var b = Bf16PackedWeights.FromFloat(w, n, k);
            foreach (int threads in threadList)
            {
                var calls = dtypes.Select(d => d switch
                {
                    "fp32" => (Action)(() => Gemm.Sgemm(false, true, m, n, k, 1f, x, k, w, k, 0f, y, n, threads)),
                    "int8" => () => Int8Gemm.LinearAccumulate(x, m, q, y, threads),
                    "int8-managed" => () => Int8Gemm.LinearAccumulate(x, m, q, y, threads, Int8Gemm.IsSupported(Int8Kernel.AvxVnni) ? Int8Kernel.AvxVnni : Int8Kernel.Avx2),
                    "bf16" => () => Bf16Gemm.LinearAccumulate(x, m, b, y, threads),
                    "bf16-managed" => () => Bf16Gemm.LinearAccumulate(x, m, b, y, threads, Bf16Kernel.Portable),
                    _ => throw new ArgumentException($"--dtypes entry '{d}': expected fp32, int8, int8-managed, bf16 or bf16-managed."),
                }).ToArray();
                foreach (var c in calls) { c(); c(); }
                var wall = new double[calls.Length, repeats];
                var cpu = new double[calls.Length, repeats];
                for (int r = 0; r < repeats; r++)
                    for (int i = 0; i < calls.Length; i++)
                    {
                        process.Refresh();
                        var c0 = process.TotalProcessorTime;
                        long t0 = Stopwatch.GetTimestamp();
                        calls[i]();
                        wall[i, r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                        process.Refresh();
                        cpu[i, r] = (process.TotalProcessorTime - c0).TotalMilliseconds;
                    }
                for (int i = 0; i < calls.Length; i++)
                {
                    var ws = Enumerable.Range(0, repeats).Select(r => wall[i, r]).Order().ToArray();
                    var cs = Enumerable.Range(0, repeats).Select(r => cpu[i, r]).Order().ToArray();
                    double ms = ws[repeats / 2];
                    Console.WriteLine(string.Create(inv, $"{{\"m\":{m},\"k\":{k},\"n\":{n},\"threads\":{threads},\"dtype\":\"{dtypes[i]}\",\"gflops\":{2.0 * m * n * k / (ms * 1e6):F1},\"ms\":{ms:F3},\"cpu_ms\":{cs[repeats / 2]:F3},\"best_ms\":{ws[0]:F3},\"best_gflops\":{2.0 * m * n * k / (ws[0] * 1e6):F1}}}"));
                }
            }
        }
        return 0;
    }

    /// <summary>The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).</summary>
    static string CpuName() =>
        File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown" : "unknown";

    /// <summary>Two warm-up calls, then the median and the fastest of the timed repeats, in ms.</summary>
    internal static (double Median, double Best) Time(Action call, int repeats, bool cpuTime, int threads, Process process)
    {
        call(); call();
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            if (cpuTime)
            {
                process.Refresh();
                var c0 = process.TotalProcessorTime;
                call();
                process.Refresh();
                times[r] = (process.TotalProcessorTime - c0).TotalMilliseconds / threads;
            }
            else
            {
                long t0 = Stopwatch.GetTimestamp();
                call();
                times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
        }
        Array.Sort(times);
        return (times[repeats / 2], times[0]);
    }

    static (int, int, int, bool) ParseShape(string s)
    {
        bool t = s.EndsWith('T');
        var p = s.TrimEnd('T').Split('x').Select(int.Parse).ToArray();
        if (p.Length != 3) throw new ArgumentException($"--shapes entry '{s}' must look like 1024x768x3072 (M×K×N, optional trailing T for transB).");
        return (p[0], p[1], p[2], t);
    }

    static float[] RandomArray(Random rng, int len)
    {
        var x = new float[len];
        for (int i = 0; i < len; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static int IntOption(string[] args, string name, int fallback) => Option(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
