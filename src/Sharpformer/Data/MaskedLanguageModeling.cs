using Sharpformer.Tokenization;

namespace Sharpformer.Data;

/// <summary>Masking settings, named as transformers' <c>DataCollatorForLanguageModeling</c> / <c>DataCollatorForWholeWordMask</c>.</summary>
public sealed record MaskingOptions
{
    /// <summary>Chance that a (non-special, non-padding) token is selected for prediction (<c>mlm_probability</c>).</summary>
    public double Probability { get; init; } = 0.15;
    /// <summary>Chance that a selected token is replaced by [MASK] (<c>mask_replace_prob</c>).</summary>
    public double MaskReplaceProbability { get; init; } = 0.8;
    /// <summary>Chance that a selected token is replaced by a uniformly random vocabulary id (<c>random_replace_prob</c>); the rest stay unchanged.</summary>
    public double RandomReplaceProbability { get; init; } = 0.1;
    /// <summary>Select whole words (a token and its following "##" pieces) as <c>DataCollatorForWholeWordMask</c>.</summary>
    public bool WholeWord { get; init; }
    /// <summary>Whole-word masking selects at most this many tokens per sequence (HF <c>max_predictions</c>).</summary>
    public int MaxPredictions { get; init; } = 512;

    internal void Validate()
    {
        if (Probability is < 0 or > 1 || double.IsNaN(Probability)) throw new ArgumentOutOfRangeException(nameof(Probability), Probability, "Must be in [0, 1].");
        if (MaskReplaceProbability < 0 || RandomReplaceProbability < 0 || MaskReplaceProbability + RandomReplaceProbability > 1)
            throw new ArgumentOutOfRangeException(nameof(MaskReplaceProbability),
                $"MaskReplaceProbability ({MaskReplaceProbability}) and RandomReplaceProbability ({RandomReplaceProbability}) must be ≥ 0 with a sum ≤ 1.");
        if (MaxPredictions <= 0) throw new ArgumentOutOfRangeException(nameof(MaxPredictions), MaxPredictions, "Must be positive.");
    }
}

/// <summary>A sequence prepared for masked-language-model training: inputs after masking and labels (−100 where nothing is predicted).</summary>
public sealed record MaskedExample(int[] InputIds, int[] Labels)
{
    /// <summary>Number of positions with a label (the selected tokens).</summary>
    public int PredictedCount => Labels.Count(l => l != PaddingCollator.IgnoreIndex);
}

/// <summary>
/// Masked-language-model data as transformers' <c>run_mlm.py</c>: <see cref="GroupTexts(IEnumerable{IReadOnlyList{int}}, int)"/>
/// packs tokenized lines into fixed blocks, and <see cref="Mask"/> applies <c>DataCollatorForLanguageModeling</c>
/// (or, with <see cref="MaskingOptions.WholeWord"/>, <c>DataCollatorForWholeWordMask</c>) masking.
/// </summary>
/// <remarks>
/// Token masking (<c>torch_mask_tokens</c>): each token is selected with probability p (0 for special tokens and
/// padding); its label is its id, every other label is −100. A selected token becomes [MASK] with probability 0.8,
/// a uniformly random id in [0, vocabulary size) with probability 0.1 (specials included, as HF's
/// <c>randint(len(tokenizer))</c>), and stays itself otherwise.
/// <para>Whole-word masking (<c>_whole_word_mask</c>): words are a token plus its "##" continuations, [CLS]/[SEP]
/// excluded; words are shuffled and taken while the covered tokens stay ≤ min(MaxPredictions,
/// max(1, round(n·p))) with n the sequence length, skipping words that would overshoot; the selected tokens then get
/// the same 80/10/10 replacement (specials and padding never).</para>
/// <para>Dynamic masking: the mask of example i in epoch e is drawn from a generator seeded by (seed, e, i) only, so
/// it is the same whatever the batch order, thread count or resume point, and differs between epochs.</para>
/// </remarks>
public sealed class MaskedLanguageModeling
{
    readonly bool[] _special;
    readonly bool[] _continuation;
    readonly int _maskId, _vocabSize;
    readonly int? _padId, _clsId, _sepId;

