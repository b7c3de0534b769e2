using System.Text;

namespace Sharpformer.Tokenization;

/// <summary>
/// BERT WordPiece tokenizer reproducing Hugging Face <c>BertTokenizerFast</c> (Rust <c>tokenizers</c>):
/// added-token split on the raw text → BertNormalizer → BertPreTokenizer → WordPiece → template post-processor.
/// </summary>
/// <remarks>
/// Pipeline per input string:
/// <list type="number">
/// <item>Added tokens with <c>normalized=false</c> (the specials [CLS] [SEP] [MASK] [PAD] [UNK]) are matched
/// leftmost-longest in the raw text and become single tokens (and words).</item>
/// <item>Normalizer, per character: clean_text drops U+0000, U+FFFD and Unicode C* except \t\n\r and maps
/// whitespace to ' '; CJK ideographs get spaces around them; strip_accents = NFD then drop Mn; lowercase =
/// Rust <c>char::to_lowercase</c>. Each normalized char remembers its original UTF-16 span.</item>
/// <item>Pre-tokenizer: split on whitespace, isolate every punctuation character.</item>
/// <item>WordPiece greedy longest-match-first with "##" continuation; a word longer than
/// <c>max_input_chars_per_word</c> code points, or with an unmatchable remainder, becomes one [UNK].
/// Candidate lengths are capped at the longest vocabulary entry, so a word of n chars costs
/// O(n · maxTokenLength) lookups.</item>
/// <item>Truncation (Rust semantics), template ([CLS] A [SEP] / [CLS] A [SEP] B [SEP]), padding.</item>
/// </list>
/// Instances are immutable and thread-safe; scratch buffers are per thread.
/// </remarks>
public sealed partial class BertTokenizer : Tokenizer, ITokenizer
{
    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabLookup;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _continuationLookup;
    readonly int _maxVocabKeyLength, _maxContinuationKeyLength;
    readonly NormalizerSettings? _normalizer;
    readonly int _unkId, _maxInputCharsPerWord;
    readonly DecoderSettings? _decoder;

    internal sealed record NormalizerSettings(bool CleanText, bool HandleChineseChars, bool StripAccents, bool Lowercase);
    internal sealed record DecoderSettings(string Prefix, bool Cleanup);

