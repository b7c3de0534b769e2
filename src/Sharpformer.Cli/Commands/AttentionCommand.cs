using System.CommandLine;
using Sharpformer.Pipelines;
using Sharpformer.Training.Workflows;
using Sharpformer.Visualization;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer attention --model DIR "text" [--layer L] [--head H | --average | --all-heads] --out file.svg|file.html</c>:
/// draws the model's attention probabilities. For a G2P model (<c>train seq2seq</c> output) the text is a word and the picture is
/// its alignment, letters × phonemes, as in Bahdanau et al.'s Figure 3.
/// </summary>
internal static class AttentionCommand
{
    public static Command Create()
    {
        var cmd = new Command("attention", "Draw a model's attention for a text as an SVG heatmap or an HTML page with a layer/head switcher.");
        var model = new Option<string>("--model") { Description = "Model directory or Hub model id in the local cache (any BERT/DistilBERT checkpoint, a saved seed model, or a G2P model).", Required = true };
        var text = new Argument<string>("text") { Description = "The text to run (for a G2P model: one word)." };
        var layer = new Option<int?>("--layer") { Description = "Layer to draw (default: the last one)." };
        var head = new Option<int?>("--head") { Description = "Head to draw." };
        var average = new Option<bool>("--average") { Description = "Draw the mean over the layer's heads (the default)." };
        var allHeads = new Option<bool>("--all-heads") { Description = "Draw every head of the layer side by side." };
        var output = new Option<string>("--out") { Description = "Output file: .svg (one picture) or .html (interactive page with every layer and head).", Required = true };
        var threads = ThreadsOption.Create();
        cmd.Arguments.Add(text);
        foreach (var o in new Option[] { model, layer, head, average, allHeads, output, threads }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var execution = ThreadsOption.Read(r, threads);
            if (G2PTraining.IsModelDirectory(r.GetValue(model)!))
            {
                if (r.GetValue(layer) is not null || r.GetValue(head) is not null || r.GetValue(average) || r.GetValue(allHeads))
                    throw new ArgumentException("--layer, --head, --average and --all-heads apply to transformer attention; a G2P model has one alignment per word.");
                using var scope = Tensors.ExecutionScope.Enter(execution);
                return WriteAlignment(r.GetValue(model)!, r.GetValue(text)!, r.GetValue(output)!, r.InvocationConfiguration.Output);
            }
            // Any BERT/DistilBERT checkpoint or saved seed model (sharpformer train seed-agnews): the loader picks the backend.
            var maps = AttentionPipeline.FromPretrained(r.GetValue(model)!, new PipelineOptions { Execution = execution }).Run(r.GetValue(text)!);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(r.GetValue(model)!));
            return Write(maps, name, r.GetValue(layer), r.GetValue(head), r.GetValue(average), r.GetValue(allHeads), r.GetValue(output)!, r.InvocationConfiguration.Output);
        });
        return cmd;
    }

    const string AlignmentNote = "Rows are the output phonemes (and the end symbol), columns the letters of the word: row t is the attention of output step t over the letters.";

    /// <summary>The alignment of a word's best pronunciation (beam search) as an .svg or .html file.</summary>
    static int WriteAlignment(string modelDir, string word, string outPath, TextWriter output)
    {
        if (string.IsNullOrWhiteSpace(word) || word.Any(char.IsWhiteSpace)) throw new ArgumentException($"a G2P model pronounces one word; '{word}' is not one.");
        var (model, vocab) = G2PTraining.Load(modelDir);
        var a = G2PTraining.Predict(model, vocab, [word])[0].Alignment();
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDir));
        string title = $"{name}: {word} → {string.Join(' ', a.Outputs.Where(o => o != "</s>"))}";
        var ext = Path.GetExtension(outPath).ToLowerInvariant();
        string content = ext switch
        {
            ".html" or ".htm" => AttentionHtml.Render(a.Outputs, a.Letters, 1, 1, a.Weights.Cast<float>().ToArray(), title, 0, 0, AlignmentNote),
            ".svg" => AttentionSvg.Heatmap(a.Weights, a.Outputs, a.Letters, title, "attention weight (row = output phoneme, column = letter)"),
            _ => throw new ArgumentException($"--out {outPath}: use a .svg or .html file name."),
        };
        VisualizationFile.WriteAllText(outPath, content);
        output.WriteLine($"wrote {outPath} ({a.Letters.Length} letters × {a.Outputs.Length} output steps)");
        return 0;
    }

    /// <summary>Renders <paramref name="maps"/> to an .svg or .html file (shared with the seed-model path).</summary>
    internal static int Write(AttentionMaps maps, string modelName, int? layerOpt, int? headOpt, bool average, bool allHeads, string outPath, TextWriter output)
    {
        if ((headOpt is not null ? 1 : 0) + (average ? 1 : 0) + (allHeads ? 1 : 0) > 1)
            throw new ArgumentException("choose one of --head H, --average, --all-heads.");
        int layer = layerOpt ?? maps.Layers - 1;
        if (layer < 0 || layer >= maps.Layers) throw new ArgumentException($"--layer {layer} is out of range; the model has layers 0..{maps.Layers - 1}.");
        if (headOpt is int h && (h < 0 || h >= maps.Heads)) throw new ArgumentException($"--head {h} is out of range; the model has heads 0..{maps.Heads - 1}.");
        var ext = Path.GetExtension(outPath).ToLowerInvariant();
        string content;
        if (ext == ".html" || ext == ".htm")
            content = AttentionHtml.Render(maps.Tokens, maps.Layers, maps.Heads, maps.Data, $"{modelName}: attention", layer, allHeads ? -2 : headOpt ?? -1);
        else if (ext == ".svg")
        {
            if (allHeads)
            {
                var heads = Enumerable.Range(0, maps.Heads).ToList();
                content = AttentionSvg.Grid(heads.Select(x => maps.Head(layer, x)).ToList(), heads.Select(x => $"layer {layer}, head {x}").ToList(), maps.Tokens);
            }
            else if (headOpt is int hh) content = AttentionSvg.Heatmap(maps.Head(layer, hh), maps.Tokens, $"{modelName}: layer {layer}, head {hh}");
            else content = AttentionSvg.Heatmap(maps.Average(layer), maps.Tokens, $"{modelName}: layer {layer}, average of {maps.Heads} heads");
        }
        else throw new ArgumentException($"--out {outPath}: use a .svg or .html file name.");
        VisualizationFile.WriteAllText(outPath, content);
        output.WriteLine($"wrote {outPath} ({maps.Tokens.Count} tokens, {maps.Layers} layers × {maps.Heads} heads)");
        return 0;
    }
}