    /// <param name="vocabSize">Ids are 0 … vocabSize − 1; random replacements are drawn from all of them.</param>
    /// <param name="maskTokenId">The [MASK] id.</param>
    /// <param name="specialTokenIds">Ids never selected ([CLS], [SEP], [PAD], [UNK], [MASK]).</param>
    /// <param name="padTokenId">Padding id (never selected), if any.</param>
    /// <param name="continuationIds">Ids of "##" pieces, for whole-word masking.</param>
    /// <param name="clsTokenId">[CLS] id: not part of any word in whole-word masking.</param>
    /// <param name="sepTokenId">[SEP] id: not part of any word in whole-word masking.</param>
    /// <param name="options">Probabilities and mode.</param>
    public MaskedLanguageModeling(int vocabSize, int maskTokenId, IEnumerable<int> specialTokenIds, int? padTokenId = null,
        IEnumerable<int>? continuationIds = null, int? clsTokenId = null, int? sepTokenId = null, MaskingOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        if ((uint)maskTokenId >= (uint)vocabSize) throw new ArgumentOutOfRangeException(nameof(maskTokenId), maskTokenId, $"Outside the vocabulary 0..{vocabSize - 1}.");
        Options = options ?? new MaskingOptions();
        Options.Validate();
        _vocabSize = vocabSize;
        _maskId = maskTokenId;
        _padId = padTokenId;
        _clsId = clsTokenId;
        _sepId = sepTokenId;
        _special = new bool[vocabSize];
        foreach (var id in specialTokenIds) _special[CheckId(id, nameof(specialTokenIds))] = true;
        _continuation = new bool[vocabSize];
        foreach (var id in continuationIds ?? []) _continuation[CheckId(id, nameof(continuationIds))] = true;
        if (Options.WholeWord && continuationIds is null)
            throw new ArgumentException("Whole-word masking needs the continuation (\"##\") ids.", nameof(continuationIds));
    }

    int CheckId(int id, string name) => (uint)id < (uint)_vocabSize ? id : throw new ArgumentOutOfRangeException(name, id, $"Outside the vocabulary 0..{_vocabSize - 1}.");

    /// <summary>Masking for a BERT tokenizer: its specials, [MASK], [PAD], [CLS], [SEP] and "##" pieces.</summary>
    public static MaskedLanguageModeling ForTokenizer(BertTokenizer tokenizer, MaskingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        int mask = tokenizer.MaskTokenId ?? throw new ArgumentException($"The tokenizer {tokenizer.Source} has no [MASK] token; masked-language-model data needs one.", nameof(tokenizer));
        var special = Enumerable.Range(0, tokenizer.VocabSize).Where(tokenizer.IsSpecialTokenId);
        var continuation = Enumerable.Range(0, tokenizer.VocabSize).Where(id => tokenizer.IdToToken(id)!.StartsWith("##", StringComparison.Ordinal));
        return new MaskedLanguageModeling(tokenizer.VocabSize, mask, special, tokenizer.PadTokenId, continuation,
            tokenizer.ClsTokenId, tokenizer.SepTokenId, options);
    }

    public MaskingOptions Options { get; }

    /// <summary>The generator for example <paramref name="exampleIndex"/> of epoch <paramref name="epoch"/> (SplitMix-mixed, so neighbouring indices are independent).</summary>
    static TrainingRandom ExampleRandom(ulong seed, int epoch, long exampleIndex)
    {
        ulong a = Mix(seed ^ 0x6D6C6D5F6D61736BUL) ^ (ulong)epoch;   // "mlm_mask"
        ulong b = Mix(a) ^ (ulong)exampleIndex;
        return new TrainingRandom(unchecked((long)Mix(b)));
    }

    // The first output of a generator seeded with x: a SplitMix-seeded xoshiro draw, so nearby inputs give unrelated outputs.
    static ulong Mix(ulong x) => new TrainingRandom(unchecked((long)x)).NextUInt64();

