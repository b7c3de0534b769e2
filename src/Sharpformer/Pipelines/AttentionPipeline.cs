using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>The attention probabilities of every layer and head for one input, with its tokens.</summary>
/// <param name="Tokens">Token strings including [CLS]/[SEP].</param>
/// <param name="Layers">Encoder layers.</param>
/// <param name="Heads">Heads per layer.</param>
/// <param name="Data">[layer][head][query][key] row-major probabilities (each query row sums to 1).</param>
public sealed record AttentionMaps(IReadOnlyList<string> Tokens, int Layers, int Heads, float[] Data)
{
    public int Length => Tokens.Count;

    /// <summary>One head's [query, key] matrix.</summary>
    public float[,] Head(int layer, int head)
    {
        Check(layer, head);
        int n = Length;
        var m = new float[n, n];
        int o = (layer * Heads + head) * n * n;
        for (int q = 0; q < n; q++) for (int k = 0; k < n; k++) m[q, k] = Data[o + q * n + k];
        return m;
    }

    /// <summary>The mean over a layer's heads: A = (1/H) Σ_h A_h.</summary>
    public float[,] Average(int layer)
    {
        Check(layer, 0);
        int n = Length;
        var m = new float[n, n];
        for (int h = 0; h < Heads; h++)
        {
            var a = Head(layer, h);
            for (int q = 0; q < n; q++) for (int k = 0; k < n; k++) m[q, k] += a[q, k] / Heads;
        }
        return m;
    }

    void Check(int layer, int head)
    {
        if ((uint)layer >= (uint)Layers) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in [0, {Layers}).");
        if ((uint)head >= (uint)Heads) throw new ArgumentOutOfRangeException(nameof(head), head, $"head must be in [0, {Heads}).");
    }
}

/// <summary>Runs a model with attention outputs on one text (or pair) so the attention can be drawn.</summary>
public sealed class AttentionPipeline : Pipeline
{
    public AttentionPipeline(ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null)
        : base(tokenizer, model, options) { }

    /// <summary>Loads any BERT/DistilBERT checkpoint or saved seed model from a directory (or a cached hub id).</summary>
    public static AttentionPipeline FromPretrained(string modelDirOrId, PipelineOptions? options = null)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, PipelineTask.Attention, options?.Execution);
        return new AttentionPipeline(tokenizer, model, options);
    }

    /// <summary>Attention maps of one text (truncated to <see cref="Pipeline.MaxLength"/>, reported through <see cref="Pipeline.Truncated"/>).</summary>
    public AttentionMaps Run(string text, string? textPair = null, CancellationToken cancellationToken = default)
    {
        Validate(text, 0);
        if (textPair is not null) Validate(textPair, 0, "text_pair");
        var encoding = Encode(text, textPair, 0);
        // Only a tokenizer without special tokens (the seed model's) can leave nothing to draw.
        if (encoding.Length == 0) throw new PipelineInputException("input 0: the text has no tokens after standardization (lowercase, punctuation stripped).");
        var output = Model.Forward(Collate([encoding]), new ForwardRequest(Attentions: true), cancellationToken);
        var att = output.Attentions ?? throw new NotSupportedException("this model does not return attention probabilities.");
        int n = encoding.Length, heads = Model.Info.Heads;
        var data = new float[att.Count * heads * n * n];
        for (int l = 0; l < att.Count; l++)
        {
            if (att[l].Length != heads * n * n)
                throw new InvalidOperationException($"layer {l} attention has {att[l].Length} values; expected 1×{heads}×{n}×{n}.");
            att[l].CopyTo(data, l * heads * n * n);
        }
        return new AttentionMaps([.. encoding.Tokens], att.Count, heads, data);
    }
}
