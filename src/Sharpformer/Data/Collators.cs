using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Data;

/// <summary>
/// A padded batch as flat row-major arrays of shape [Batch, Seq]; the trainer wraps them in tensors.
/// </summary>
/// <param name="Batch">Number of sequences.</param>
/// <param name="Seq">Padded sequence length.</param>
/// <param name="InputIds">[Batch·Seq] token ids, padded with the pad id.</param>
/// <param name="TypeIds">[Batch·Seq] token type (segment) ids, padded with 0.</param>
/// <param name="AttentionMask">[Batch·Seq] 1 for real tokens, 0 for padding.</param>
/// <param name="Labels">Sequence classification: [Batch]; token classification: [Batch·Seq] padded with −100; or null.</param>
public sealed record CollatedBatch(int Batch, int Seq, int[] InputIds, int[] TypeIds, int[] AttentionMask, int[]? Labels)
{
    /// <summary>Number of non-padding tokens.</summary>
    public int TokenCount => AttentionMask.Sum();

    /// <summary>Labels that are not −100 (<see cref="PaddingCollator.IgnoreIndex"/>): what a per-token mean loss is over.</summary>
    public int LabelledCount
    {
        get
        {
            int n = 0;
            foreach (int l in Labels ?? []) if (l != PaddingCollator.IgnoreIndex) n++;
            return n;
        }
    }

    /// <summary>The model input of this batch; <paramref name="tokenTypeIds"/> false drops the type ids (DistilBERT has none).</summary>
    public EncoderInput ToEncoderInput(bool tokenTypeIds = true) => new(InputIds, Batch, Seq, tokenTypeIds ? TypeIds : null, AttentionMask);
}

/// <summary>One encoded example: token ids, optional type ids (null = all 0) and optional label(s).</summary>
public sealed record EncodedExample(IReadOnlyList<int> InputIds, IReadOnlyList<int>? TypeIds = null, int? Label = null,
    IReadOnlyList<int>? TokenLabels = null);

/// <summary>
/// Dynamic padding as transformers' <c>DataCollatorWithPadding</c> / <c>DataCollatorForTokenClassification</c>
/// (right padding): every sequence is padded to the longest in the batch (rounded up to
/// <see cref="PadToMultipleOf"/>), type ids with 0, the attention mask with 0 and token labels with −100.
/// The one way from encodings to a model batch: training, pipelines, workflows and the CLI all collate here.
/// </summary>
public sealed class PaddingCollator
{
    public const int IgnoreIndex = -100;

    /// <param name="padId">Id of the padding token ([PAD] = 0 in BERT vocabularies).</param>
    /// <param name="padToMultipleOf">If set, the padded length is rounded up to a multiple of it.</param>
    /// <param name="maxLength">If set, a longer sequence is an error (truncate when encoding; the collator never cuts silently).</param>
    public PaddingCollator(int padId = 0, int? padToMultipleOf = null, int? maxLength = null)
    {
        if (padToMultipleOf is <= 0) throw new ArgumentOutOfRangeException(nameof(padToMultipleOf), "Must be positive.");
        PadId = padId;
        PadToMultipleOf = padToMultipleOf;
        MaxLength = maxLength;
    }

    public int PadId { get; }
    public int? PadToMultipleOf { get; }
    public int? MaxLength { get; }

