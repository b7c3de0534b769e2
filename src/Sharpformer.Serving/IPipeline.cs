using Sharpformer.Pipelines;

namespace Sharpformer.Serving;

/// <summary>The task a server runs; one model serves one task.</summary>
public enum ServingTask { Classify, Ner, Embed, FillMask }

/// <summary>One text of a request with its per-request options (they may differ within a batch).</summary>
/// <param name="Text">The input text.</param>
/// <param name="TopK">classify: labels per text (null = 1); fill-mask: candidates per mask (null = 5).</param>
/// <param name="Aggregation">ner: the aggregation strategy (null = simple).</param>
public sealed record ServingItem(string Text, int? TopK = null, AggregationStrategy? Aggregation = null);

/// <summary>
/// What the server needs from a model: run a batch of texts for its task, count tokens, give attention maps.
/// Implementations must be safe to call from one batching thread plus concurrent <see cref="Attention"/> calls.
/// </summary>
public interface IPipeline
{
    ServingTask Task { get; }
    /// <summary>Name reported in responses ("model" fields).</summary>
    string ModelName { get; }
    /// <summary>
    /// Runs a batch. Result i belongs to item i: <c>IReadOnlyList&lt;LabelScore&gt;</c> (classify),
    /// <c>IReadOnlyList&lt;TokenEntity&gt;</c> or <c>IReadOnlyList&lt;TokenPrediction&gt;</c> (ner), <c>float[]</c> (embed),
    /// <c>IReadOnlyList&lt;IReadOnlyList&lt;FillMaskCandidate&gt;&gt;</c> (fill-mask, per mask).
    /// Throws <see cref="PipelineInputException"/> when an item is invalid.
    /// </summary>
    IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken);
    /// <summary>Word pieces of a text without specials (for usage accounting).</summary>
    int CountTokens(string text);
    /// <summary>Attention maps of one text, for the page's heatmap.</summary>
    AttentionMaps Attention(string text, CancellationToken cancellationToken);
}
