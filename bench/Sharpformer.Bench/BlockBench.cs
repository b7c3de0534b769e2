using System.Diagnostics;
using System.Globalization;
using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Bench;

/// <summary>
/// Forward + backward of one BERT-base <see cref="BertLayer"/> — the layer BertModel stacks (hidden 768, 12 heads, intermediate 3072,
/// GELU, dropout 0.1 in training mode), built through <see cref="VarBuilder.Fresh(int)"/> — at batch 8 × sequence 128 with a padding
/// mask, on 1 and 2 threads. Also times the inference forward
/// (eval mode, inside Autograd.NoGrad) as forward_nograd_ms, and one AdamW step over the layer's 7.1M parameters as adamw_step_ms.
/// Options: --json, --repeats N (default 5), --threads LIST (default 1,2), --batch B (8), --seq S (128),
/// --cpu (process CPU time divided by threads instead of wall clock, for a machine shared with other processes),
/// --thread-cpu (calling thread's CPU time; meaningful with --threads 1), --parts (per-part timing of the inference forward
/// and per-op backward), --attention (fused vs composed attention, forward + backward).
/// Prints the median over repeats after one warm-up iteration; best_total_ms is the fastest repeat (less sensitive to noise).
/// </summary>
internal static class BlockBench
{
    static bool s_cpu, s_threadCpu;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    struct Timespec { public long Sec, Nsec; }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    static extern int ClockGetTime(int clock, out Timespec ts);
    static readonly Process Proc = Process.GetCurrentProcess();