    /// <summary>Pads a batch. Labels: all examples have <see cref="EncodedExample.Label"/>, or all have
    /// <see cref="EncodedExample.TokenLabels"/> (same length as their ids), or none has either.</summary>
    public CollatedBatch Collate(IReadOnlyList<EncodedExample> examples)
    {
        if (examples.Count == 0) throw new ArgumentException("Cannot collate an empty batch.", nameof(examples));
        int batch = examples.Count, seq = 0;
        for (int b = 0; b < batch; b++)
        {
            var e = examples[b];
            if (e.TypeIds is not null && e.TypeIds.Count != e.InputIds.Count)
                throw new ArgumentException($"Example {b}: {e.TypeIds.Count} type ids for {e.InputIds.Count} input ids.", nameof(examples));
            if (e.TokenLabels is not null && e.TokenLabels.Count != e.InputIds.Count)
                throw new ArgumentException($"Example {b}: {e.TokenLabels.Count} token labels for {e.InputIds.Count} input ids (align labels to tokens first).", nameof(examples));
            if (MaxLength is { } max && e.InputIds.Count > max)
                throw new ArgumentException($"Example {b} has {e.InputIds.Count} tokens, more than MaxLength {max}; truncate when encoding.", nameof(examples));
            seq = Math.Max(seq, e.InputIds.Count);
        }
        // At least one position: texts without tokens (possible without special tokens) become all padding, as Keras feeds them.
        seq = Math.Max(1, seq);
        if (PadToMultipleOf is { } m) seq = (seq + m - 1) / m * m;

        bool seqLabels = examples[0].Label is not null, tokLabels = examples[0].TokenLabels is not null;
        for (int b = 1; b < batch; b++)
            if ((examples[b].Label is not null) != seqLabels || (examples[b].TokenLabels is not null) != tokLabels)
                throw new ArgumentException($"Example {b} has labels of another kind than example 0; a batch needs all or none.", nameof(examples));
        if (seqLabels && tokLabels) throw new ArgumentException("Examples have both a sequence label and token labels; use one.", nameof(examples));

        var ids = new int[batch * seq];
        var types = new int[batch * seq];
        var mask = new int[batch * seq];
        int[]? labels = seqLabels ? new int[batch] : tokLabels ? new int[batch * seq] : null;
        if (tokLabels) Array.Fill(labels!, IgnoreIndex);
        Array.Fill(ids, PadId);
        for (int b = 0; b < batch; b++)
        {
            var e = examples[b];
            int row = b * seq;
            for (int t = 0; t < e.InputIds.Count; t++)
            {
                ids[row + t] = e.InputIds[t];
                mask[row + t] = 1;
                if (e.TypeIds is not null) types[row + t] = e.TypeIds[t];
                if (tokLabels) labels![row + t] = e.TokenLabels![t];
            }
            if (seqLabels) labels![b] = e.Label!.Value;
        }
        return new CollatedBatch(batch, seq, ids, types, mask, labels);
    }

    /// <summary>Pads tokenizer encodings (ids and type ids, no labels).</summary>
    public CollatedBatch Collate(IReadOnlyList<Encoding> encodings) =>
        Collate(encodings.Select(e => new EncodedExample(e.Ids, e.TypeIds)).ToArray());

    /// <summary>Pads bare id sequences (no type ids, no labels).</summary>
    public CollatedBatch Collate(IReadOnlyList<IReadOnlyList<int>> inputIds) =>
        Collate(inputIds.Select(ids => new EncodedExample(ids)).ToArray());
}

/// <summary>Word-level labels → sub-token labels, as in the Hugging Face course (chapter 7, token classification).</summary>
public static class LabelAlignment
{
    /// <summary>
    /// One label per token from one label per word. Special tokens (word id null) get −100. The first piece of
    /// each word gets the word's label; later pieces get the I- form of a B- label (<see cref="LabelSet.InsideId"/>)
    /// when <paramref name="labelAllPieces"/> is true, or −100 when it is false (transformers' run_ner
    /// <c>label_all_tokens=False</c>).
    /// </summary>
    /// <remarks>A new word starts whenever the word id differs from the previous token's, as in the course code.</remarks>
    public static int[] AlignLabelsWithTokens(IReadOnlyList<int?> wordIds, IReadOnlyList<int> wordLabels, LabelSet labels,
        bool labelAllPieces = true)
    {
        var result = new int[wordIds.Count];
        int? current = null;
        for (int t = 0; t < wordIds.Count; t++)
        {
            var w = wordIds[t];
            if (w is null) { result[t] = PaddingCollator.IgnoreIndex; current = null; continue; }
            int word = w.Value;
            if ((uint)word >= (uint)wordLabels.Count)
                throw new ArgumentException($"Token {t} has word id {word} but there are only {wordLabels.Count} word labels.", nameof(wordIds));
            int label = wordLabels[word];
            if ((uint)label >= (uint)labels.Count && label != PaddingCollator.IgnoreIndex)
                throw new ArgumentException($"Word {word} has label id {label}, outside 0..{labels.Count - 1}.", nameof(wordLabels));
            if (word != current) result[t] = label;
            else result[t] = !labelAllPieces || label == PaddingCollator.IgnoreIndex ? PaddingCollator.IgnoreIndex : labels.InsideId(label);
            current = word;
        }
        return result;
    }

    /// <summary>Same, with word labels given as tag names.</summary>
    public static int[] AlignLabelsWithTokens(IReadOnlyList<int?> wordIds, IReadOnlyList<string> wordTags, LabelSet labels,
        bool labelAllPieces = true) =>
        AlignLabelsWithTokens(wordIds, wordTags.Select(t => labels.TryGetId(t, out int id) ? id
            : throw new ArgumentException($"Unknown tag '{t}' (known: {string.Join(", ", labels.Names)}); read the data with ConllOptions.Labels to find its line.", nameof(wordTags))).ToArray(),
            labels, labelAllPieces);
}
