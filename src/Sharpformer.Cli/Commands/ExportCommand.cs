using System.CommandLine;
using System.Globalization;
using Sharpformer.Checkpoints;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer export --model DIR --output DIR [--dtype f16|bf16|f32] [--config FILE] [--tokenizer DIR] [--run DIR]
/// [--notes FILE] [--results FILE…] [--tokens-per-step N] [--overwrite]</c>: a self-contained model folder to ship.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder to export: a run's output, or its checkpoint-<step>/ (with --config).", Required = true };
        var output = new Option<string>("--output") { Description = "Folder to write (config.json, model.safetensors, tokenizer files, README.md), e.g. models/sharpformer-mini-uncased.", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Storage of the weights: f16 (default), bf16 or f32.", DefaultValueFactory = _ => "f16" };
        dtype.AcceptOnlyFromAmong("f16", "bf16", "f32");
        var config = new Option<string?>("--config") { Description = "config.json for a model folder without one (a checkpoint-<step>/)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: the model folder, else the run's tokenizer/)." };
        var run = new Option<string?>("--run") { Description = "Run folder whose metrics.jsonl the model card reports (default: the model folder, or the run of a checkpoint-<step>/)." };
        var notes = new Option<string?>("--notes") { Description = "Markdown file with the data, compute and commands, included in the model card as written." };
        var results = new Option<string[]>("--results") { Description = "Measured result JSON files (the --json output of evaluate, features, g2p --evaluate …) shown as tables in the card.", AllowMultipleArgumentsPerToken = true };
        var tokens = new Option<long?>("--tokens-per-step") { Description = "Tokens per optimizer update (batch × accumulation × block) to state the tokens seen." };
        var title = new Option<string?>("--title") { Description = "Model card title (default: the output folder's name)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace a non-empty output folder (swapped out whole)." };
        var cmd = new Command("export", "Write a trained model as a self-contained HF folder to ship: F16 safetensors, config.json, tokenizer files and a model card from the run's measured figures.");
        foreach (var o in new Option[] { model, output, dtype, config, tokenizer, run, notes, results, tokens, title, overwrite }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var options = new ModelExportOptions
            {
                DType = r.GetValue(dtype) switch { "bf16" => DType.BF16, "f32" => DType.F32, _ => DType.F16 },
                Config = r.GetValue(config), TokenizerDirectory = r.GetValue(tokenizer), Overwrite = r.GetValue(overwrite),
                Card = new ModelCardOptions
                {
                    Title = r.GetValue(title), RunDirectory = r.GetValue(run), NotesFile = r.GetValue(notes),
                    ResultFiles = r.GetValue(results) ?? [], TokensPerStep = r.GetValue(tokens),
                },
            };
            var result = ModelExport.Export(r.GetValue(model)!, r.GetValue(output)!, options);
            foreach (var f in result.MissingTokenizerFiles)
                r.InvocationConfiguration.Error.WriteLine($"warning: the tokenizer folder has no {f}; the export has none either.");
            r.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.Architecture}: {result.Parameters:N0} parameters as {result.DType}; wrote {result.Directory} (model.safetensors {result.WeightBytes / 1048576.0:F1} MiB; {string.Join(", ", result.Files)})"));
            return 0;
        });
        return cmd;
    }
}
