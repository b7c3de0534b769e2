using System.Diagnostics;
using System.Globalization;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Bench;

/// <summary>
/// GRU and LSTM layers at a grapheme-to-phoneme size: batch 64, 20 steps, input 256, hidden 256 (one layer, batch_first),
/// forward alone (no grad) and forward + backward of Σ output. Prints the median ms of repeats and tokens (batch·steps) per second.
/// Options: --json, --repeats N (default 9), --batch B, --seq T, --hidden H, --bidirectional.
/// </summary>
internal static class RnnBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int Opt(string name, int dflt) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : dflt; }
        int repeats = Opt("--repeats", 9), batch = Opt("--batch", 64), seq = Opt("--seq", 20), hidden = Opt("--hidden", 256);
        bool bidirectional = args.Contains("--bidirectional");
        var options = new RecurrentOptions(hidden, hidden, Bidirectional: bidirectional, BatchFirst: true);
        var x = Tensor.Uniform(new Random(1), -1f, 1f, batch, seq, hidden);
        var lengths = Enumerable.Range(0, batch).Select(b => seq - b % (seq / 2)).ToArray();   // G2P-like spread of word lengths
        var gru = new Gru(options, seed: 1);
        var lstm = new Lstm(options, seed: 1);
        var cases = new (string Name, Action Call)[]
        {
            ("gru_forward", () => { using var _ = Autograd.NoGrad(); gru.Forward(x, null, lengths); }),
            ("gru_forward_backward", () => { gru.ZeroGrad(); gru.Forward(x, null, lengths).Output.Sum().Backward(); }),
            ("lstm_forward", () => { using var _ = Autograd.NoGrad(); lstm.Forward(x, null, null, lengths); }),
            ("lstm_forward_backward", () => { lstm.ZeroGrad(); lstm.Forward(x, null, null, lengths).Output.Sum().Backward(); }),
        };
        var process = Process.GetCurrentProcess();
        // warm every case first: they share the GEMM and gate code, which the JIT would otherwise still be tiering up during the first case
        for (int w = 0; w < 3; w++) foreach (var (_, call) in cases) call();
        foreach (var (name, call) in cases)
        {
            var (ms, best) = GemmBench.Time(call, repeats, false, 1, process);
            double tokensPerSecond = batch * seq / (ms / 1000);
            Console.WriteLine(json
                ? string.Create(CultureInfo.InvariantCulture, $"{{\"case\":\"{name}\",\"batch\":{batch},\"seq\":{seq},\"hidden\":{hidden},\"bidirectional\":{(bidirectional ? "true" : "false")},\"ms\":{ms:F3},\"best_ms\":{best:F3},\"tokens_per_s\":{tokensPerSecond:F0}}}")
                : string.Create(CultureInfo.InvariantCulture, $"{name,-24} {ms,9:F3} ms (best {best:F3}) {tokensPerSecond,10:F0} tokens/s"));
        }
        return 0;
    }
}
