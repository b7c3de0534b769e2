using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sharpformer.Data;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer pretrain</c>: pretrain a masked LM (BERT) or causal LM (GPT-2) from raw text and save it as an HF model
/// directory (<see cref="Pretraining.Run"/>).
/// </summary>
public static partial class PretrainCommand
{
    internal static Command Create()
    {
        var corpus = new Option<string[]>("--corpus") { Description = "Folders of .txt/.txt.gz files (one text per line) or single files.", AllowMultipleArgumentsPerToken = true };
        var task = new Option<string[]>("--task") { Description = "Also read a task's train split: ag_news | conll | emotion (from --data).", AllowMultipleArgumentsPerToken = true };
        task.AcceptOnlyFromAmong("ag_news", "conll", "emotion");
        var data = TrainCommand.DataOption();
        var config = new Option<string>("--config") { Description = "Model size: mini (4 layers, hidden 256), small (4 layers, hidden 512), or a config.json path.", DefaultValueFactory = _ => "mini" };
        var objective = new Option<string?>("--objective") { Description = "mlm (BERT masked LM) or clm (GPT-2 causal LM); default: from --config/--init, else mlm." };
        objective.AcceptOnlyFromAmong("mlm", "clm");
        var budget = new Option<string?>("--time-budget") { Description = "Train for at most this long in this call, e.g. 2h, 90m, 1h30m (a checkpoint is written when it ends)." };
        var output = new Option<string>("--output") { Description = "Directory for the model, its tokenizer, checkpoints and metrics.jsonl.", Required = true };
        var init = new Option<string?>("--init") { Description = "Continue pretraining this model directory (domain adaptation); its tokenizer is used." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer directory to use (default: train one with the WordPiece / byte-level BPE trainer)." };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size of a tokenizer trained here.", DefaultValueFactory = _ => 16_000 };
        var blockSize = new Option<int>("--block-size") { Description = "Tokens per packed block (and positions of a new model).", DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch-size") { Description = "Blocks per micro-batch.", DefaultValueFactory = _ => 32 };
        var accum = new Option<int>("--gradient-accumulation") { Description = "Micro-batches per update.", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--learning-rate") { Description = "Peak learning rate (AdamW).", DefaultValueFactory = _ => 5e-4 };
        var schedule = new Option<string>("--schedule") { Description = "Decay after warmup: linear or cosine.", DefaultValueFactory = _ => "linear" };
        schedule.AcceptOnlyFromAmong("linear", "cosine");
        var warmup = new Option<double>("--warmup-ratio") { Description = "Fraction of updates with linear warmup.", DefaultValueFactory = _ => 0.05 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay (not on biases and LayerNorms).", DefaultValueFactory = _ => 0.01 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Updates to plan (default: what --time-budget allows at the measured speed, else --epochs).", DefaultValueFactory = _ => -1 };
        var epochs = new Option<double>("--epochs") { Description = "Epochs to plan when neither --max-steps nor --time-budget is given.", DefaultValueFactory = _ => 1 };
        var checkpointMinutes = new Option<double>("--checkpoint-minutes") { Description = "Write a resumable checkpoint this often.", DefaultValueFactory = _ => 10 };
        var evalSteps = new Option<int>("--eval-steps") { Description = "Score the held-out blocks every this many updates.", DefaultValueFactory = _ => 500 };
        var evalBlocks = new Option<int>("--eval-blocks") { Description = "Held-out blocks scored per evaluation.", DefaultValueFactory = _ => 256 };
        var logSteps = new Option<int>("--log-steps") { Description = "Print a progress line every this many updates.", DefaultValueFactory = _ => 50 };
        var wholeWord = new Option<bool>("--whole-word-mask") { Description = "Mask whole words (DataCollatorForWholeWordMask) instead of single word pieces." };
        var mlmProbability = new Option<double>("--mlm-probability") { Description = "Share of tokens selected for prediction.", DefaultValueFactory = _ => 0.15 };
        var seed = new Option<int>("--seed") { Description = "Seed for initialisation, order, masks and dropout.", DefaultValueFactory = _ => 0 };
        var limitLines = new Option<int?>("--limit-lines") { Description = "Read only the first N corpus lines (quick runs)." };
        var resume = TrainCommand.ResumeOption();
        var common = new CommonOptions();
        var cmd = new Command("pretrain", "Pretrain a masked LM (BERT) or causal LM (GPT-2) from raw text; writes an HF model directory.");
        foreach (var o in new Option[] { corpus, task, data, config, objective, budget, output, init, tokenizer, vocabSize, blockSize, batch, accum, lr, schedule,
            warmup, weightDecay, maxSteps, epochs, checkpointMinutes, evalSteps, evalBlocks, logSteps, wholeWord, mlmProbability, seed, limitLines, resume })
            cmd.Options.Add(o);
        common.AddTo(cmd);
        cmd.SetAction((r, ct) => TrainCommand.StopOnCtrlC(ct, ct =>
        {
            using var executionScope = common.EnterExecution(r);
            var tasks = (r.GetValue(task) ?? []).Select(t => t switch
            {
                "ag_news" => TaskText.AgNews,
                "conll" => TaskText.Conll,
                _ => TaskText.Emotion,
            }).ToList();
            string outDir = r.GetValue(output)!;
            var options = new PretrainingOptions
            {
                Corpus = r.GetValue(corpus) ?? [],
                TaskFiles = tasks.Count == 0 ? [] : tasks.Select(t => (t, Corpus.TaskTrainFile(t, DataFolder.Resolve(r.GetValue(data))))).ToList(),
                Config = r.GetValue(config)!,
                Objective = r.GetValue(objective) switch { "mlm" => PretrainingObjective.MaskedLM, "clm" => PretrainingObjective.CausalLM, _ => null },
                InitFrom = r.GetValue(init), Tokenizer = r.GetValue(tokenizer), VocabSize = r.GetValue(vocabSize), BlockSize = r.GetValue(blockSize),
                BatchSize = r.GetValue(batch), GradientAccumulationSteps = r.GetValue(accum), LearningRate = r.GetValue(lr),
                Schedule = r.GetValue(schedule) == "cosine" ? SchedulerType.Cosine : SchedulerType.Linear,
                WarmupRatio = r.GetValue(warmup), WeightDecay = r.GetValue(weightDecay), MaxSteps = r.GetValue(maxSteps), Epochs = r.GetValue(epochs),
                TimeBudget = r.GetValue(budget) is { } b ? ParseDuration(b, "--time-budget") : null,
                CheckpointInterval = TimeSpan.FromMinutes(r.GetValue(checkpointMinutes) is > 0 and var m ? m : throw new ArgumentException("--checkpoint-minutes must be > 0.")),
                EvalSteps = r.GetValue(evalSteps), EvalBlocks = r.GetValue(evalBlocks), LoggingSteps = r.GetValue(logSteps),
                Masking = new MaskingOptions { WholeWord = r.GetValue(wholeWord), Probability = r.GetValue(mlmProbability) },
                Seed = r.GetValue(seed), LimitLines = r.GetValue(limitLines), DisableProgressBar = true,
                ResumeFrom = TrainCommand.ResolveResume(r.GetValue(resume), outDir),
            };
            bool json = r.GetValue(common.Json);
            TextWriter stdout = r.InvocationConfiguration.Output, stderr = r.InvocationConfiguration.Error;
            var result = Pretraining.Run(outDir, options, p => PrintProgress(p, json, stdout), json ? null : s => stderr.WriteLine(s), ct);
            var summary = new Dictionary<string, object?>
            {
                ["output"] = result.OutputDir, ["objective"] = result.Objective == PretrainingObjective.MaskedLM ? "mlm" : "clm",
                ["steps"] = result.Train.GlobalStep, ["stopped_by_budget"] = result.Stopped, ["train_blocks"] = result.TrainBlocks,
                ["held_out_blocks"] = result.HeldOutBlocks, ["parameters"] = result.Parameters,
                ["held_out_accuracy"] = Math.Round(result.HeldOutAccuracy, 5), ["held_out_perplexity"] = Math.Round(result.HeldOutPerplexity, 4),
                ["tokens_per_s"] = Math.Round(result.Train.SamplesPerSecond * options.BlockSize), ["seconds"] = Math.Round(result.Elapsed.TotalSeconds, 1),
            };
            stdout.WriteLine(JsonSerializer.Serialize(summary));
            return 0;
        }));
        return cmd;
    }

    /// <summary>One line per report: JSON with --json, else text on stdout.</summary>
    static void PrintProgress(PretrainingProgress p, bool json, TextWriter stdout)
    {
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["kind"] = p.IsEvaluation ? "eval" : "log", ["step"] = p.Step, ["max_steps"] = p.MaxSteps, ["loss"] = p.Loss, ["lr"] = p.LearningRate,
                ["tokens_per_s"] = Math.Round(p.TokensPerSecond), ["held_out_accuracy"] = p.HeldOutAccuracy, ["held_out_perplexity"] = p.HeldOutPerplexity,
                ["elapsed_s"] = Math.Round(p.Elapsed.TotalSeconds), ["eta_s"] = Math.Round(p.Eta.TotalSeconds),
            }));
            return;
        }
        var inv = CultureInfo.InvariantCulture;
        string head = string.Create(inv, $"step {p.Step}/{p.MaxSteps} ({100.0 * p.Step / Math.Max(1, p.MaxSteps):F1}%)");
        string train = p.Loss is double l ? string.Create(inv, $"  loss {l:F4}  lr {p.LearningRate:G3}  {p.TokensPerSecond:F0} tokens/s") : "  evaluation";
        string held = p.HeldOutAccuracy is double a ? string.Create(inv, $"  held-out acc {a:F4} ppl {p.HeldOutPerplexity:F2}") : "";
        stdout.WriteLine(string.Create(inv, $"{head}{train}{held}  elapsed {Clock(p.Elapsed)}  ETA {Clock(p.Eta)}"));
    }

    // h:mm:ss with the hours uncapped (a TimeSpan's "hh" drops whole days).
    static string Clock(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}:{t:mm\\:ss}");

    /// <summary>"2h", "90m", "1h30m", "45s", "1.5h" → a time span; the error names the option.</summary>
    public static TimeSpan ParseDuration(string text, string option)
    {
        var m = DurationPattern().Match(text.Trim());
        if (!m.Success || m.Value.Length == 0 || !m.Groups.Cast<Group>().Skip(1).Any(g => g.Success))
            throw new ArgumentException($"{option} '{text}' is not a duration; write it like 2h, 90m, 1h30m or 45s.");
        double Part(int i) => m.Groups[i].Success ? double.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture) : 0;
        var span = TimeSpan.FromHours(Part(1)) + TimeSpan.FromMinutes(Part(2)) + TimeSpan.FromSeconds(Part(3));
        return span > TimeSpan.Zero ? span : throw new ArgumentException($"{option} '{text}' must be longer than zero.");
    }

    [GeneratedRegex(@"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$", RegexOptions.IgnoreCase)]
    private static partial Regex DurationPattern();
}
