using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// A batch of tokenised sequences, row-major [BatchSize, SequenceLength], as a tokenizer call with
/// <c>return_tensors="pt"</c> produces: <c>input_ids</c>, optional <c>token_type_ids</c> (default all 0) and optional
/// <c>attention_mask</c> (1 = real token, 0 = padding; default all 1).
/// </summary>
public sealed record EncoderInput
{
    public EncoderInput(int[] inputIds, int batchSize, int sequenceLength, int[]? tokenTypeIds = null, int[]? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (batchSize < 1 || sequenceLength < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size ({batchSize}) and sequence length ({sequenceLength}) must be at least 1.");
        long n = (long)batchSize * sequenceLength;
        if (inputIds.Length != n) throw new ArgumentException($"input_ids holds {inputIds.Length} ids, but batch {batchSize} × sequence {sequenceLength} needs {n}.", nameof(inputIds));
        if (tokenTypeIds != null && tokenTypeIds.Length != n) throw new ArgumentException($"token_type_ids holds {tokenTypeIds.Length} ids; {n} expected (batch {batchSize} × sequence {sequenceLength}).", nameof(tokenTypeIds));
        if (attentionMask != null)
        {
            if (attentionMask.Length != n) throw new ArgumentException($"attention_mask holds {attentionMask.Length} values; {n} expected (batch {batchSize} × sequence {sequenceLength}).", nameof(attentionMask));
            for (int i = 0; i < attentionMask.Length; i++)
                if (attentionMask[i] is not (0 or 1))
                    throw new ArgumentException($"attention_mask[{i / sequenceLength}][{i % sequenceLength}] is {attentionMask[i]}; only 0 (padding) and 1 (token) are allowed.", nameof(attentionMask));
        }
        InputIds = inputIds; BatchSize = batchSize; SequenceLength = sequenceLength; TokenTypeIds = tokenTypeIds; AttentionMask = attentionMask;
    }

    /// <summary>Builds a batch from equal-length rows (pad them first).</summary>
    public static EncoderInput FromRows(IReadOnlyList<IReadOnlyList<int>> inputIds,
        IReadOnlyList<IReadOnlyList<int>>? tokenTypeIds = null, IReadOnlyList<IReadOnlyList<int>>? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Count == 0) throw new ArgumentException("The batch is empty.", nameof(inputIds));
        int seq = inputIds[0].Count;
        return new EncoderInput(Flatten(inputIds, seq, "input_ids")!, inputIds.Count, seq,
            Flatten(tokenTypeIds, seq, "token_type_ids"), Flatten(attentionMask, seq, "attention_mask"));
    }

    static int[]? Flatten(IReadOnlyList<IReadOnlyList<int>>? rows, int seq, string field)
    {
        if (rows == null) return null;
        var flat = new int[rows.Count * seq];
        for (int r = 0; r < rows.Count; r++)
        {
            if (rows[r].Count != seq) throw new ArgumentException($"{field} row {r} has {rows[r].Count} ids but row 0 has {seq}; pad the batch to one length.");
            for (int j = 0; j < seq; j++) flat[r * seq + j] = rows[r][j];
        }
        return flat;
    }

    public int[] InputIds { get; }
    public int BatchSize { get; }
    public int SequenceLength { get; }
    public int[]? TokenTypeIds { get; }
    public int[]? AttentionMask { get; }
    public int TokenCount => BatchSize * SequenceLength;
}

/// <summary>What a forward returns beyond the last hidden state (HF's <c>output_hidden_states</c> / <c>output_attentions</c>).</summary>
public sealed record ForwardOptions(bool OutputHiddenStates = false, bool OutputAttentions = false)
{
    public static ForwardOptions Default { get; } = new();
    public static ForwardOptions All { get; } = new(true, true);

    /// <summary>When set, the inference fast path adds its time per operation kind to it (bench <c>infer --profile</c>).</summary>
    public EncoderProfile? Profile { get; init; }
}

/// <summary>
/// Output of a bare encoder (BertModel / DistilBertModel).
/// </summary>
/// <param name="LastHiddenState">[batch, seq, hidden].</param>
/// <param name="PoolerOutput">[batch, hidden] = tanh(W·h[:,0] + b), BERT with a pooler only.</param>
/// <param name="HiddenStates">When requested: layers+1 tensors [batch, seq, hidden]; [0] is the embeddings output.</param>
/// <param name="Attentions">When requested: one [batch, heads, seq, seq] softmax-probability tensor per layer.</param>
public sealed record EncoderOutput(Tensor LastHiddenState, Tensor? PoolerOutput, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>What <see cref="PretrainedModel.Run"/> returns for any model.</summary>
/// <param name="Logits">Null for a bare encoder; [batch, numLabels] (sequence classification), [batch, seq, numLabels] (token
/// classification) or [batch, seq, vocab] (masked LM).</param>
/// <param name="Loss">A scalar when labels were given.</param>
/// <param name="Encoder">The encoder's outputs (hidden states, pooler, attentions as requested).</param>
public sealed record ModelOutput(Tensor? Logits, Tensor? Loss, EncoderOutput Encoder);

/// <summary>The loss a sequence classifier uses, as HF's <c>config.problem_type</c>.</summary>
public enum ProblemType
{
    /// <summary>"single_label_classification": cross-entropy over class ids.</summary>
    SingleLabelClassification,
    /// <summary>"multi_label_classification": BCE-with-logits over a [batch, numLabels] 0/1 target.</summary>
    MultiLabelClassification,
    /// <summary>"regression": mean squared error.</summary>
    Regression,
}

/// <summary>Labels for a head: class ids (integer labels in HF; one per sequence, or one per token with −100 ignored) or float targets.</summary>
public abstract record SequenceLabels
{
    private SequenceLabels() { }

    /// <summary>One class id per sequence (HF: a long tensor) — single-label classification unless config says otherwise.</summary>
    public sealed record ClassIds(int[] Ids) : SequenceLabels;

    /// <summary>
    /// Float targets (HF: a float tensor): [batch] for regression with one label, [batch, numLabels] for regression with
    /// several outputs or multi-label 0/1 targets.
    /// </summary>
    public sealed record Values(float[] Targets) : SequenceLabels;

    public static SequenceLabels FromIds(params int[] ids) => new ClassIds(ids);
    public static SequenceLabels FromValues(params float[] targets) => new Values(targets);
}
