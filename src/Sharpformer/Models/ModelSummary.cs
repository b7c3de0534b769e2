using Sharpformer.Nn;

namespace Sharpformer.Models;

/// <summary>Keras-style summaries of pretrained models.</summary>
public static class ModelSummary
{
    /// <summary>
    /// Runs one probe batch [1, <paramref name="sequenceLength"/>] of [CLS]-like ids through the module path (eval mode, so no
    /// dropout) while forward hooks note every layer's output shape, then tabulates layers to <paramref name="maxDepth"/>.
    /// </summary>
    public static ModuleSummary Of(PretrainedModel model, int maxDepth = 3, int sequenceLength = 8)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (sequenceLength < 1) throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength, "The probe sequence length must be at least 1.");
        var input = new EncoderInput(Enumerable.Range(0, sequenceLength).Select(i => i % model.VocabSize).ToArray(), 1, sequenceLength);
        bool wasTraining = model.Training;
        model.Eval();
        // Recording stays on: the module path calls every layer's forward; the fast path (no-grad inference) would bypass them.
        try { return model.Summary(() => model.Run(input), maxDepth); }
        finally { model.Train(wasTraining); }
    }

    /// <summary>
    /// The seed transformer's parameters as a table grouped by their dotted names (embeddings, block.attention, …, classifier)
    /// to <paramref name="maxDepth"/>; output shapes are those of a [1, sequence_length] input.
    /// </summary>
    public static ModuleSummary Of(SeedTransformer model, int maxDepth = 3)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        int[] tokens = [1, c.SequenceLength, c.EmbedDim];
        var outputs = new Dictionary<string, int[]>
        {
            [""] = [1, c.NumLabels], ["embeddings"] = tokens, ["block"] = tokens, ["block.attention"] = tokens, ["block.ffn"] = tokens,
            ["classifier"] = [1, c.NumLabels], ["classifier.dense"] = [1, c.DenseDim], ["classifier.output"] = [1, c.NumLabels],
        };
        // Every proper prefix of a parameter name is a layer; a row at the depth limit (or a leaf layer) counts its whole subtree.
        var layers = new SortedSet<string>(StringComparer.Ordinal) { "" };
        foreach (var p in model.Parameters)
        {
            var parts = p.Name.Split('.');
            for (int d = 1; d < parts.Length; d++) layers.Add(string.Join('.', parts[..d]));
        }
        static int Depth(string name) => name.Length == 0 ? 0 : name.Count(ch => ch == '.') + 1;
        static bool Under(string name, string layer) => layer.Length == 0 || name.StartsWith(layer + ".", StringComparison.Ordinal);
        var rows = new List<SummaryRow>();
        foreach (var layer in layers.Where(l => Depth(l) <= maxDepth).OrderBy(l => model.Parameters.ToList().FindIndex(p => Under(p.Name, l))))
        {
            bool leafRow = Depth(layer) == maxDepth || !layers.Any(l => Depth(l) == Depth(layer) + 1 && Under(l, layer));
            var ps = model.Parameters.Where(p => Under(p.Name, layer) && (leafRow || Depth(p.Name) == Depth(layer) + 1)).ToList();
            long count = ps.Sum(p => (long)p.Size);
            string type = layer.Length == 0 ? nameof(SeedTransformer) : layer.EndsWith("norm", StringComparison.Ordinal) ? "LayerNorm"
                : layer.StartsWith("embeddings.", StringComparison.Ordinal) ? "Embedding" : leafRow && ps.Count > 0 ? "Dense" : "Block";
            rows.Add(new SummaryRow(layer, type, Depth(layer), outputs.GetValueOrDefault(layer),
                ps.Select(p => (p.Name[(layer.Length == 0 ? 0 : layer.Length + 1)..], p.Shape)).ToList(), count, count));
        }
        return new ModuleSummary(rows, model.ParameterCount, model.ParameterCount);
    }
}
