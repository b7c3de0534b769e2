using System.CommandLine;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer fill-mask --model DIR [--top-k K] [--targets a,b] "text with [MASK]"…</c>.</summary>
internal static class FillMaskCommand
{
    public static Command Create()
    {
        var cmd = new Command("fill-mask", "Predict [MASK] tokens with a masked-LM model (HF fill-mask pipeline).");
        var v = PipelineVerbs.AddTo(cmd, Hub.ShippedTask.FillMask);
        var topK = new Option<int>("--top-k") { Description = "Candidates per mask.", DefaultValueFactory = _ => 5 };
        var targets = new Option<string?>("--targets") { Description = "Comma-separated words to restrict the candidates to." };
        cmd.Options.Add(topK); cmd.Options.Add(targets);
        cmd.SetAction(r =>
        {
            int k = r.GetValue(topK);
            if (k < 1) throw new ArgumentException($"--top-k must be ≥ 1, not {k}.");
            var targetList = r.GetValue(targets)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var options = v.Options(r);
            var texts = v.ReadTexts(r);
            var pipeline = FillMaskPipeline.FromPretrained(v.ModelPath(r), options);
            PipelineVerbs.WarnOnTruncation(pipeline, r.InvocationConfiguration.Error);
            var output = r.InvocationConfiguration.Output;
            var results = pipeline.Run(texts, k, targetList);
            for (int i = 0; i < texts.Count; i++)
            {
                // One mask: a list of candidates, as HF; several: a list per mask.
                if (r.GetValue(v.Json))
                {
                    output.WriteLine(results[i].Count == 1 ? PipelineJson.Serialize(results[i][0]) : PipelineJson.Serialize(results[i]));
                    continue;
                }
                if (texts.Count > 1) output.WriteLine($"[{i}] {texts[i]}");
                for (int m = 0; m < results[i].Count; m++)
                {
                    if (results[i].Count > 1) output.WriteLine($"  mask {m + 1}:");
                    foreach (var c in results[i][m]) output.WriteLine($"  {PipelineVerbs.F(c.Score)}  {c.TokenStr,-16} {c.Sequence}");
                }
            }
            return 0;
        });
        return cmd;
    }
}
