using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer evaluate</c>: score a saved classifier directory on a labelled file, or a G2P model (<c>train seq2seq</c>
/// output) on a CMUdict split: test WER and PER by the SOURCE.md rules.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory: a seed transformer, a BERT/DistilBERT sequence or token classifier, or a G2P model.", Required = true };
        var data = new Option<string?>("--data") { Description = "Labelled file: AG News CSV, emotion 'text;label', CSV, JSON lines (text classifiers) or CoNLL (token classifiers); for a G2P model a CMUdict folder or split file (default: the shared cmudict/)." };
        var split = new Option<string>("--split") { Description = "G2P models: the CMUdict split scored, test or dev.", DefaultValueFactory = _ => "test" };
        var beam = new Option<int>("--beam") { Description = "G2P models: beam width (1 = greedy).", DefaultValueFactory = _ => G2PTraining.BeamWidth };
        var format = new Option<TextFileFormat>("--format") { Description = "Text data format when recognition from the file is not wanted.", DefaultValueFactory = _ => TextFileFormat.Auto };
        var batch = new Option<int>("--batch-size") { Description = "Evaluation batch size.", DefaultValueFactory = _ => 64 };
        var maxLength = new Option<int>("--max-length") { Description = "BERT-family models: truncate inputs to this many tokens.", DefaultValueFactory = _ => 128 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object with the metrics instead of a report." };
        var threads = ThreadsOption.Create();
        var cmd = new Command("evaluate", "Evaluate a saved model: accuracy/weighted F1 and confusion matrix, entity F1 for NER, or WER/PER on CMUdict for G2P.");
        foreach (var o in new Option[] { model, data, format, batch, maxLength, json, split, beam, threads }) cmd.Options.Add(o);
        cmd.SetAction((r, ct) =>
        {
            using var scope = Tensors.ExecutionScope.Enter(ThreadsOption.Read(r, threads));
            string dir = r.GetValue(model)!;
            if (G2PTraining.IsModelDirectory(dir))
            {
                if (r.GetValue(beam) < 1) throw new ArgumentException($"--beam must be ≥ 1, not {r.GetValue(beam)}.");
                var (m, vocab) = G2PTraining.Load(dir);
                return Task.FromResult(G2PCommand.Evaluate(m, vocab, r.GetValue(data), r.GetValue(split)!, r.GetValue(beam), r.GetValue(json), r.InvocationConfiguration.Output));
            }
            string file = r.GetValue(data) ?? throw new ArgumentException("--data is required: the labelled file to score.");
            bool token = !SeedTransformer.IsSeedTransformerDirectory(dir)
                && ModelConfigLoader.Load(AutoModel.ResolveDirectory(dir)).Architectures?.FirstOrDefault()?.EndsWith("TokenClassification", StringComparison.Ordinal) == true;
            var inv = CultureInfo.InvariantCulture;
            if (token)
            {
                var result = Evaluation.EvaluateTokenClassifier(dir, Conll.Read(file), r.GetValue(batch), r.GetValue(maxLength), ct);
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["eval_loss"] = result.Loss, ["eval_entity_precision"] = result.Report.Precision,
                        ["eval_entity_recall"] = result.Report.Recall, ["eval_entity_f1"] = result.Report.F1, ["eval_token_accuracy"] = result.TokenAccuracy, ["samples_per_s"] = result.SentencesPerSecond }));
                else
                {
                    Console.WriteLine(result.Report);
                    Console.WriteLine(string.Create(inv, $"entity_f1 {result.Report.F1:F4}  token_accuracy {result.TokenAccuracy:F4}  loss {result.Loss:F4}"));
                }
                return Task.FromResult(0);
            }
            var labels = Evaluation.LabelsOf(dir);
            var examples = TextClassificationFiles.Read(file, r.GetValue(format), labels);
            var text = Evaluation.EvaluateTextClassifier(dir, examples, r.GetValue(batch), r.GetValue(maxLength), ct);
            if (r.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["eval_loss"] = text.Loss, ["eval_accuracy"] = text.Report.Accuracy,
                    ["eval_f1_weighted"] = text.Report.Weighted.F1, ["samples_per_s"] = text.SamplesPerSecond }));
            else
            {
                Console.WriteLine(text.Report);
                Console.WriteLine(text.Confusion);
                Console.WriteLine(string.Create(inv, $"accuracy {text.Report.Accuracy:F4}  f1_weighted {text.Report.Weighted.F1:F4}  loss {text.Loss:F4}  ({examples.Count} examples, {text.SamplesPerSecond:F0}/s)"));
            }
            return Task.FromResult(0);
        });
        return cmd;
    }
}
