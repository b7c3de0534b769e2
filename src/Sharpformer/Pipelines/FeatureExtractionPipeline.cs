using Sharpformer.Data;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>Sentence embeddings from an encoder (HF <c>pipeline("feature-extraction")</c> plus pooling).</summary>
public sealed class FeatureExtractionPipeline : Pipeline
{
    public FeatureExtractionPipeline(ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null,
        Pooling pooling = Pooling.MaskedMean, bool normalize = false)
        : base(tokenizer, model, options)
    {
        Pooling = pooling; Normalize = normalize;
    }

    /// <summary>Loads an encoder (any BERT/DistilBERT checkpoint; heads are ignored) from a directory (or a cached hub id).</summary>
    public static FeatureExtractionPipeline FromPretrained(string modelDirOrId, PipelineOptions? options = null,
        Pooling pooling = Pooling.MaskedMean, bool normalize = false)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, PipelineTask.FeatureExtraction, options?.Execution);
        return new FeatureExtractionPipeline(tokenizer, model, options, pooling, normalize);
    }

    public Pooling Pooling { get; }
    /// <summary>Whether vectors are scaled to unit L2 norm.</summary>
    public bool Normalize { get; }

    /// <summary>One vector per text; element i is what <c>Run(texts[i])</c> returns.</summary>
    /// <remarks>With <see cref="Normalize"/>: v / max(‖v‖₂, 1e-12).</remarks>
    public IReadOnlyList<float[]> Run(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        for (int i = 0; i < texts.Count; i++) Validate(texts[i], i);
        var results = new float[texts.Count][];
        ForEachChunk(texts.Count, (start, count) =>
        {
            var batch = Collate(Enumerable.Range(start, count).Select(i => Encode(texts[i], null, i)).ToList());
            var output = Model.Forward(batch, new ForwardRequest(HiddenStates: true), cancellationToken);
            for (int r = 0; r < count; r++)
            {
                var v = Pool(Pooling, output, batch, r);
                if (Normalize) L2Normalize(v);
                results[start + r] = v;
            }
        }, cancellationToken);
        return results;
    }

    /// <summary>The vector of batch row <paramref name="row"/>: the one pooling of token states every feature extractor uses.</summary>
    /// <remarks>
    /// Cls: h₀; Pooled: BERT pooler tanh(W·h₀ + b); MaskedMean: Σ_t m_t·h_t / Σ_t m_t over the attention mask m (special
    /// tokens included), accumulated in double.
    /// </remarks>
    public static float[] Pool(Pooling pooling, PipelineModelOutput output, CollatedBatch batch, int row)
    {
        int h = output.HiddenSize, s = batch.Seq;
        if (pooling == Pooling.Pooled)
            return (output.PooledOutput ?? throw new NotSupportedException("this checkpoint has no pooler (bert.pooler.*); use Pooling.Cls or Pooling.MaskedMean."))
                .AsSpan(row * h, h).ToArray();
        var hidden = output.LastHiddenState ?? throw new InvalidOperationException("the model returned no hidden states.");
        if (pooling == Pooling.Cls) return hidden.AsSpan(row * s * h, h).ToArray();
        if (pooling == Pooling.LastToken)
        {
            int last = s - 1;
            while (last > 0 && batch.AttentionMask[row * s + last] == 0) last--;
            return hidden.AsSpan((row * s + last) * h, h).ToArray();
        }
        var sum = new double[h];
        int m = 0;
        for (int t = 0; t < s; t++)
        {
            if (batch.AttentionMask[row * s + t] == 0) continue;
            m++;
            var x = hidden.AsSpan((row * s + t) * h, h);
            for (int j = 0; j < h; j++) sum[j] += x[j];
        }
        var v = new float[h];
        for (int j = 0; j < h; j++) v[j] = (float)(sum[j] / Math.Max(1, m));
        return v;
    }

    /// <summary>Embedding of one text.</summary>
    public float[] Run(string text, CancellationToken cancellationToken = default) => Run([text], cancellationToken)[0];

    /// <summary>Vector length.</summary>
    public int Dimensions(CancellationToken cancellationToken = default) => Run(["a"], cancellationToken)[0].Length;

    /// <summary>v ← v / max(‖v‖₂, 1e-12) (torch.nn.functional.normalize).</summary>
    public static void L2Normalize(Span<float> v)
    {
        double sq = 0;
        foreach (var x in v) sq += (double)x * x;
        float inv = (float)(1.0 / Math.Max(Math.Sqrt(sq), 1e-12));
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }
}
