using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer train seq2seq --architecture bahdanau|transformer --data DIR --output DIR</c> and
/// <c>sharpformer g2p --model DIR [--json] [--beam K] [--n-best N] words… | [--jsonl] &lt; words.jsonl | --evaluate [--split test|dev] [--data DIR]</c>.
/// </summary>
internal static class G2PCommand
{
    static string CmuDictFolder(string? data) =>
        data ?? Path.Combine(DataFolder.Resolve(null), "cmudict");

    public static Command TrainSeq2Seq()
    {
        var architecture = new Option<string>("--architecture") { Description = "Model: 'bahdanau' (bidirectional GRU encoder, GRU decoder with additive attention) or 'transformer' (post-norm encoder–decoder).", DefaultValueFactory = _ => "bahdanau" };
        var data = new Option<string?>("--data") { Description = "CMUdict folder with train.tsv, dev.tsv, test.tsv (default: the shared data folder's cmudict/)." };
        var output = new Option<string>("--output") { Description = "Model directory to write (checkpoints and metrics.jsonl go there too).", Required = true };
        var epochs = new Option<double>("--epochs") { Description = "Training epochs at most; the learning rate decays linearly to 0 there. With --cpu-budget, pick the epochs the budget holds so the decay ends near the budget (default Bahdanau model: ~16.7 updates per CPU-second with evaluations, 2 threads on a 2-vCPU EPYC, 1,880 updates per epoch: 28 epochs ≈ 53 CPU-minutes; the 128-wide Transformer: ~9.6 at 1 thread).", DefaultValueFactory = _ => 10 };
        var batch = new Option<int>("--batch-size") { Description = "Pronunciations per update.", DefaultValueFactory = _ => 64 };
        var lr = new Option<double?>("--learning-rate") { Description = "Peak AdamW learning rate, linear decay (default: 2e-3 bahdanau, 7e-4 transformer)." };
        var warmup = new Option<double?>("--warmup-ratio") { Description = "Fraction of updates for the linear warm-up (default: 0.01 bahdanau, 0.05 transformer)." };
        var seed = new Option<int>("--seed") { Description = "Seed for initialisation and shuffling.", DefaultValueFactory = _ => 0 };
        var smoothing = new Option<float>("--label-smoothing") { Description = "ε of the label-smoothed training cross-entropy, as torch's CrossEntropyLoss(label_smoothing=ε); dev loss stays plain.", DefaultValueFactory = _ => 0f };
        var evalSteps = new Option<int>("--eval-steps") { Description = "Evaluate on dev (greedy WER/PER) and checkpoint every N updates.", DefaultValueFactory = _ => 500 };
        var patience = new Option<int>("--patience") { Description = "Early stopping: evaluations without a better dev WER.", DefaultValueFactory = _ => G2PTrainingOptions.DefaultPatience };
        var minutes = new Option<double?>("--time-budget") { Description = "Stop after this many wall-clock minutes (the last step is evaluated; the best dev checkpoint is kept). On a busy machine prefer --cpu-budget." };
        var cpuMinutes = new Option<double?>("--cpu-budget") { Description = "Stop after the process used this many CPU minutes, all threads together (30 min on 2 cores = 60); fair on a shared machine." };
        var devWords = new Option<int>("--dev-words") { Description = "Dev words (a fixed sample) scored greedily at each evaluation for early stopping; 0 = all. The whole dev split is scored with beam search at the end.", DefaultValueFactory = _ => 1000 };
        var noBuckets = new Option<bool>("--no-length-buckets") { Description = "Draw batches at random instead of grouping pronunciations of similar length (more padding)." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training pronunciations (quick runs)." };
        var emb = new Option<int>("--embedding-dim") { DefaultValueFactory = _ => 64, Description = "Letter/phoneme embedding size." };
        var enc = new Option<int>("--encoder-hidden") { DefaultValueFactory = _ => 128, Description = "Encoder GRU size per direction." };
        var dec = new Option<int>("--decoder-hidden") { DefaultValueFactory = _ => 256, Description = "Decoder GRU size." };
        var att = new Option<int>("--attention-units") { DefaultValueFactory = _ => 128, Description = "Additive attention width." };
        var dModel = new Option<int>("--d-model") { DefaultValueFactory = _ => 128, Description = "Transformer width d_model." };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 4, Description = "Transformer attention heads." };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 3, Description = "Transformer encoder layers and decoder layers (each)." };
        var ff = new Option<int>("--feed-forward") { DefaultValueFactory = _ => 512, Description = "Transformer feed-forward width." };
        var dropout = new Option<float?>("--dropout") { Description = $"Dropout (default: {BahdanauG2P.DefaultDropout} bahdanau, on embeddings, encoder states and the decoder output; 0.1 transformer)." };
        var separate = new Option<bool>("--separate-embeddings") { Description = "Transformer: separate source/target embeddings and output layer instead of one shared table." };
        var learned = new Option<bool>("--learned-positions") { Description = "Transformer: learned position embeddings instead of sinusoids." };
        var resume = TrainCommand.ResumeOption();
        var common = new CommonOptions();
        var cmd = new Command("seq2seq", "Train a grapheme-to-phoneme encoder–decoder on CMUdict; prints dev WER/PER per evaluation and the test score.");
        foreach (var o in new Option[] { architecture, data, output, epochs, batch, lr, warmup, seed, smoothing, evalSteps, patience, minutes, cpuMinutes, devWords, noBuckets, limit, emb, enc, dec, att, dModel, heads, layers, ff, dropout, separate, learned, resume })
            cmd.Options.Add(o);
        common.AddTo(cmd);
        cmd.SetAction((r, ct) => TrainCommand.StopOnCtrlC(ct, ct =>
        {
            using var executionScope = common.EnterExecution(r);
            G2PArchitecture arch = r.GetValue(architecture) switch
            {
                "bahdanau" => new BahdanauG2P(r.GetValue(emb), r.GetValue(enc), r.GetValue(dec), r.GetValue(att), r.GetValue(dropout) ?? BahdanauG2P.DefaultDropout),
                "transformer" => new TransformerG2P(r.GetValue(dModel), r.GetValue(heads), r.GetValue(layers), r.GetValue(layers), r.GetValue(ff),
                    r.GetValue(dropout) ?? 0.1f, !r.GetValue(separate), r.GetValue(learned)),
                var a => throw new ArgumentException($"--architecture '{a}' is not available; use 'bahdanau' or 'transformer'."),
            };
            var splits = CmuDict.Load(CmuDictFolder(r.GetValue(data)));
            string outDir = r.GetValue(output)!;
            bool json = r.GetValue(common.Json);
            var stdout = r.InvocationConfiguration.Output;
            var options = new G2PTrainingOptions
            {
                Architecture = arch, Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), WarmupRatio = r.GetValue(warmup), Seed = r.GetValue(seed), LabelSmoothing = r.GetValue(smoothing),
                EvalSteps = r.GetValue(evalSteps), Patience = r.GetValue(patience), Limit = r.GetValue(limit),
                DevWords = r.GetValue(devWords), BucketByLength = !r.GetValue(noBuckets),
                TimeBudget = r.GetValue(minutes) is double m ? TimeSpan.FromMinutes(m) : null,
                CpuBudget = r.GetValue(cpuMinutes) is double c ? TimeSpan.FromMinutes(c) : null,
                DisableProgressBar = r.GetValue(common.NoProgress), ResumeFrom = TrainCommand.ResolveResume(r.GetValue(resume), outDir),
            };
            if (!json) r.InvocationConfiguration.Error.WriteLine($"training the {arch.Name} G2P model on {splits.Train.Count} pronunciations, dev {splits.Dev.Count}, test {splits.Test.Count}");
            var result = G2PTraining.Train(splits, outDir, options, rec => PrintEval(stdout, rec, json), ct);
            var (d, t) = (result.Dev, result.Test);
            if (json) stdout.WriteLine(JsonSerializer.Serialize(new { split = "test", words = t.Words, wer = t.Wer, per = t.Per, dev_wer = d.Wer, dev_per = d.Per,
                steps = result.Train.GlobalStep, seconds = result.Elapsed.TotalSeconds }));
            else stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"dev WER {d.Wer:P2}  PER {d.Per:P2} ({d.Words} words); test WER {t.Wer:P2}  PER {t.Per:P2} ({t.Words} words, beam {G2PTraining.BeamWidth}); {result.Train.GlobalStep} steps in {result.Elapsed.TotalMinutes:F1} min; model saved to {outDir}"));
            return 0;
        }));
        return cmd;
    }

    static void PrintEval(TextWriter output, EvaluationLog record, bool json)
    {
        var fields = new List<(string Key, object? Value)> { ("epoch", record.Epoch), ("step", record.Step), ("train_loss", record.TrainLoss) };
        foreach (var k in (string[])["eval_loss", "eval_wer", "eval_per"])
            if (record.Metric(k) is double v) fields.Add((k, v));
        if (json) { output.WriteLine(JsonSerializer.Serialize(fields.ToDictionary(f => f.Key, f => f.Value))); return; }
        output.WriteLine(string.Join("  ", fields.Select(f => f.Key + " " + (f.Value is double d ? d.ToString("F4", CultureInfo.InvariantCulture) : f.Value))));
    }

    static void Write(IEnumerable<G2PPrediction> predictions, bool json, int n, TextWriter output)
    {
        foreach (var p in predictions)
        {
            if (json)
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    word = p.Word, phonemes = string.Join(' ', p.Best.Phonemes),
                    n_best = p.NBest.Select(h => new { phonemes = string.Join(' ', h.Phonemes), score = h.Score, finished = h.Finished }),
                }));
            else foreach (var h in p.NBest)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.Word}\t{string.Join(' ', h.Phonemes)}{(n > 1 ? $"\t{h.Score:F4}" : "")}"));
        }
    }

    /// <summary>The words of JSON lines <c>{"word": "…"}</c> (blank lines skipped); a bad line is an error naming its number.</summary>
    static IEnumerable<string> WordLines(TextReader input)
    {
        int lineNo = 0;
        for (string? line; (line = input.ReadLine()) != null;)
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            string? word;
            try
            {
                using var doc = JsonDocument.Parse(line);
                word = doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("word", out var w) && w.ValueKind == JsonValueKind.String
                    ? w.GetString() : null;
            }
            catch (JsonException e) { throw new FormatException($"stdin line {lineNo}: not JSON ({e.Message})."); }
            if (string.IsNullOrWhiteSpace(word)) throw new FormatException($"stdin line {lineNo}: expected {{\"word\": \"…\"}} with a non-empty word.");
            yield return word;
        }
    }

    /// <summary>
    /// Scores a G2P model on a CMUdict split by SOURCE.md's rules and prints WER and PER (one JSON object with
    /// <paramref name="json"/>). <paramref name="data"/> is a CMUdict folder (its <paramref name="split"/>.tsv is read) or one
    /// split file; null = the shared data folder's cmudict/.
    /// </summary>
    internal static int Evaluate(Models.ISeq2SeqModel model, G2PVocabulary vocab, string? data, string split, int beam, bool json, TextWriter output)
    {
        string path = data is not null && File.Exists(data) ? data : Path.Combine(CmuDictFolder(data), split switch
        {
            "test" => "test.tsv", "dev" => "dev.tsv", var s => throw new ArgumentException($"--split {s}: use test or dev."),
        });
        if (data is not null && File.Exists(data)) split = Path.GetFileNameWithoutExtension(data);
        var score = G2PTraining.Evaluate(model, vocab, CmuDict.ByWord(CmuDict.Read(path)), beam);
        if (json) output.WriteLine(JsonSerializer.Serialize(new { split, words = score.Words, wer = score.Wer, per = score.Per, beam }));
        else output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{split}: WER {score.Wer:P2} ({score.WordErrors}/{score.Words} words)  PER {score.Per:P2} ({score.PhonemeEdits}/{score.ReferencePhonemes} phonemes)  beam {beam}"));
        return 0;
    }

    public static Command Create()
    {
        var model = ModelOption.Create("G2P model directory (train seq2seq output).", Hub.ShippedTask.G2P);
        var words = new Argument<string[]>("words") { Description = "Words to pronounce.", Arity = ArgumentArity.ZeroOrMore };
        var json = new Option<bool>("--json") { Description = "One JSON object per word: word, phonemes, n-best with scores." };
        var jsonl = new Option<bool>("--jsonl") { Description = "Read JSON lines {\"word\": …} from stdin and answer one JSON object per line (the default when no words are given and stdin is not a terminal)." };
        var beam = new Option<int>("--beam") { Description = "Beam width (1 = greedy).", DefaultValueFactory = _ => G2PTraining.BeamWidth };
        var nBest = new Option<int>("--n-best") { Description = "Pronunciations per word.", DefaultValueFactory = _ => 1 };
        var evaluate = new Option<bool>("--evaluate") { Description = "Score the model on a CMUdict split (WER and PER by SOURCE.md's rules) instead of pronouncing words." };
        var split = new Option<string>("--split") { Description = "Split for --evaluate: test or dev.", DefaultValueFactory = _ => "test" };
        var data = new Option<string?>("--data") { Description = "CMUdict folder for --evaluate (default: the shared data folder's cmudict/)." };
        var cmd = new Command("g2p", "Pronounce words with a grapheme-to-phoneme model (ARPAbet without stress), or --evaluate it on CMUdict.");
        cmd.Arguments.Add(words);
        foreach (var o in new Option[] { model, json, jsonl, beam, nBest, evaluate, split, data }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var (m, vocab) = G2PTraining.Load(ModelOption.Read(r, model, Hub.ShippedTask.G2P));
            var output = r.InvocationConfiguration.Output;
            int k = r.GetValue(beam), n = r.GetValue(nBest);
            if (k < 1) throw new ArgumentException($"--beam must be ≥ 1, not {k}.");
            if (n < 1 || n > k) throw new ArgumentException($"--n-best must be between 1 and the beam width {k}, not {n}.");
            if (r.GetValue(evaluate))
                return Evaluate(m, vocab, r.GetValue(data), r.GetValue(split)!, k, r.GetValue(json), output);
            var list = r.GetValue(words) ?? [];
            if (list.Length > 0)
            {
                if (r.GetValue(jsonl)) throw new ArgumentException("give words as arguments or JSON lines on stdin (--jsonl), not both.");
                Write(G2PTraining.Predict(m, vocab, list, k, G2PTraining.BeamAlpha, n), r.GetValue(json), n, output);
                return 0;
            }
            if (!r.GetValue(jsonl) && !CliHost.InputRedirected)
                throw new ArgumentException("no input: give words to pronounce, pipe JSON lines {\"word\": …} into stdin, or --evaluate.");
            // Answered a chunk at a time, so a long stream is batched without being held in memory.
            foreach (var chunk in WordLines(CliHost.Input).Chunk(256))
                Write(G2PTraining.Predict(m, vocab, chunk, k, G2PTraining.BeamAlpha, n), json: true, n, output);
            return 0;
        });
        return cmd;
    }
}
