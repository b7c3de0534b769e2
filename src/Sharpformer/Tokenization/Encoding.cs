namespace Sharpformer.Tokenization;

/// <summary>
/// The result of tokenizing one input (a text, a pair, or a pre-split word list), as HF <c>tokenizers.Encoding</c>.
/// All lists have <see cref="Length"/> elements, one per token.
/// </summary>
/// <remarks>
/// Offsets are <c>[start, end)</c> in UTF-16 code units of the ORIGINAL input of the token's sequence
/// (<c>text</c> for sequence 0, <c>text_pair</c> for sequence 1, the word itself for pre-split input);
/// special and padding tokens have (0, 0). Word ids index the pre-tokenizer words of their sequence (numbering
/// restarts at 0 in the second sequence; for pre-split input it is the index into the word list) and are null
/// for special and padding tokens.
/// </remarks>
public sealed class Encoding
{
    internal Encoding(int[] ids, string[] tokens, int[] typeIds, int[] attentionMask, int[] specialTokensMask,
        TokenOffset[] offsets, int?[] wordIds, int?[] sequenceIds)
    {
        Ids = ids; Tokens = tokens; TypeIds = typeIds; AttentionMask = attentionMask;
        SpecialTokensMask = specialTokensMask; Offsets = offsets; WordIds = wordIds; SequenceIds = sequenceIds;
    }

    public IReadOnlyList<int> Ids { get; private set; }
    public IReadOnlyList<string> Tokens { get; private set; }
    /// <summary>Segment ids (BERT token_type_ids): 0 for [CLS] A [SEP], 1 for B [SEP].</summary>
    public IReadOnlyList<int> TypeIds { get; private set; }
    /// <summary>1 for real tokens, 0 for padding.</summary>
    public IReadOnlyList<int> AttentionMask { get; private set; }
    /// <summary>1 for tokens added by the post-processor ([CLS], [SEP]) and padding; 0 otherwise (also for a [MASK] typed in the text).</summary>
    public IReadOnlyList<int> SpecialTokensMask { get; private set; }
    public IReadOnlyList<TokenOffset> Offsets { get; private set; }
    public IReadOnlyList<int?> WordIds { get; private set; }
    /// <summary>0 or 1 for tokens of the first / second sequence, null for special and padding tokens.</summary>
    public IReadOnlyList<int?> SequenceIds { get; private set; }
    /// <summary>Further windows when truncation cut the input (HF <c>return_overflowing_tokens</c>), each a full encoding with special tokens.</summary>
    public IReadOnlyList<Encoding> Overflowing { get; internal set; } = [];

    public int Length => Ids.Count;

    /// <summary>The ids as a fresh array (for building model inputs).</summary>
    public int[] GetIdsArray() => [.. Ids];

    /// <summary>The character span of word <paramref name="wordId"/> in sequence <paramref name="sequenceId"/>, or null if no token belongs to it.</summary>
    public TokenOffset? WordToChars(int wordId, int sequenceId = 0)
    {
        int start = -1, end = -1;
        for (int i = 0; i < Length; i++)
            if (WordIds[i] == wordId && SequenceIds[i] == sequenceId)
            {
                if (start < 0) start = Offsets[i].Start;
                end = Offsets[i].End;
            }
        return start < 0 ? null : new TokenOffset(start, end);
    }

    /// <summary>Index of the token covering UTF-16 position <paramref name="charIndex"/> of sequence <paramref name="sequenceId"/>, or null.</summary>
    public int? CharToToken(int charIndex, int sequenceId = 0)
    {
        for (int i = 0; i < Length; i++)
            if (SequenceIds[i] == sequenceId && Offsets[i].Start <= charIndex && charIndex < Offsets[i].End) return i;
        return null;
    }

    internal void Pad(int targetLength, int padId, string padToken, PaddingSide side)
    {
        foreach (var o in Overflowing) o.Pad(targetLength, padId, padToken, side);
        int n = Length;
        if (n >= targetLength) return;
        int pad = targetLength - n, at = side == PaddingSide.Right ? 0 : pad;
        T[] Grow<T>(IReadOnlyList<T> src, T fill)
        {
            var dst = new T[targetLength];
            Array.Fill(dst, fill);
            var s = (T[])src;
            Array.Copy(s, 0, dst, at, n);
            return dst;
        }
        Ids = Grow(Ids, padId);
        Tokens = Grow(Tokens, padToken);
        TypeIds = Grow(TypeIds, 0);
        AttentionMask = Grow(AttentionMask, 0);
        SpecialTokensMask = Grow(SpecialTokensMask, 1);
        Offsets = Grow(Offsets, default);
        WordIds = Grow(WordIds, null);
        SequenceIds = Grow(SequenceIds, null);
    }
}
