using Sharpformer.Data;

namespace Sharpformer.Training;

/// <summary>
/// Packed blocks of token ids (run_mlm / run_clm's <c>group_texts</c> output) as training examples: for a masked LM each
/// batch is masked afresh per epoch (<see cref="MaskedLanguageModeling"/>: example i of epoch e draws from (seed, e, i)),
/// for a causal LM the labels are the ids themselves (the model shifts them).
/// </summary>
/// <remarks>
/// Evaluation batches (<see cref="Collate(ReadOnlySpan{int})"/>) use epoch 0's masks, so a held-out set is scored on the
/// same masked positions at every evaluation. Every block has the same length: no padding, attention mask all ones,
/// token types 0.
/// </remarks>
public sealed class LanguageModelingData : ITrainingData<CollatedBatch>
{
    readonly IReadOnlyList<int[]> _blocks;
    readonly MaskedLanguageModeling? _masking;
    readonly ulong _seed;
    readonly PaddingCollator _collator = new(0);

    LanguageModelingData(IReadOnlyList<int[]> blocks, MaskedLanguageModeling? masking, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count > 0 && blocks.Any(b => b.Length != blocks[0].Length))
            throw new ArgumentException("Blocks differ in length; pack them with MaskedLanguageModeling.GroupTexts.", nameof(blocks));
        _blocks = blocks; _masking = masking; _seed = seed;
    }

    /// <summary>Masked-LM examples: <paramref name="blocks"/> masked by <paramref name="masking"/> with <paramref name="seed"/>.</summary>
    public static LanguageModelingData Masked(IReadOnlyList<int[]> blocks, MaskedLanguageModeling masking, ulong seed) =>
        new(blocks, masking ?? throw new ArgumentNullException(nameof(masking)), seed);

    /// <summary>Causal-LM examples: labels equal the ids of each block.</summary>
    public static LanguageModelingData Causal(IReadOnlyList<int[]> blocks) => new(blocks, null, 0);

    public int Count => _blocks.Count;

    /// <summary>Ids per block.</summary>
    public int BlockSize => _blocks.Count == 0 ? 0 : _blocks[0].Length;

    /// <summary>The packed blocks.</summary>
    public IReadOnlyList<int[]> Blocks => _blocks;

    public CollatedBatch Collate(ReadOnlySpan<int> indices) => Collate(indices, 0);

    public CollatedBatch Collate(ReadOnlySpan<int> indices, int epoch)
    {
        var sequences = new IReadOnlyList<int>[indices.Length];
        var index = new long[indices.Length];
        for (int i = 0; i < indices.Length; i++) { sequences[i] = _blocks[indices[i]]; index[i] = indices[i]; }
        if (_masking != null) return _masking.Collate(sequences, index, _seed, epoch, _collator);
        return _collator.Collate(sequences.Select(s => new EncodedExample(s, TokenLabels: s)).ToArray());
    }
}
