using System.CommandLine;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer ner --model DIR [--aggregation none|simple|first|average|max] texts…</c>.</summary>
internal static class NerCommand
{
    public static Command Create()
    {
        var cmd = new Command("ner", "Find entities with a token-classification model (HF token-classification pipeline).");
        var v = PipelineVerbs.AddTo(cmd, Hub.ShippedTask.Ner);
        var aggregation = new Option<string>("--aggregation") { Description = "none, simple, first, average or max (HF aggregation_strategy).", DefaultValueFactory = _ => "simple" };
        var stride = new Option<int?>("--stride") { Description = "Pieces shared by consecutive windows of a text longer than the model (default: a quarter window)." };
        cmd.Options.Add(aggregation); cmd.Options.Add(stride);
        cmd.SetAction(r =>
        {
            var name = r.GetValue(aggregation)!;
            var strategy = name.ToLowerInvariant() switch
            {
                "none" => AggregationStrategy.None, "simple" => AggregationStrategy.Simple, "first" => AggregationStrategy.First,
                "average" => AggregationStrategy.Average, "max" => AggregationStrategy.Max,
                _ => throw new ArgumentException($"--aggregation {name} is unknown; use none, simple, first, average or max."),
            };
            var options = v.Options(r);
            var texts = v.ReadTexts(r);
            var pipeline = TokenClassificationPipeline.FromPretrained(v.ModelPath(r), options, r.GetValue(stride));
            var output = r.InvocationConfiguration.Output;
            bool json = r.GetValue(v.Json);
            if (strategy == AggregationStrategy.None)
            {
                var results = pipeline.RunTokens(texts);
                for (int i = 0; i < texts.Count; i++)
                {
                    if (json) { output.WriteLine(PipelineJson.Serialize(results[i])); continue; }
                    if (texts.Count > 1) output.WriteLine($"[{i}] {texts[i]}");
                    foreach (var e in results[i]) output.WriteLine($"  {e.Entity,-8} {PipelineVerbs.F(e.Score)}  {e.Start,5}-{e.End,-5} #{e.Index,-4} {e.Word}");
                }
            }
            else
            {
                var results = pipeline.Run(texts, strategy);
                for (int i = 0; i < texts.Count; i++)
                {
                    if (json) { output.WriteLine(PipelineJson.Serialize(results[i])); continue; }
                    if (texts.Count > 1) output.WriteLine($"[{i}] {texts[i]}");
                    foreach (var e in results[i]) output.WriteLine($"  {e.EntityGroup,-8} {PipelineVerbs.F(e.Score)}  {e.Start,5}-{e.End,-5} {e.Word}");
                }
            }
            return 0;
        });
        return cmd;
    }
}