    internal BertTokenizer(Dictionary<string, int> vocab, NormalizerSettings? normalizer, string unkToken, string prefix,
        int maxInputCharsPerWord, IReadOnlyList<AddedToken> addedTokens, TemplatePiece[] singleTemplate, TemplatePiece[] pairTemplate,
        DecoderSettings? decoder, string? padToken, int? modelMaxLength, EncodeOptions? defaultOptions, string source)
        : base(BuildIdToToken(vocab, addedTokens, source), addedTokens, singleTemplate, pairTemplate, modelMaxLength, defaultOptions, source)
    {
        _vocab = vocab;
        _vocabLookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        var continuation = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (tok, id) in vocab)
        {
            _maxVocabKeyLength = Math.Max(_maxVocabKeyLength, tok.Length);
            if (prefix.Length > 0 && tok.StartsWith(prefix, StringComparison.Ordinal))
            {
                continuation[tok[prefix.Length..]] = id;
                _maxContinuationKeyLength = Math.Max(_maxContinuationKeyLength, tok.Length - prefix.Length);
            }
        }
        _continuationLookup = continuation.GetAlternateLookup<ReadOnlySpan<char>>();
        _normalizer = normalizer;
        if (!vocab.TryGetValue(unkToken, out _unkId))
            throw new TokenizerFormatException($"{source}: the unknown token '{unkToken}' is not in the vocabulary.");
        UnkToken = unkToken;
        _maxInputCharsPerWord = maxInputCharsPerWord;
        _decoder = decoder;
        if (padToken != null && vocab.TryGetValue(padToken, out var padId)) { PadToken = padToken; PadTokenId = padId; }
    }

    public string UnkToken { get; }
    public int UnkTokenId => _unkId;
    /// <summary>The classifier token the single template starts with ([CLS] for BERT), or null without a template.</summary>
    public int? ClsTokenId => _singleTemplate.FirstOrDefault(p => p.SequenceIndex < 0 && p.Ids.Length == 1)?.Ids[0];
    /// <summary>The separator token the single template ends with ([SEP] for BERT), or null without a template.</summary>
    public int? SepTokenId => _singleTemplate.LastOrDefault(p => p.SequenceIndex < 0 && p.Ids.Length == 1)?.Ids[0];
    /// <summary>The mask token's id (<c>mask_token</c> of the config, "[MASK]" for tokenizer.json), or null if absent.</summary>
    public int? MaskTokenId => MaskToken is null ? null : TokenToId(MaskToken);
    public string? MaskToken { get; internal init; }
    /// <summary>Whether the normalizer lowercases (HF <c>do_lower_case</c>).</summary>
    public bool LowerCase => _normalizer?.Lowercase ?? false;


    public override int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : AddedId(token);

    Encoding ITokenizer.Encode(string text, string? textPair, EncodeOptions options) =>
        textPair is null ? Encode(text, options) : Encode(text, textPair, options);

    /// <summary>Ids of <paramref name="tokens"/>; unknown tokens map to the unknown-token id (as HF).</summary>
    public int[] ConvertTokensToIds(IEnumerable<string> tokens) => [.. tokens.Select(t => TokenToId(t) ?? _unkId)];

    /// <summary>The normalizer's output for the whole text (added tokens are not protected here, as HF <c>normalizer.normalize_str</c>).</summary>
    public string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ws = Workspace.Get();
        int n = NormalizeInto(_normalizer, text, 0, text.Length, ws);
        ws.Work = 0;
        var result = new string(ws.Norm, 0, n);
        ws.TrimIfLarge();
        return result;
    }

    /// <summary>The normalizer's output with, for each output char, the original UTF-16 span it came from (tests compare it with a reference twin).</summary>
    internal (string Text, int[] Starts, int[] Ends) NormalizeWithSpans(string text)
    {
        var ws = Workspace.Get();
        int n = NormalizeInto(_normalizer, text, 0, text.Length, ws);
        ws.Work = 0;
        var result = (new string(ws.Norm, 0, n), ws.NStart[..n], ws.NEnd[..n]);
        ws.TrimIfLarge();
        return result;
    }

    private protected override void TokenizeSegment(string text, int from, int to, TokenBuffer output, int fixedWord)
    {
        var ws = Workspace.Get();
        int n = NormalizeInto(_normalizer, text, from, to, ws);
        for (int i = 0; NextPreToken(ws.Norm.AsSpan(0, n), ref i, out int start, out int end, out bool punct);)
        {
            int word = fixedWord >= 0 ? fixedWord : output.NextWord++;
            if (!punct) ws.Work += end - start;
            WordPiece(start, end, output, ws, word);
        }
        output.Work += ws.Work;
        ws.Work = 0;
        ws.TrimIfLarge();
    }

    /// <summary>
    /// BertPreTokenizer over normalized text: from <paramref name="i"/>, skips whitespace and returns the next word
    /// [start, end) — a single punctuation character (<paramref name="punct"/>) or a run of other characters.
    /// Returns false at the end of the text.
    /// </summary>
    static bool NextPreToken(ReadOnlySpan<char> norm, ref int i, out int start, out int end, out bool punct)
    {
        var ascii = UnicodeTables.AsciiClass;
        int n = norm.Length;
        while (i < n)
        {
            char c = norm[i];
            int len = 1, cp = c;
            if (char.IsHighSurrogate(c) && i + 1 < n && char.IsLowSurrogate(norm[i + 1])) { cp = char.ConvertToUtf32(c, norm[i + 1]); len = 2; }
            bool space;
            if (cp < 128) { space = (ascii[cp] & UnicodeTables.AsciiSpace) != 0; punct = (ascii[cp] & UnicodeTables.AsciiPunct) != 0; }
            else { space = UnicodeTables.IsWhitespace(cp); punct = !space && UnicodeTables.IsPunctuation(cp); }
            if (space) { i += len; continue; }
            start = i;
            if (punct) { end = i += len; return true; }
            int j = i + len;
            while (j < n)
            {
                char d = norm[j];
                if (d < 128)
                {
                    if ((ascii[d] & (UnicodeTables.AsciiSpace | UnicodeTables.AsciiPunct)) != 0) break;
                    j++;
                    continue;
                }
                int dcp = d, dlen = 1;
                if (char.IsHighSurrogate(d) && j + 1 < n && char.IsLowSurrogate(norm[j + 1])) { dcp = char.ConvertToUtf32(d, norm[j + 1]); dlen = 2; }
                if (UnicodeTables.IsWhitespace(dcp) || UnicodeTables.IsPunctuation(dcp)) break;
                j += dlen;
            }
            end = i = j;
            return true;
        }
        start = end = n;
        punct = false;
        return false;
    }

    /// <summary>
    /// The words WordPiece would see for <paramref name="text"/>: BertNormalizer with <paramref name="normalizer"/>
    /// (null = none), then BertPreTokenizer, without added-token matching — what HF's trainer counts
    /// (<c>TokenizerImpl::train</c> normalizes and pre-tokenizes each sequence). Each word is passed to
    /// <paramref name="onWord"/> as a span valid only during the call.
    /// </summary>
    internal static void ForEachPreToken(string text, NormalizerSettings? normalizer, PreTokenVisitor onWord)
    {
        var ws = Workspace.Get();
        int n = NormalizeInto(normalizer, text, 0, text.Length, ws);
        var norm = ws.Norm.AsSpan(0, n);
        for (int i = 0; NextPreToken(norm, ref i, out int start, out int end, out _);) onWord(norm[start..end]);
        ws.Work = 0;
        ws.TrimIfLarge();
    }

    internal delegate void PreTokenVisitor(ReadOnlySpan<char> word);

    /// <summary>Greedy longest-match-first over normalized chars [start, end) of the workspace buffer.</summary>
    void WordPiece(int start, int end, TokenBuffer output, Workspace ws, int word)
    {
        var norm = ws.Norm;
        int origStart = ws.NStart[start], origEnd = ws.NEnd[end - 1];
        int len = end - start;
        if (len > _maxInputCharsPerWord && CodePointCount(norm.AsSpan(start, len), _maxInputCharsPerWord) > _maxInputCharsPerWord)
        {
            output.Add(_unkId, origStart, origEnd, word);
            return;
        }
        int mark = output.Count, pos = start;
        while (pos < end)
        {
            bool first = pos == start;
            int stop = Math.Min(end, pos + (first ? _maxVocabKeyLength : _maxContinuationKeyLength));
            if (stop < end && char.IsLowSurrogate(norm[stop]) && char.IsHighSurrogate(norm[stop - 1])) stop--;
            int found = -1;
            while (stop > pos)
            {
                ws.Work++;
                var piece = norm.AsSpan(pos, stop - pos);
                if (first ? _vocabLookup.TryGetValue(piece, out found) : _continuationLookup.TryGetValue(piece, out found)) break;
                found = -1;
                stop--;
                if (stop > pos && char.IsLowSurrogate(norm[stop]) && char.IsHighSurrogate(norm[stop - 1])) stop--;
            }
            if (found < 0)
            {
                output.Count = mark;
                output.Add(_unkId, origStart, origEnd, word);
                return;
            }
            output.Add(found, ws.NStart[pos], ws.NEnd[stop - 1], word);
            pos = stop;
        }
    }

    /// <summary>Code points in <paramref name="s"/>, counting stops once past <paramref name="limit"/> (a 100 000-char word costs O(limit)).</summary>
    static int CodePointCount(ReadOnlySpan<char> s, int limit)
    {
        int count = 0;
        for (int i = 0; i < s.Length && count <= limit; i++, count++)
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        return count;
    }

    /// <summary>
    /// BertNormalizer over text[from, to) into the workspace: chars to <c>ws.Norm</c>, and for each the original
    /// UTF-16 span of the character it came from (<c>ws.NStart</c>, <c>ws.NEnd</c>). Returns the normalized length.
    /// </summary>
    /// <remarks>
    /// Lone surrogates cannot exist in the UTF-8 text Rust sees; they are treated as U+FFFD (dropped by clean_text).
    /// Capacity invariant: whenever the ASCII fast path runs at input index i, the buffers have room for
    /// n + (to − i) chars, since an ASCII char yields at most one. The slow path keeps it true by growing the
    /// buffers, before it writes, to n + <see cref="MaxNormalizedCharsPerCodePoint"/> + (to − i) with i already past
    /// its code point — so a CJK prefix (1 char → 3) followed by ASCII can never write past the end.
    /// </remarks>
    static int NormalizeInto(NormalizerSettings? nz, string text, int from, int to, Workspace ws)
    {
        ws.Ensure(to - from);
        var norm = ws.Norm; var ns = ws.NStart; var ne = ws.NEnd;
        var ascii = UnicodeTables.AsciiClass;
        int n = 0;
        if (nz == null)
        {
            for (int i = from; i < to; i++) { norm[n] = text[i]; ns[n] = i; ne[n] = i + 1; n++; }
            ws.Work += to - from;
            return n;
        }
        bool lower = nz.Lowercase, clean = nz.CleanText;
        Span<char> tmp = stackalloc char[4];
        for (int i = from; i < to;)
        {
            char c = text[i];
            if (c < 128)
            {
                byte cls = ascii[c];
                if ((cls & UnicodeTables.AsciiDrop) != 0 && clean) { i++; continue; }
                char outc = (cls & UnicodeTables.AsciiSpace) != 0 && clean ? ' ' : (lower && (cls & UnicodeTables.AsciiUpper) != 0 ? (char)(c | 0x20) : c);
                norm[n] = outc; ns[n] = i; ne[n] = i + 1; n++; i++;
                continue;
            }
            // Slow path: one code point.
            int cp, len;
            if (char.IsHighSurrogate(c) && i + 1 < to && char.IsLowSurrogate(text[i + 1])) { cp = char.ConvertToUtf32(c, text[i + 1]); len = 2; }
            else if (char.IsSurrogate(c)) { cp = 0xFFFD; len = 1; }
            else { cp = c; len = 1; }
            int s0 = i, e0 = i + len;
            i += len;
            if (n + MaxNormalizedCharsPerCodePoint + (to - i) > norm.Length)
            {
                ws.Ensure(n + MaxNormalizedCharsPerCodePoint + (to - i));
                norm = ws.Norm; ns = ws.NStart; ne = ws.NEnd;
            }
            if (clean)
            {
                if (cp == 0xFFFD || UnicodeTables.IsOther(cp)) continue;
                if (UnicodeTables.IsWhitespace(cp)) { norm[n] = ' '; ns[n] = s0; ne[n] = e0; n++; continue; }
            }
            // bert.rs pads CJK ideographs before strip_accents' NFD runs, so a compatibility ideograph (U+F900…)
            // is still decomposed between its spaces.
            bool chinese = nz.HandleChineseChars && UnicodeTables.IsChinese(cp);
            if (chinese) { norm[n] = ' '; ns[n] = s0; ne[n] = e0; n++; }
            string? decomposed = nz.StripAccents ? UnicodeTables.Decompose(cp) : null;
            if (decomposed == null)
            {
                if (!(nz.StripAccents && UnicodeTables.IsNonSpacingMark(cp))) n = Emit(cp, lower, s0, e0, n, norm, ns, ne, tmp);
            }
            else
            {
                for (int k = 0; k < decomposed.Length;)
                {
                    int dcp = char.ConvertToUtf32(decomposed, k);
                    k += dcp > 0xFFFF ? 2 : 1;
                    if (!UnicodeTables.IsNonSpacingMark(dcp)) n = Emit(dcp, lower, s0, e0, n, norm, ns, ne, tmp);
                }
            }
            if (chinese) { norm[n] = ' '; ns[n] = s0; ne[n] = e0; n++; }
        }
        ws.Work += to - from;
        return n;
    }

    /// <summary>
    /// Upper bound on the UTF-16 chars the normalizer makes of one code point: an astral CJK ideograph with its two
    /// spaces is 4; the longest canonical decomposition keeping non-Mn parts (U+1D160 → three astral code points) is 6.
    /// A test normalizes every code point under every setting and checks this bound.
    /// </summary>
    internal const int MaxNormalizedCharsPerCodePoint = 8;

    static int Emit(int cp, bool lower, int s0, int e0, int n, char[] norm, int[] ns, int[] ne, Span<char> tmp)
    {
        int count = lower ? UnicodeTables.ToLower(cp, tmp) : new Rune(cp).EncodeToUtf16(tmp);
        for (int k = 0; k < count; k++) { norm[n] = tmp[k]; ns[n] = s0; ne[n] = e0; n++; }
        return n;
    }

    // ---------------------------------------------------------------- decode

    /// <summary>
    /// Ids back to text (HF <c>decode</c>): tokens joined with spaces, a leading "##" glues a piece to the previous one.
    /// </summary>
    /// <remarks>
    /// Cleanup replaces " ." " ?" " !" " ," " ' " " n't" " 'm" " 's" " 've" " 're" (and " do not" → " don't") by the
    /// unspaced form. <see cref="DecodeCleanup.PerToken"/> applies it to each token as the Rust WordPiece decoder does
    /// (so "isn ' t" stays); <see cref="DecodeCleanup.WholeText"/> applies it to the joined text as transformers 4.30's
    /// <c>tokenizer.decode</c> (slow and fast) does (so "isn ' t" → "isn't").
    /// </remarks>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true,
        DecodeCleanup cleanup = DecodeCleanup.PerToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        bool firstToken = true;
        bool clean = cleanUpTokenizationSpaces && (_decoder?.Cleanup ?? true);
        foreach (var id in ids)
        {
            var tok = TokenOf(id);
            if (skipSpecialTokens && IsSpecialTokenId(id)) continue;
            if (_decoder == null)
            {
                if (!firstToken) sb.Append(' ');
                sb.Append(tok);
            }
            else
            {
                string piece = tok;
                if (!firstToken)
                    piece = tok.StartsWith(_decoder.Prefix, StringComparison.Ordinal) ? tok[_decoder.Prefix.Length..] : " " + tok;
                if (clean) piece = CleanUp(piece, true);
                sb.Append(piece);
            }
            firstToken = false;
        }
        var text = sb.ToString();
        return clean && cleanup == DecodeCleanup.WholeText ? CleanUp(text, false) : text;
    }

    /// <summary>Decodes every row of a batch.</summary>
    public IReadOnlyList<string> DecodeBatch(IEnumerable<IEnumerable<int>> batch, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true,
        DecodeCleanup cleanup = DecodeCleanup.PerToken) =>
        [.. batch.Select(ids => Decode(ids, skipSpecialTokens, cleanUpTokenizationSpaces, cleanup))];

    /// <summary>
    /// tokenizers/src/decoders/wordpiece.rs <c>cleanup</c> (<paramref name="rust"/>) or transformers 4.30
    /// <c>clean_up_tokenization</c>, which lacks the " do not" rule.
    /// </summary>
    internal static string CleanUp(string s, bool rust)
    {
        s = s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
             .Replace(" n't", "n't").Replace(" 'm", "'m");
        if (rust) s = s.Replace(" do not", " don't");
        return s.Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
    }

    // ---------------------------------------------------------------- scratch

    sealed class Workspace
    {
        [ThreadStatic] static Workspace? t_current;

        public char[] Norm = new char[512];
        public int[] NStart = new int[512], NEnd = new int[512];
        public long Work;

        public static Workspace Get() => t_current ??= new Workspace();

        /// <summary>Drops buffers a huge input grew, so a 1 MB text does not pin ~10 MB per thread forever.</summary>
        public void TrimIfLarge()
        {
            const int Limit = 1 << 16;
            if (Norm.Length > Limit) { Norm = new char[512]; NStart = new int[512]; NEnd = new int[512]; }
        }

        public void Ensure(int size)
        {
            if (Norm.Length >= size) return;
            int n = Math.Max(size, Norm.Length * 2);
            Array.Resize(ref Norm, n); Array.Resize(ref NStart, n); Array.Resize(ref NEnd, n);
        }
    }
}
