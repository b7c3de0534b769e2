using System.CommandLine;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer classify --model DIR [--top-k K] [--function softmax|sigmoid|none] texts…</c>.</summary>
internal static class ClassifyCommand
{
    public static Command Create()
    {
        var cmd = new Command("classify", "Classify texts with a sequence-classification model (HF text-classification pipeline).");
        var v = PipelineVerbs.AddTo(cmd);
        var topK = new Option<int>("--top-k") { Description = "Labels per text, best first; 0 = all.", DefaultValueFactory = _ => 1 };
        var function = new Option<string>("--function") { Description = "Score function: default (softmax, or sigmoid for multi-label), softmax, sigmoid, none.", DefaultValueFactory = _ => "default" };
        cmd.Options.Add(topK); cmd.Options.Add(function);
        cmd.SetAction(r =>
        {
            var fn = r.GetValue(function)!.ToLowerInvariant() switch
            {
                "default" => ClassificationFunction.Default, "softmax" => ClassificationFunction.Softmax,
                "sigmoid" => ClassificationFunction.Sigmoid, "none" => ClassificationFunction.None,
                var f => throw new ArgumentException($"--function {f} is unknown; use default, softmax, sigmoid or none."),
            };
            int k = r.GetValue(topK);
            if (k < 0) throw new ArgumentException($"--top-k must be ≥ 0, not {k}.");
            var options = v.Options(r);
            var texts = v.ReadTexts(r);
            var pipeline = TextClassificationPipeline.FromPretrained(v.ModelPath(r), options);
            var output = r.InvocationConfiguration.Output;
            PipelineVerbs.WarnOnTruncation(pipeline, r.InvocationConfiguration.Error);
            var results = pipeline.Run(texts.Select(t => new TextInput(t)).ToList(), k == 0 ? null : k, fn);
            for (int i = 0; i < texts.Count; i++)
            {
                if (r.GetValue(v.Json)) { output.WriteLine(PipelineJson.Serialize(results[i])); continue; }
                if (texts.Count > 1) output.WriteLine($"[{i}] {texts[i]}");
                foreach (var s in results[i]) output.WriteLine($"  {s.Label,-20} {PipelineVerbs.F(s.Score)}");
            }
            return 0;
        });
        return cmd;
    }
}
