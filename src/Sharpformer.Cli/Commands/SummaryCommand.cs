using System.CommandLine;
using Sharpformer.Models;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer summary --model &lt;dir|id&gt;</c>: Keras-style table of layers, output shapes and parameter counts.</summary>
internal static class SummaryCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + weights) or Hub model id in the local cache.", Required = true };
        var depth = new Option<int>("--depth") { Description = "Nesting depth of the table (default 4: down to bert.encoder.layer.N).", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq") { Description = "Sequence length of the probe input that fills the output-shape column (default 8).", DefaultValueFactory = _ => 8 };
        var cmd = new Command("summary", "Print a model's layers, output shapes and parameter counts (totals, trainable, non-trainable).");
        cmd.Options.Add(model); cmd.Options.Add(depth); cmd.Options.Add(seq);
        cmd.SetAction(r =>
        {
            return Execute(r.GetValue(model)!, r.GetValue(depth), r.GetValue(seq), r.InvocationConfiguration.Output, r.InvocationConfiguration.Error);
        });
        return cmd;
    }

    /// <summary>The verb over writers (tests run it in-process): exit 0, or 1 with one <c>error:</c> line on stderr.</summary>
    internal static int Execute(string modelPath, int depth, int seq, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            stdout.Write(Render(modelPath, depth, seq, stderr));
            return 0;
        }
        catch (Exception e) when (e is SharpformerException or IOException or ArgumentException or NotSupportedException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Loads the model, runs one probe batch [1, seq] so every layer records its output shape, and renders the table;
    /// weights the checkpoint did not provide are named on <paramref name="stderr"/>. A saved seed model is tabulated from
    /// its parameters.
    /// </summary>
    internal static string Render(string modelPath, int depth, int seq, TextWriter stderr)
    {
        if (SeedTransformer.IsSeedTransformerDirectory(modelPath))
            return $"Model: {nameof(SeedTransformer)} ({modelPath})\n{ModelSummary.Of(SeedTransformer.Load(modelPath), depth)}";
        var model = AutoModel.FromPretrained(modelPath);
        CliErrors.WarnAboutLoad(model, stderr);
        var summary = ModelSummary.Of(model, depth, seq);
        return $"Model: {model.Architecture} ({AutoModel.ResolveDirectory(modelPath)})\n{summary}";
    }
}