    // a timestamp in ms: wall clock, or process CPU time / threads with --cpu
    static double Now()
    {
        if (s_threadCpu && ClockGetTime(3 /* CLOCK_THREAD_CPUTIME_ID */, out var ts) == 0) return ts.Sec * 1000.0 + ts.Nsec / 1e6;
        if (!s_cpu) return Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;
        Proc.Refresh();
        return Proc.TotalProcessorTime.TotalMilliseconds / ExecutionScope.Threads;
    }

    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        s_cpu = args.Contains("--cpu");
        // calling thread's CPU time (Linux): with --threads 1 every kernel runs on this thread, so JIT and GC threads are excluded
        s_threadCpu = args.Contains("--thread-cpu");
        int repeats = IntOption(args, "--repeats", 5);
        int batch = IntOption(args, "--batch", 8), seq = IntOption(args, "--seq", 128);
        int[] threadList = (Option(args, "--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();

        // BertConfig's defaults are bert-base-uncased; the layer draws HF's init (normal(0, 0.02), biases 0, LayerNorm 1/0).
        var config = new BertConfig();
        var layer = new BertLayer(VarBuilder.Fresh(0).Push("bert.encoder.layer.0"), config);
        layer.UseRandom(new Random(1));
        var x = Tensor.Normal(new Random(2), 0, 1, batch, seq, config.HiddenSize);
        x.RequiresGrad = true;
        var maskBits = new int[batch * seq];
        for (int b = 0; b < batch; b++) for (int s = 0; s < seq; s++) maskBits[b * seq + s] = s < seq - 8 * b ? 1 : 0;
        var mask = Functional.AdditiveMask(maskBits, batch, seq);
        var inv = CultureInfo.InvariantCulture;
        if (args.Contains("--attention")) { CompareAttention(batch, seq, repeats, json); return 0; }
        if (args.Contains("--parts")) { Parts(layer, x, mask, repeats, json); ProfileBackward(layer, x, mask, repeats, json); return 0; }
        {
            foreach (int threads in threadList)
            {
                using var threadScope = ExecutionScope.Enter(threads);
                var pause0 = GC.GetTotalPauseDuration(); int gen2 = GC.CollectionCount(2);
                var fwd = new double[repeats]; var bwd = new double[repeats]; var tot = new double[repeats]; var inf = new double[repeats];
                var opt = new Sharpformer.Optim.AdamW(layer.Parameters(), learningRate: 1e-9f);   // tiny lr: weights stay put
                var stepMs = new double[repeats];
                for (int r = -1; r < repeats; r++)
                {
                    layer.Train();
                    layer.ZeroGrad(); x.ZeroGrad();
                    double t0 = Now();
                    var y = layer.Forward(x, mask).Hidden;
                    var loss = y.Sum();
                    double f = Now() - t0;
                    double t1 = Now();
                    loss.Backward();
                    double bk = Now() - t1;
                    double t3 = Now();
                    opt.Step();
                    double st = Now() - t3;
                    layer.Eval();
                    double t2 = Now();
                    using (Autograd.NoGrad()) layer.Forward(x, mask);
                    double i = Now() - t2;
                    if (r < 0) continue;
                    fwd[r] = f; bwd[r] = bk; tot[r] = f + bk; inf[r] = i; stepMs[r] = st;
                }
                double gcMs = (GC.GetTotalPauseDuration() - pause0).TotalMilliseconds / (repeats + 1);
                int gen2PerIter = (GC.CollectionCount(2) - gen2) / (repeats + 1);
                double Med(double[] a) { var c = (double[])a.Clone(); Array.Sort(c); return c[c.Length / 2]; }
                if (json)
                    Console.WriteLine(string.Create(inv, $"{{\"threads\":{threads},\"batch\":{batch},\"seq\":{seq},\"forward_ms\":{Med(fwd):F1},\"backward_ms\":{Med(bwd):F1},\"total_ms\":{Med(tot):F1},\"best_total_ms\":{tot.Min():F1},\"forward_nograd_ms\":{Med(inf):F1},\"adamw_step_ms\":{Med(stepMs):F1},\"gc_pause_ms_per_iter\":{gcMs:F1},\"gen2_per_iter\":{gen2PerIter},\"clock\":\"{(s_threadCpu ? "thread_cpu" : s_cpu ? "cpu" : "wall")}\"}}"));
                else
                    Console.WriteLine(string.Create(inv, $"threads {threads}: forward {Med(fwd):F1} ms, backward {Med(bwd):F1} ms, total {Med(tot):F1} ms (best {tot.Min():F1}), inference forward {Med(inf):F1} ms"));
            }
        }
        return 0;
    }

    // Per-part timing of the inference forward (eval, no grad), on the default thread count: where the time goes.
    static void Parts(BertLayer layer, Tensor x0, Tensor mask, int repeats, bool json)
    {
        layer.Eval();
        var x = x0.Detach();
        var parts = new Dictionary<string, List<double>>();
        void T(string name, Action a)
        {
            double t0 = Now(); a();
            (parts.TryGetValue(name, out var l) ? l : parts[name] = []).Add(Now() - t0);
        }
        using var _ = Autograd.NoGrad();
        for (int r = 0; r < repeats + 1; r++)
        {
            Tensor q = null!, k = null!, v = null!, ctx = null!, o = null!, h = null!, f1 = null!, f2 = null!;
            var a = layer.Attention.Self;
            T("qkv_linear", () => { q = a.Query.Forward(x); k = a.Key.Forward(x); v = a.Value.Forward(x); });
            T("attention_core", () => ctx = Functional.Attention(q, k, v, a.NumHeads, mask, returnProbabilities: true, scaling: a.Scaling).Context);
            T("out_linear", () => o = layer.Attention.Output.Dense.Forward(ctx));
            T("residual_layernorm1", () => h = layer.Attention.Output.LayerNorm.Forward(x + o));
            T("ffn_linear1", () => f1 = layer.Intermediate.Dense.Forward(h));
            T("gelu", () => f1 = f1.Gelu());
            T("ffn_linear2", () => f2 = layer.Output.Dense.Forward(f1));
            T("residual_layernorm2", () => layer.Output.LayerNorm.Forward(h + f2));
            if (r == 0) foreach (var l in parts.Values) l.Clear();
        }
        foreach (var (name, l) in parts)
        {
            l.Sort();
            double med = l[l.Count / 2];
            Console.WriteLine(json ? string.Create(CultureInfo.InvariantCulture, $"{{\"part\":\"{name}\",\"threads\":{ExecutionScope.Threads},\"ms\":{med:F2}}}")
                : string.Create(CultureInfo.InvariantCulture, $"{name,-22} {med,8:F2} ms"));
        }
    }

    // Backward time per op kind (wall clock, summed over repeats, divided by repeats), from the autograd tape's OpProfile.
    static void ProfileBackward(BertLayer layer, Tensor x, Tensor mask, int repeats, bool json)
    {
        layer.Train();
        layer.Forward(x, mask).Hidden.Sum().Backward();
        var profile = new OpProfile();
        for (int r = 0; r < repeats; r++)
        {
            layer.ZeroGrad(); x.ZeroGrad();
            var root = layer.Forward(x, mask).Hidden.Sum();
            using (OpProfile.Enter(profile)) root.Backward();
        }
        foreach (var row in profile.Rows.Where(r => r.Phase == "bwd").OrderByDescending(r => r.WallMilliseconds))
            Console.WriteLine(json ? string.Create(CultureInfo.InvariantCulture, $"{{\"backward_op\":\"{row.Op}\",\"ms\":{row.WallMilliseconds / repeats:F2}}}")
                : string.Create(CultureInfo.InvariantCulture, $"backward {row.Op,-20} {row.WallMilliseconds / repeats,8:F2} ms"));
    }

    // Fused Functional.Attention vs the same attention composed from MatMul/Div/Add/Softmax/Permute (as a port of HF's
    // BertSelfAttention would write it), forward + backward, BERT-base head layout.
    static void CompareAttention(int batch, int seq, int repeats, bool json)
    {
        const int H = 12, D = 64;
        var rng = new Random(5);
        Tensor MakeInput() { var t = Tensor.Normal(rng, 0, 1, batch, seq, H * D); t.RequiresGrad = true; return t; }
        Tensor q = MakeInput(), k = MakeInput(), v = MakeInput();
        var mask = Functional.AdditiveMask(Enumerable.Repeat(1, batch * seq).ToArray(), batch, seq);
        Tensor Fused() => Functional.Attention(q, k, v, H, mask).Context;
        Tensor Composed()
        {
            Tensor Heads(Tensor t) => t.Reshape(batch, seq, H, D).Permute(0, 2, 1, 3);
            var scores = Heads(q).MatMul(Heads(k).Transpose(-1, -2)).Div(MathF.Sqrt(D)).Add(mask);
            return scores.Softmax(-1).MatMul(Heads(v)).Permute(0, 2, 1, 3).Contiguous().Reshape(batch, seq, H * D);
        }
        foreach (var (name, f) in new (string, Func<Tensor>)[] { ("fused", Fused), ("composed", Composed) })
        {
            var fw = new double[repeats]; var bw = new double[repeats];
            for (int r = -1; r < repeats; r++)
            {
                q.ZeroGrad(); k.ZeroGrad(); v.ZeroGrad();
                double t0 = Now(); var loss = f().Sum(); double t1 = Now(); loss.Backward(); double t2 = Now();
                if (r >= 0) { fw[r] = t1 - t0; bw[r] = t2 - t1; }
            }
            Array.Sort(fw); Array.Sort(bw);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(json
                ? string.Create(inv, $"{{\"attention\":\"{name}\",\"threads\":{ExecutionScope.Threads},\"forward_ms\":{fw[repeats / 2]:F1},\"backward_ms\":{bw[repeats / 2]:F1}}}")
                : string.Create(inv, $"{name,-9} forward {fw[repeats / 2],7:F1} ms  backward {bw[repeats / 2],7:F1} ms"));
        }
    }

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static int IntOption(string[] args, string name, int def) => Option(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : def;
}
