using System.CommandLine;
using System.Globalization;
using Sharpformer.Models;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer quantize --model &lt;dir|id&gt; --output &lt;dir&gt;</c>: writes an int8 dynamically quantized copy of a BERT-family model.</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + weights) or Hub model id in the local cache.", Required = true };
        var output = new Option<string>("--output") { Description = "Directory to write the quantized model (config.json, model.safetensors, tokenizer files) into.", Required = true };
        var cmd = new Command("quantize", "Quantize the encoder's linear layers to int8 (weights per output channel; activations per row at run time) and save a loadable checkpoint (inference only).");
        cmd.Options.Add(model); cmd.Options.Add(output);
        cmd.SetAction(r => Execute(r.GetValue(model)!, r.GetValue(output)!, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>The verb over writers (tests run it in-process): exit 0 with a one-line summary, or 1 with one <c>error:</c> line on stderr.</summary>
    internal static int Execute(string modelPath, string outputDir, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var m = AutoModel.FromPretrained(modelPath);
            CliErrors.WarnAboutLoad(m, stderr);
            if (DynamicQuantization.IsQuantized(m)) throw new ArgumentException($"'{modelPath}' is already int8-quantized.");
            DynamicQuantization.Quantize(m);
            m.SavePretrained(outputDir);
            long bytes = new FileInfo(Path.Combine(outputDir, "model.safetensors")).Length;
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{m.Architecture}: encoder linear layers quantized to int8; wrote {outputDir} (model.safetensors {bytes / 1048576.0:F1} MiB)"));
            return 0;
        }
        catch (Exception e) when (e is SharpformerException or IOException or ArgumentException or NotSupportedException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
