using System.Diagnostics;
using System.Globalization;
using Sharpformer.Kernels;

namespace Sharpformer.Bench;

/// <summary>
/// Non-GEMM kernels at BERT-base 8×128 sizes (1024 tokens): GELU over the 1024×3072 intermediate, softmax over
/// 96·128 rows of 128 scores with a padding mask, layer norm over 1024×768. Prints ns per element (median of repeats).
/// Options: --json, --repeats N (default 15), --cpu (process CPU time instead of wall clock).
/// </summary>
internal static class KernelsBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        bool cpuTime = args.Contains("--cpu");
        var process = Process.GetCurrentProcess();
        int i = Array.IndexOf(args, "--repeats");
        int repeats = i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : 15;
        var rng = new Random(1);
        float[] R(int n, float s = 2f) { var x = new float[n]; for (int j = 0; j < n; j++) x[j] = (float)(rng.NextDouble() * 2 - 1) * s; return x; }

        const int tokens = 1024, hidden = 768, inter = 3072, heads = 12, seq = 128;
        var act = R(tokens * inter); var actOut = new float[act.Length]; var dy = R(act.Length, 1);
        var scores = R(tokens * heads * seq, 4); var probs = new float[scores.Length]; var mask = new float[8 * seq];
        var ln = R(tokens * hidden); var lnOut = new float[ln.Length]; var g = R(hidden, 1); var b = R(hidden, 1);
        var mean = new float[tokens]; var rstd = new float[tokens]; var dg = new float[hidden]; var db = new float[hidden];
        var bias = R(inter, 1);

        var cases = new (string Name, long Elements, Action Call)[]
        {
            ("gelu_erf", act.Length, () => Activations.GeluErf(act, actOut)),
            ("gelu_erf_backward", act.Length, () => Activations.GeluErfBackward(act, dy, actOut)),
            ("add_bias_gelu_erf", act.Length, () => { act.CopyTo(actOut, 0); Elementwise.AddBiasGeluErf(actOut, bias, tokens, inter); }),
            ("gelu_tanh", act.Length, () => Activations.GeluTanh(act, actOut)),
            ("softmax_masked", scores.Length, () => Softmax.Forward(scores, probs, tokens * heads, seq, mask, heads * seq)),
            ("softmax_backward", scores.Length, () => Softmax.Backward(probs, scores, actOut.AsSpan(0, scores.Length), tokens * heads, seq)),
            ("layernorm", ln.Length, () => LayerNorm.Forward(ln, g, b, lnOut, tokens, hidden, 1e-12f, mean, rstd)),
            ("layernorm_backward", ln.Length, () => LayerNorm.Backward(ln, g, mean, rstd, lnOut, actOut.AsSpan(0, ln.Length), dg, db, tokens, hidden)),
        };
        foreach (var (name, elements, call) in cases)
        {
            var (ms, best) = GemmBench.Time(call, repeats, cpuTime, 1, process);
            double ns = ms * 1e6 / elements;
            Console.WriteLine(json
                ? string.Create(CultureInfo.InvariantCulture, $"{{\"kernel\":\"{name}\",\"elements\":{elements},\"ms\":{ms:F3},\"best_ms\":{best:F3},\"ns_per_element\":{ns:F3}}}")
                : string.Create(CultureInfo.InvariantCulture, $"{name,-20} {elements,10} elements {ms,8:F3} ms (best {best:F3}) {ns,7:F3} ns/element"));
        }
        return 0;
    }
}