    /// <summary>Masks one sequence; the result depends only on the ids, <paramref name="seed"/>, <paramref name="epoch"/> and <paramref name="exampleIndex"/>.</summary>
    public MaskedExample Mask(IReadOnlyList<int> inputIds, ulong seed, int epoch, long exampleIndex)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        var rng = ExampleRandom(seed, epoch, exampleIndex);
        int n = inputIds.Count;
        var ids = new int[n];
        var labels = new int[n];
        for (int i = 0; i < n; i++) ids[i] = CheckId(inputIds[i], nameof(inputIds));
        Array.Fill(labels, PaddingCollator.IgnoreIndex);
        var selected = Options.WholeWord ? WholeWordSelection(ids, rng) : null;
        for (int i = 0; i < n; i++)
        {
            int id = ids[i];
            bool select = selected is null ? rng.NextDouble() < Options.Probability : selected[i];
            if (!select || _special[id] || id == _padId) continue;
            labels[i] = id;
            double r = rng.NextDouble();
            if (r < Options.MaskReplaceProbability) ids[i] = _maskId;
            else if (r < Options.MaskReplaceProbability + Options.RandomReplaceProbability) ids[i] = rng.Next(_vocabSize);
        }
        return new MaskedExample(ids, labels);
    }

    bool[] WholeWordSelection(int[] ids, TrainingRandom rng)
    {
        // As HF: a "##" piece joins the last word even across a skipped [CLS]/[SEP]; the first piece of a block starts one.
        var words = new List<List<int>>();
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] == _clsId || ids[i] == _sepId) continue;
            if (_continuation[ids[i]] && words.Count > 0) words[^1].Add(i);
            else words.Add([i]);
        }
        var order = words.ToArray();
        rng.FisherYates(order.AsSpan());
        int budget = Math.Min(Options.MaxPredictions, Math.Max(1, (int)Math.Round(ids.Length * Options.Probability, MidpointRounding.ToEven)));
        var selected = new bool[ids.Length];
        int covered = 0;
        foreach (var word in order)
        {
            if (covered >= budget) break;
            if (covered + word.Count > budget) continue;
            foreach (int k in word) selected[k] = true;
            covered += word.Count;
        }
        return selected;
    }

    /// <summary>
    /// Masks and pads a batch (labels padded with −100) through <paramref name="collator"/>; example b uses index
    /// <paramref name="exampleIndices"/>[b] for its generator.
    /// </summary>
    public CollatedBatch Collate(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlyList<long> exampleIndices, ulong seed, int epoch, PaddingCollator collator)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(exampleIndices);
        ArgumentNullException.ThrowIfNull(collator);
        if (sequences.Count != exampleIndices.Count)
            throw new ArgumentException($"{sequences.Count} sequences but {exampleIndices.Count} example indices.", nameof(exampleIndices));
        var examples = new EncodedExample[sequences.Count];
        for (int b = 0; b < examples.Length; b++)
        {
            var m = Mask(sequences[b], seed, epoch, exampleIndices[b]);
            examples[b] = new EncodedExample(m.InputIds, TokenLabels: m.Labels);
        }
        return collator.Collate(examples);
    }

    /// <summary>
    /// run_mlm's <c>group_texts</c>: tokenized sequences (each already [CLS] … [SEP]) are concatenated and cut into
    /// blocks of <paramref name="blockSize"/> ids; the incomplete tail is dropped. Streams: memory is one block.
    /// </summary>
    public static IEnumerable<int[]> GroupTexts(IEnumerable<IReadOnlyList<int>> tokenized, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(tokenized);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        return Iterate();
        IEnumerable<int[]> Iterate()
        {
            var block = new int[blockSize];
            int fill = 0;
            foreach (var seq in tokenized)
                foreach (var id in seq)
                {
                    block[fill++] = id;
                    if (fill < blockSize) continue;
                    yield return block;
                    block = new int[blockSize];
                    fill = 0;
                }
        }
    }

    /// <summary>Tokenizes <paramref name="lines"/> (with [CLS]/[SEP], no truncation; 1 024 lines per parallel batch) and groups them into blocks.</summary>
    public static IEnumerable<int[]> GroupTexts(BertTokenizer tokenizer, IEnumerable<string> lines, int blockSize, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(lines);
        var options = new EncodeOptions { AddSpecialTokens = true, Truncation = TruncationStrategy.None, Padding = PaddingStrategy.None };
        return GroupTexts(lines.Chunk(1024).SelectMany(chunk => tokenizer.EncodeBatch(chunk, options, cancellationToken).Select(e => e.Ids)), blockSize);
    }
}
