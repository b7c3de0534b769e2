using System.Collections;

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
/// Storage is flat arrays (word/sequence ids as int with −1 for null, tokens looked up from the vocabulary on access),
/// so an encoding costs about 32 bytes per token.
/// </remarks>
public sealed class Encoding
{
    int[] _ids, _typeIds, _attention, _special, _words, _seqs;
    TokenOffset[] _offsets;
    readonly string[] _vocabulary;
    // Views created on first access (not per access: callers index them in loops); reset when padding swaps the arrays.
    TokenList? _tokenView;
    NullableIntList? _wordView, _seqView;

    internal Encoding(int[] ids, int[] typeIds, int[] attentionMask, int[] specialTokensMask,
        TokenOffset[] offsets, int[] wordIds, int[] sequenceIds, string[] vocabulary)
    {
        _ids = ids; _typeIds = typeIds; _attention = attentionMask; _special = specialTokensMask;
        _offsets = offsets; _words = wordIds; _seqs = sequenceIds; _vocabulary = vocabulary;
    }

    public IReadOnlyList<int> Ids => _ids;
    /// <summary>The token strings (vocabulary entries of <see cref="Ids"/>).</summary>
    public IReadOnlyList<string> Tokens => _tokenView ??= new TokenList(_ids, _vocabulary);
    /// <summary>Segment ids (BERT token_type_ids): 0 for [CLS] A [SEP], 1 for B [SEP].</summary>
    public IReadOnlyList<int> TypeIds => _typeIds;
    /// <summary>1 for real tokens, 0 for padding.</summary>
    public IReadOnlyList<int> AttentionMask => _attention;
    /// <summary>1 for tokens added by the post-processor ([CLS], [SEP]) and padding; 0 otherwise (also for a [MASK] typed in the text).</summary>
    public IReadOnlyList<int> SpecialTokensMask => _special;
    public IReadOnlyList<TokenOffset> Offsets => _offsets;
    public IReadOnlyList<int?> WordIds => _wordView ??= new NullableIntList(_words);
    /// <summary>0 or 1 for tokens of the first / second sequence, null for special and padding tokens.</summary>
    public IReadOnlyList<int?> SequenceIds => _seqView ??= new NullableIntList(_seqs);
    /// <summary>Further windows when truncation cut the input (HF <c>return_overflowing_tokens</c>), each a full encoding with special tokens.</summary>
    public IReadOnlyList<Encoding> Overflowing { get; internal set; } = [];
    /// <summary>Tokens truncation removed from the input (HF <c>num_truncated_tokens</c>); 0 when it fit.</summary>
    /// <remarks>Set on the main encoding: its length before truncation is <see cref="Length"/> + this (before padding).</remarks>
    public int NumTruncatedTokens { get; internal set; }
    /// <summary>
    /// Where this window starts among the first sequence's tokens before truncation: 0 for an encoding that kept the
    /// start of its text; for an overflowing window, the index of its first content token of sequence 0.
    /// </summary>
    public int WindowStart { get; internal set; }

    public int Length => _ids.Length;

    /// <summary>Spans over the flat storage, for copying into model inputs without interface calls.</summary>
    public ReadOnlySpan<int> IdsSpan => _ids;
    public ReadOnlySpan<int> TypeIdsSpan => _typeIds;
    public ReadOnlySpan<int> AttentionMaskSpan => _attention;

    /// <summary>The ids as a fresh array.</summary>
    public int[] GetIdsArray() => (int[])_ids.Clone();

    /// <summary>The character span of word <paramref name="wordId"/> in sequence <paramref name="sequenceId"/>, or null if no token belongs to it.</summary>
    public TokenOffset? WordToChars(int wordId, int sequenceId = 0)
    {
        int start = -1, end = -1;
        for (int i = 0; i < _ids.Length; i++)
            if (_words[i] == wordId && _seqs[i] == sequenceId)
            {
                if (start < 0) start = _offsets[i].Start;
                end = _offsets[i].End;
            }
        return start < 0 ? null : new TokenOffset(start, end);
    }

    /// <summary>Index of the token covering UTF-16 position <paramref name="charIndex"/> of sequence <paramref name="sequenceId"/>, or null.</summary>
    public int? CharToToken(int charIndex, int sequenceId = 0)
    {
        for (int i = 0; i < _ids.Length; i++)
            if (_seqs[i] == sequenceId && _offsets[i].Start <= charIndex && charIndex < _offsets[i].End) return i;
        return null;
    }

    internal void Pad(int targetLength, int padId, PaddingSide side)
    {
        foreach (var o in Overflowing) o.Pad(targetLength, padId, side);
        int n = Length;
        if (n >= targetLength) return;
        int at = side == PaddingSide.Right ? 0 : targetLength - n;
        T[] Grow<T>(T[] src, T fill)
        {
            var dst = new T[targetLength];
            Array.Fill(dst, fill);
            Array.Copy(src, 0, dst, at, n);
            return dst;
        }
        _ids = Grow(_ids, padId);
        _typeIds = Grow(_typeIds, 0);
        _attention = Grow(_attention, 0);
        _special = Grow(_special, 1);
        _offsets = Grow(_offsets, default);
        _words = Grow(_words, -1);
        _seqs = Grow(_seqs, -1);
        _tokenView = null; _wordView = null; _seqView = null;
    }

    sealed class TokenList(int[] ids, string[] vocabulary) : IReadOnlyList<string>
    {
        public string this[int index] => vocabulary[ids[index]];
        public int Count => ids.Length;
        public IEnumerator<string> GetEnumerator() { foreach (var id in ids) yield return vocabulary[id]; }
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    sealed class NullableIntList(int[] values) : IReadOnlyList<int?>
    {
        public int? this[int index] => values[index] < 0 ? null : values[index];
        public int Count => values.Length;
        public IEnumerator<int?> GetEnumerator() { foreach (var v in values) yield return v < 0 ? null : v; }
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
