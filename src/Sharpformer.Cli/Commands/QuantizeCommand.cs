using System.CommandLine;
using System.Globalization;
using Sharpformer.Models;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer quantize --model &lt;dir|id&gt; --output &lt;dir&gt;</c>: writes an int8 dynamically quantized copy of a BERT-family or GPT-2 model.</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + weights) or Hub model id in the local cache.", Required = true };
        var output = new Option<string>("--output") { Description = "Directory to write the quantized model (config.json, model.safetensors, tokenizer files) into.", Required = true };
        var cmd = new Command("quantize", "Quantize the linear layers (BERT family: the encoder's; GPT-2: the blocks' and the LM head) to int8 (weights per output channel; activations per row at run time) and save a loadable checkpoint (inference only).");
        cmd.Options.Add(model); cmd.Options.Add(output);
        cmd.SetAction(r => Execute(r.GetValue(model)!, r.GetValue(output)!, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>The verb over writers (tests run it in-process): exit 0 with a one-line summary, or 1 with one <c>error:</c> line on stderr.</summary>
    internal static int Execute(string modelPath, string outputDir, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            string dir = AutoModel.ResolveDirectory(modelPath);
            if (ModelConfigLoader.Load(dir) is Gpt2Config)
            {
                var lm = Gpt2LMHeadModel.FromPretrained(dir);
                if (DynamicQuantization.IsQuantized(lm)) throw new ArgumentException($"'{modelPath}' is already int8-quantized.");
                DynamicQuantization.Quantize(lm);
                lm.SavePretrained(outputDir);
                stdout.WriteLine(Summary("GPT2LMHeadModel: block projections and the LM head's copy of wte quantized to int8", outputDir));
                return 0;
            }
            var m = AutoModel.FromPretrained(dir);
            CliErrors.WarnAboutLoad(m, stderr);
            if (DynamicQuantization.IsQuantized(m)) throw new ArgumentException($"'{modelPath}' is already int8-quantized.");
            DynamicQuantization.Quantize(m);
            m.SavePretrained(outputDir);
            stdout.WriteLine(Summary($"{m.Architecture}: encoder linear layers quantized to int8", outputDir));
            return 0;
        }
        catch (Exception e) when (e is SharpformerException or IOException or ArgumentException or NotSupportedException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    static string Summary(string what, string outputDir)
    {
        long bytes = new FileInfo(Path.Combine(outputDir, "model.safetensors")).Length;
        return string.Create(CultureInfo.InvariantCulture, $"{what}; wrote {outputDir} (model.safetensors {bytes / 1048576.0:F1} MiB)");
    }
}
