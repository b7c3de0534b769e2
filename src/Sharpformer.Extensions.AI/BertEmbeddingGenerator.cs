using Microsoft.Extensions.AI;
using Sharpformer.Pipelines;

namespace Sharpformer.Extensions.AI;

/// <summary>
/// Microsoft.Extensions.AI <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over <see cref="FeatureExtractionPipeline"/>:
/// local BERT/DistilBERT sentence embeddings for .NET AI code (vector stores, semantic search, RAG).
/// </summary>
/// <remarks>
/// Vectors are the pipeline's pooled hidden states (masked mean by default) scaled to unit L2 norm unless configured
/// otherwise. Calls are serialized (a model runs one forward at a time) and run off the caller's thread.
/// </remarks>
public sealed class BertEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    readonly FeatureExtractionPipeline _pipeline;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly EmbeddingGeneratorMetadata _metadata;
    int _dimensions;

    public BertEmbeddingGenerator(FeatureExtractionPipeline pipeline, string modelId)
    {
        _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        ModelId = modelId;
        _metadata = new EmbeddingGeneratorMetadata("sharpformer", null, modelId, null);
    }

    /// <summary>Loads any BERT/DistilBERT checkpoint directory (or a cached hub id) as an embedding generator.</summary>
    public static BertEmbeddingGenerator FromPretrained(string modelDirOrId, Pooling pooling = Pooling.MaskedMean, bool normalize = true,
        PipelineOptions? options = null)
    {
        var pipeline = FeatureExtractionPipeline.FromPretrained(modelDirOrId, options, pooling, normalize);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDirOrId));
        return new BertEmbeddingGenerator(pipeline, string.IsNullOrEmpty(name) ? modelDirOrId : name);
    }

    public string ModelId { get; }

    /// <summary>Embeds each value; <see cref="EmbeddingGenerationOptions.Dimensions"/>, if given, must equal the model's width.</summary>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var texts = values.ToList();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() =>
            {
                var vectors = texts.Count == 0 ? [] : _pipeline.Run(texts, cancellationToken);
                if (vectors.Count > 0) _dimensions = vectors[0].Length;
                if (options?.Dimensions is int d && vectors.Count > 0 && d != _dimensions)
                    throw new NotSupportedException($"the model {ModelId} produces {_dimensions}-dimensional embeddings; {d} dimensions were requested.");
                var now = DateTimeOffset.UtcNow;
                var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = ModelId, CreatedAt = now }));
                long tokens = texts.Sum(t => (long)_pipeline.CountTokens(t));
                result.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
                return result;
            }, cancellationToken).ConfigureAwait(false);
        }
        finally { _gate.Release(); }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_pipeline)) return _pipeline;
        return null;
    }

    public void Dispose() => _gate.Dispose();
}
