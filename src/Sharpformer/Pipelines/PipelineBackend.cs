namespace Sharpformer.Pipelines;

/// <summary>
/// A text cut into word pieces without special tokens: what the pipelines need from a tokenizer.
/// </summary>
/// <param name="Ids">Vocabulary ids.</param>
/// <param name="Tokens">The piece strings (continuation pieces carry their "##" prefix).</param>
/// <param name="Starts">UTF-16 start of each piece in the original text.</param>
/// <param name="Ends">UTF-16 end (exclusive) of each piece in the original text.</param>
/// <param name="WordIds">Index of the pre-tokenized word each piece came from.</param>
public sealed record TokenizedText(int[] Ids, string[] Tokens, int[] Starts, int[] Ends, int[] WordIds)
{
    public int Count => Ids.Length;
}

/// <summary>The tokenizer services the pipelines use (a WordPiece tokenizer with offsets into the original text).</summary>
public interface IPipelineTokenizer
{
    /// <summary>Pieces of <paramref name="text"/>, no special tokens, offsets into <paramref name="text"/>.</summary>
    TokenizedText Tokenize(string text);
    /// <summary>The piece string of a vocabulary id.</summary>
    string IdToToken(int id);
    /// <summary>The id of a piece string, or false when it is not in the vocabulary.</summary>
    bool TryGetId(string token, out int id);
    int ClsId { get; }
    int SepId { get; }
    int PadId { get; }
    int UnkId { get; }
    /// <summary>The [MASK] id, or -1 when the vocabulary has none.</summary>
    int MaskId { get; }
    /// <summary>Ids that are special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]).</summary>
    IReadOnlySet<int> SpecialIds { get; }
    int VocabSize { get; }
}

/// <summary>A padded batch of encoded inputs, row-major [Batch, SeqLen].</summary>
public sealed class EncodedBatch
{
    public EncodedBatch(int batch, int seqLen)
    {
        if (batch <= 0 || seqLen <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} × seqLen {seqLen} must be positive.");
        Batch = batch; SeqLen = seqLen;
        InputIds = new int[batch * seqLen]; TokenTypeIds = new int[batch * seqLen]; AttentionMask = new int[batch * seqLen];
    }
    public int Batch { get; }
    public int SeqLen { get; }
    public int[] InputIds { get; }
    public int[] TokenTypeIds { get; }
    public int[] AttentionMask { get; }
}

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
    PipelineModelOutput Forward(EncodedBatch batch, ForwardRequest request, CancellationToken cancellationToken = default);
}
