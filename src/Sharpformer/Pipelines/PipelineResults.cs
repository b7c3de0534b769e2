namespace Sharpformer.Pipelines;

/// <summary>One class label and its score (HF text-classification <c>{"label", "score"}</c>).</summary>
public sealed record LabelScore(string Label, float Score);

/// <summary>
/// A token-classification entity after aggregation (HF <c>{"entity_group", "score", "word", "start", "end"}</c>).
/// </summary>
/// <remarks>Start/End are UTF-16 indices into the original text: <c>text[Start..End]</c> is the entity's span.</remarks>
public sealed record TokenEntity(string EntityGroup, float Score, string Word, int Start, int End);

/// <summary>
/// One token's prediction with <see cref="AggregationStrategy.None"/> (HF <c>{"entity", "score", "index", "word", "start", "end"}</c>).
/// </summary>
/// <remarks>Index is the token position including [CLS]; Start/End are UTF-16 indices into the original text.</remarks>
public sealed record TokenPrediction(string Entity, float Score, int Index, string Word, int Start, int End);

/// <summary>One fill-mask candidate (HF <c>{"score", "token", "token_str", "sequence"}</c>).</summary>
public sealed record FillMaskCandidate(float Score, int Token, string TokenStr, string Sequence);

/// <summary>How token scores are merged into entities, exactly as transformers 4.30 <c>AggregationStrategy</c>.</summary>
public enum AggregationStrategy
{
    /// <summary>Every non-ignored token on its own, with its argmax label.</summary>
    None,
    /// <summary>Tokens grouped by B-/I- tags; no notion of words.</summary>
    Simple,
    /// <summary>Each word takes the label of its first piece; then grouped.</summary>
    First,
    /// <summary>Each word takes the argmax of its pieces' mean score vector; then grouped.</summary>
    Average,
    /// <summary>Each word takes the label of its piece with the highest score; then grouped.</summary>
    Max,
}

/// <summary>The function applied to sequence-classification logits (HF <c>ClassificationFunction</c>).</summary>
public enum ClassificationFunction
{
    /// <summary>HF's default: sigmoid for multi-label or one-label models, softmax otherwise.</summary>
    Default,
    Softmax,
    Sigmoid,
    /// <summary>Raw logits.</summary>
    None,
}

/// <summary>How <see cref="FeatureExtractionPipeline"/> turns token states into one vector.</summary>
public enum Pooling
{
    /// <summary>The hidden state of the first token ([CLS]).</summary>
    Cls,
    /// <summary>BERT's pooler output tanh(W·h_[CLS] + b); needs a checkpoint with a pooler.</summary>
    Pooled,
    /// <summary>Mean of the hidden states over positions with attention mask 1 (special tokens included, as sentence-transformers does).</summary>
    MaskedMean,
    /// <summary>The hidden state of the last position with attention mask 1 — for a causal model (GPT-2) the only one that has
    /// seen the whole text, the token GPT2ForSequenceClassification reads (right padding assumed).</summary>
    LastToken,
}

/// <summary>Raised when an input was cut to the model's maximum length; the result covers only the kept part.</summary>
/// <param name="InputIndex">Position of the input in the call's batch.</param>
/// <param name="TokenCount">Tokens the input needed, specials included.</param>
/// <param name="MaxLength">Tokens the model accepts.</param>
public sealed record TruncationWarning(int InputIndex, int TokenCount, int MaxLength);

/// <summary>Bad pipeline input: empty text, text too long, unknown target, a missing [MASK], …</summary>
public sealed class PipelineInputException : SharpformerException
{
    public PipelineInputException(string message) : base(message) { }
}
