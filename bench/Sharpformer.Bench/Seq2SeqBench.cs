using System.Globalization;
using Sharpformer.Data;
using Sharpformer.Nn;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Bench;

/// <summary>
/// Training throughput of the two G2P encoder–decoders at the sizes <c>train seq2seq</c> uses by default: one step
/// (teacher-forced forward + cross-entropy + backward + clip 5 + AdamW) on a fixed batch of CMUdict training words, the
/// same batch bench/peers/torch_seq2seq_train.py builds (every ⌊N/B⌋-th pronunciation of train.tsv, stress removed).
/// Prints per model the median wall ms per step, process CPU seconds per step, and target tokens (non-pad labels, EOS
/// included) and source letters per second of wall time.
/// Options: --json, --repeats N (default 7), --warmup N (default 40), --threads T (default: all), --batch B (default 64),
/// --only bahdanau|transformer, --data DIR (the folder holding cmudict/), --bahdanau EMB,ENC,DEC,ATT and
/// --transformer D,HEADS,LAYERS,FF (sizes other than the defaults, to price a larger model before a 60-CPU-minute run).
/// </summary>
/// <remarks>
/// The warm-up is long because of tiered compilation: a method is recompiled optimised only after ~30 calls, on a background
/// thread whose CPU time the process total includes. With 2 warm-up steps the Bahdanau step measured 0.26 CPU s (most of it
/// tier-0 code and the JIT thread) where the same build, fully optimised (DOTNET_TieredCompilation=0), takes ~0.1 — the
/// steady state of a training run (~12.5 updates per CPU-second in the 60-CPU-minute logs).
/// </remarks>
internal static class Seq2SeqBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        string? Opt(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int repeats = int.Parse(Opt("--repeats") ?? "7", CultureInfo.InvariantCulture);
        int threads = int.Parse(Opt("--threads") ?? "0", CultureInfo.InvariantCulture);
        int batchSize = int.Parse(Opt("--batch") ?? "64", CultureInfo.InvariantCulture);
        int warmup = int.Parse(Opt("--warmup") ?? "40", CultureInfo.InvariantCulture);
        string only = Opt("--only") ?? "all";
        using var threadScope = Tensors.ExecutionScope.Enter(Tensors.ExecutionOptions.FromEnvironment(threads));
        var train = CmuDict.Read(Path.Combine(DataFolder.Resolve(Opt("--data")), "cmudict", "train.tsv"));
        var vocab = G2PVocabulary.Build(train);
        int stride = train.Count / batchSize;
        var rows = Enumerable.Range(0, batchSize).Select(i => train[i * stride])
            .Select((e, i) => (vocab.EncodeWord(e.Word), vocab.EncodePhonemes(e.Phonemes), i)).ToList();
        var batch = Seq2SeqBatch.Collate(rows, G2PVocabulary.Pad);
        int targetTokens = batch.Labels.Count(l => l != G2PVocabulary.Pad), sourceTokens = batch.SrcLengths.Sum();
        int[]? Sizes(string name) => Opt(name)?.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var b = Sizes("--bahdanau") ?? [64, 128, 256, 128];
        var t = Sizes("--transformer") ?? [128, 4, 3, 512];
        var architectures = new G2PArchitecture[] { new BahdanauG2P(b[0], b[1], b[2], b[3]), new TransformerG2P(t[0], t[1], t[2], t[2], t[3]) }
            .Where(a => only == "all" || a.Name == only);
        foreach (var arch in architectures)
        {
            var model = arch.Create(vocab, seed: 0);
            model.Module.Train();
            var trainable = new Seq2SeqTrainable(model, (_, _) => { });
            var parameters = model.Module.Parameters().ToList();
            var opt = new Optim.AdamW(parameters, learningRate: arch.DefaultLearningRate, weightDecay: 0f);
            var rng = new TrainingRandom(1);
            var pool = new Tensors.TensorPool();
            void Step()
            {
                TrainingOptimizer.ZeroGradients(parameters);
                using (pool.Scope()) trainable.TrainStep(batch, rng, 1f);   // as the Trainer: the step's tensors live in a pooled scope
                Optim.GradClip.ClipGradNorm(parameters, 5f);
                opt.Step();
            }
            for (int w = 0; w < warmup; w++) Step();
            var st = TrainBench.MedianStep(Step, repeats);
            double s = st.MedianSeconds;
            var inv = CultureInfo.InvariantCulture;
            if (json)
                Console.WriteLine(string.Create(inv,
                    $"{{\"bench\":\"seq2seq_train\",\"model\":\"{arch.Name}\",\"parameters\":{model.Module.ParameterCount()},\"batch\":{batchSize},\"source_tokens\":{sourceTokens},\"target_tokens\":{targetTokens},\"threads\":{Tensors.ExecutionScope.Threads},\"step_ms\":{s * 1000:F1},\"target_tokens_per_s\":{targetTokens / s:F0},\"source_tokens_per_s\":{sourceTokens / s:F0}{st.Json}}}"));
            else
                Console.WriteLine(string.Create(inv,
                    $"{arch.Name,-12} {model.Module.ParameterCount(),9} params  batch {batchSize}: {s * 1000:F1} ms/step, {st.CpuSecondsPerStep:F3} CPU s/step, {targetTokens / s:F0} target tokens/s, {sourceTokens / s:F0} source tokens/s"));
        }
        return 0;
    }
}
