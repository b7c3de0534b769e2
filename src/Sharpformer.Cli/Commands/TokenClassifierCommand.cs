using System.CommandLine;
using Sharpformer.Data;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer train token-classifier</c>: fine-tune a BERT-family directory for NER on CoNLL-format files.</summary>
internal static class TokenClassifierCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "BERT/DistilBERT model directory to fine-tune.", Required = true };
        var train = new Option<string>("--train") { Description = "CoNLL training file (word … tag per line, blank line between sentences; IOB2 or IOB1).", Required = true };
        var eval = new Option<string?>("--eval") { Description = "CoNLL evaluation file, scored with seqeval entity F1 after every epoch." };
        var output = new Option<string>("--output") { Description = "Model directory to write (checkpoints and metrics.jsonl go there too).", Required = true };
        var epochs = new Option<double>("--epochs") { Description = "Training epochs.", DefaultValueFactory = _ => 3 };
        var seed = new Option<int>("--seed") { Description = "Seed for head initialisation, shuffling and dropout.", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch-size") { Description = "Per-step batch size.", DefaultValueFactory = _ => 16 };
        var lr = new Option<double>("--learning-rate") { Description = "Peak learning rate (AdamW, linear decay).", DefaultValueFactory = _ => 5e-5 };
        var warmup = new Option<double>("--warmup-ratio") { Description = "Fraction of steps with linear warmup.", DefaultValueFactory = _ => 0.0 };
        var maxLength = new Option<int>("--max-length") { Description = "Truncate sentences to this many tokens.", DefaultValueFactory = _ => 128 };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training sentences (quick runs)." };
        var allPieces = new Option<bool>("--label-all-pieces") { Description = "Label every word piece (B- becomes I- after the first) instead of only the first piece." };
        var freeze = new Option<bool>("--freeze-base") { Description = "Train only the classification head." };
        var iob1 = new Option<bool>("--iob1") { Description = "The files use IOB1 tags (original CoNLL-2003); convert them to IOB2." };
        var resume = TrainCommand.ResumeOption();
        var saveCheckpoints = new Option<bool>("--save-checkpoints") { Description = "Write a resumable checkpoint-<step>/ after every epoch." };
        var randomInit = TrainCommand.RandomInitOption();
        var task = TrainCommand.TaskOption();
        var common = new CommonOptions();
        var cmd = new Command("token-classifier", "Fine-tune a BERT-family model for token classification (NER) on CoNLL files.");
        foreach (var o in new Option[] { model, train, eval, output, epochs, seed, batch, lr, warmup, maxLength, limit, allPieces, freeze, iob1, resume, saveCheckpoints, randomInit, task })
            cmd.Options.Add(o);
        common.AddTo(cmd);
        cmd.SetAction((r, ct) => TrainCommand.StopOnCtrlC(ct, ct =>
        {
            using var executionScope = common.EnterExecution(r);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var labels = LabelSet.Conll2003Ner;
            var conll = new ConllOptions(Tags: r.GetValue(iob1) ? ConllTags.ToIob2 : ConllTags.AsIs, Labels: labels);
            IReadOnlyList<TokenExample> trainSet = Conll.Read(r.GetValue(train)!, conll);
            if (r.GetValue(limit) is int n) trainSet = trainSet.Take(n).ToList();
            IReadOnlyList<TokenExample>? evalSet = r.GetValue(eval) is { } e ? Conll.Read(e, conll) : null;
            string outDir = r.GetValue(output)!;
            bool json = r.GetValue(common.Json);
            var options = new FineTuneOptions
            {
                Epochs = r.GetValue(epochs), Seed = r.GetValue(seed), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), WarmupRatio = r.GetValue(warmup),
                MaxLength = r.GetValue(maxLength), LabelAllPieces = r.GetValue(allPieces), FreezeBase = r.GetValue(freeze),
                DisableProgressBar = r.GetValue(common.NoProgress), SaveCheckpoints = r.GetValue(saveCheckpoints),
                ResumeFrom = TrainCommand.ResolveResume(r.GetValue(resume), outDir), RandomInit = r.GetValue(randomInit),
            };
            var result = FineTuning.TrainTokenClassifier(r.GetValue(model)!, trainSet, evalSet, labels, outDir, options, rec => TrainCommand.PrintEval(rec, json), ct);
            TrainCommand.PrintSummary(result.Evaluations, result.Train, outDir, json);
            if (json && r.GetValue(eval) is { } evalFile)
                Console.WriteLine(TaskResult.FromFineTuning(r.GetValue(task) ?? TaskResult.TaskOf(evalFile), TaskResult.SplitOf(evalFile), r.GetValue(model)!, options, result,
                    trainSet.Count, clock.Elapsed.TotalSeconds, TaskResult.ProcessCpuSeconds()).ToJson());
            return 0;
        }));
        return cmd;
    }
}
