using Sharpformer.Pipelines;
using Sharpformer.Models;

namespace Sharpformer.Serving;

/// <summary>The task a server runs; one model serves one task.</summary>
public enum ServingTask { Classify, Ner, Embed, FillMask, Generate, G2P }

/// <summary>One text of a request with its per-request options (they may differ within a batch).</summary>
/// <param name="Text">The input text.</param>
/// <param name="TopK">classify: labels per text (null = 1); fill-mask: candidates per mask (null = 5); g2p: pronunciations per word (null = 1).</param>
/// <param name="Aggregation">ner: the aggregation strategy (null = simple).</param>
/// <param name="Alignment">g2p: also return the attention alignment of the best pronunciation.</param>
public sealed record ServingItem(string Text, int? TopK = null, AggregationStrategy? Aggregation = null, bool Alignment = false);

/// <summary>
/// What the server needs from a model: check and run a batch of texts for its task, count tokens, give attention maps.
/// <see cref="RunBatch"/> and <see cref="Attention"/> are called from the one batching thread; <see cref="Validate"/> and
/// <see cref="CountTokens"/> from request threads, concurrently with it.
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
    /// Throws <see cref="PipelineInputException"/> when an item is invalid, <see cref="NonFiniteOutputException"/> when the
    /// model's output for an item is NaN or infinite.
    /// </summary>
    IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken);
    /// <summary>
    /// Checks item <paramref name="index"/> of a request before it is queued, so a bad input is rejected on its own instead
    /// of failing (and re-running) a whole batch, and returns its cost in tokens (specials included) for the server's
    /// token budget. Throws <see cref="PipelineInputException"/> when <see cref="RunBatch"/> would reject the item.
    /// </summary>
    int Validate(ServingItem item, int index);
    /// <summary>Word pieces of a text without specials (for usage accounting).</summary>
    int CountTokens(string text);
    /// <summary>Attention maps of one text, for the page's heatmap.</summary>
    AttentionMaps Attention(string text, CancellationToken cancellationToken);
}
