using System.CommandLine;
using System.Globalization;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer embed --model DIR [--pooling mean|cls|pooled] [--normalize] texts…</c>.</summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var cmd = new Command("embed", "Sentence embeddings from an encoder (feature extraction with pooling).");
        var v = PipelineVerbs.AddTo(cmd, Hub.ShippedTask.Features);
        var pooling = PipelineVerbs.PoolingOption("mean");
        var normalize = new Option<bool>("--normalize") { Description = "Scale each vector to unit L2 norm." };
        cmd.Options.Add(pooling); cmd.Options.Add(normalize);
        cmd.SetAction(r =>
        {
            var p = PipelineVerbs.ParsePooling(r.GetValue(pooling)!);
            var options = v.Options(r);
            var texts = v.ReadTexts(r);
            var pipeline = FeatureExtractionPipeline.FromPretrained(v.ModelPath(r), options, p, r.GetValue(normalize));
            PipelineVerbs.WarnOnTruncation(pipeline, r.InvocationConfiguration.Error);
            var output = r.InvocationConfiguration.Output;
            var vectors = pipeline.Run(texts);
            for (int i = 0; i < texts.Count; i++)
            {
                if (r.GetValue(v.Json)) output.WriteLine(PipelineJson.Serialize(vectors[i]));
                else output.WriteLine(string.Join(' ', vectors[i].Select(x => x.ToString("0.000000", CultureInfo.InvariantCulture))));
            }
            return 0;
        });
        return cmd;
    }
}
