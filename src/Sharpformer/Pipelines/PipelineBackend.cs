using Sharpformer.Data;

namespace Sharpformer.Pipelines;

/// <summary>Facts about a loaded model the pipelines need.</summary>
/// <param name="ModelType">"bert", "distilbert", …</param>
/// <param name="MaxPositions">max_position_embeddings: the longest sequence the model accepts.</param>
/// <param name="Id2Label">Class labels by id (empty for base and MLM models).</param>
/// <param name="ProblemType">config problem_type ("single_label_classification", "multi_label_classification", "regression") or null.</param>
/// <param name="UsesTokenTypeIds">False for DistilBERT.</param>
/// <param name="Layers">Encoder layers.</param>
/// <param name="Heads">Attention heads per layer.</param>
public sealed record PipelineModelInfo(string ModelType, int MaxPositions, IReadOnlyList<string> Id2Label, string? ProblemType,
    bool UsesTokenTypeIds, int Layers, int Heads);

/// <summary>What one forward pass returns, as plain row-major arrays.</summary>
/// <param name="Logits">Head output: [B, C] (sequence), [B, S, C] (token / MLM); null for a base model.</param>
/// <param name="LogitsShape">Shape of <paramref name="Logits"/>.</param>
/// <param name="LastHiddenState">[B, S, H] when requested (<see cref="ForwardRequest.HiddenStates"/>) or for a base model.</param>
/// <param name="HiddenSize">H.</param>
/// <param name="PooledOutput">[B, H] BERT pooler output when the model has one.</param>
/// <param name="Attentions">Per layer [B, heads, S, S] softmax probabilities when requested.</param>
public sealed record PipelineModelOutput(float[]? Logits, int[] LogitsShape, float[]? LastHiddenState, int HiddenSize,
    float[]? PooledOutput, IReadOnlyList<float[]>? Attentions);

/// <summary>What a pipeline asks of a forward pass.</summary>
public sealed record ForwardRequest(bool HiddenStates = false, bool Attentions = false);

/// <summary>The model services the pipelines use; adapters over Sharpformer.Models implement it.</summary>
public interface IPipelineModel
{
    PipelineModelInfo Info { get; }
    /// <summary>Runs the model in inference mode (no dropout, no gradients).</summary>
    PipelineModelOutput Forward(CollatedBatch batch, ForwardRequest request, CancellationToken cancellationToken = default);
}
