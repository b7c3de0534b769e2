using System.Buffers;
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
public sealed partial class BertTokenizer : ITokenizer
{
    readonly string[] _idToToken;
    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabLookup;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _continuationLookup;
    readonly int _maxVocabKeyLength, _maxContinuationKeyLength;
    readonly NormalizerSettings? _normalizer;
    readonly int _unkId, _maxInputCharsPerWord;
    readonly AddedToken[] _addedTokens;
    readonly Dictionary<char, AddedToken[]> _addedByFirstChar = [];
    readonly SearchValues<char>? _addedFirstChars;
    readonly bool[] _isSpecialId;
    readonly TemplatePiece[] _singleTemplate, _pairTemplate;
    readonly DecoderSettings? _decoder;
    long _work;

    internal sealed record NormalizerSettings(bool CleanText, bool HandleChineseChars, bool StripAccents, bool Lowercase);
    internal sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);
    internal sealed record TemplatePiece(int SequenceIndex /* -1 = special token */, int[] Ids, int TypeId);
    internal sealed record DecoderSettings(string Prefix, bool Cleanup);

    internal BertTokenizer(Dictionary<string, int> vocab, NormalizerSettings? normalizer, string unkToken, string prefix,
        int maxInputCharsPerWord, IReadOnlyList<AddedToken> addedTokens, TemplatePiece[] singleTemplate, TemplatePiece[] pairTemplate,
        DecoderSettings? decoder, string? padToken, int? modelMaxLength, EncodeOptions? defaultOptions, string source)
    {
        _vocab = vocab;
        _idToToken = BuildIdToToken(vocab, addedTokens, source);
        int size = _idToToken.Length;
        foreach (var piece in singleTemplate.Concat(pairTemplate))
            foreach (var id in piece.Ids)
                if ((uint)id >= (uint)size)
                    throw new TokenizerFormatException($"{source}: post_processor special token id {id} is not in the vocabulary (ids 0..{size - 1}).");

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
        _addedTokens = [.. addedTokens];
        _isSpecialId = new bool[size];
        foreach (var t in _addedTokens)
        {
            if (t.Content.Length == 0) throw new TokenizerFormatException($"{source}: an added token (id {t.Id}) has empty content.");
            if (t.Special) _isSpecialId[t.Id] = true;
        }
        foreach (var g in _addedTokens.GroupBy(t => t.Content[0]))
            _addedByFirstChar[g.Key] = [.. g.OrderByDescending(t => t.Content.Length)];
        if (_addedByFirstChar.Count > 0) _addedFirstChars = SearchValues.Create([.. _addedByFirstChar.Keys]);
        _singleTemplate = singleTemplate;
        _pairTemplate = pairTemplate;
        _decoder = decoder;
        if (padToken != null && vocab.TryGetValue(padToken, out var padId)) { PadToken = padToken; PadTokenId = padId; }
        ModelMaxLength = modelMaxLength;
        DefaultOptions = defaultOptions ?? EncodeOptions.Default;
        Source = source;
    }

    /// <summary>
    /// The id → token table. Ids must be 0..n−1 without gaps: every id is checked against the token count before it
    /// indexes anything (a hostile id of −1 or 2³¹−1 is a format error, not an overflow or a 8 GB allocation), and two
    /// different tokens may not share an id (an added token may repeat its own vocabulary entry, as BERT's specials do).
    /// </summary>
    static string[] BuildIdToToken(Dictionary<string, int> vocab, IReadOnlyList<AddedToken> addedTokens, string source)
    {
        int count = vocab.Count + addedTokens.Count; // ≥ the number of distinct ids
        string Range() => $"ids must lie in 0..n-1 without gaps, n = the number of distinct tokens (at most {count} here)";
        int size = 0;
        foreach (var (tok, id) in vocab)
        {
            if ((uint)id >= (uint)count)
                throw new TokenizerFormatException($"{source}: vocabulary token '{tok}' has id {id}; {Range()}.");
            size = Math.Max(size, id + 1);
        }
        foreach (var t in addedTokens)
        {
            if ((uint)t.Id >= (uint)count)
                throw new TokenizerFormatException($"{source}: added token '{t.Content}' has id {t.Id}; {Range()}.");
            size = Math.Max(size, t.Id + 1);
        }
        var table = new string[size];
        foreach (var (tok, id) in vocab)
        {
            if (table[id] is { } other)
                throw new TokenizerFormatException($"{source}: vocabulary tokens '{other}' and '{tok}' both have id {id}; every token needs its own id.");
            table[id] = tok;
        }
        foreach (var t in addedTokens)
        {
            if (table[t.Id] is { } other && other != t.Content)
                throw new TokenizerFormatException($"{source}: added token '{t.Content}' has id {t.Id}, which already belongs to '{other}'; give it an unused id.");
            table[t.Id] = t.Content;
        }
        for (int i = 0; i < size; i++)
            if (table[i] is null)
                throw new TokenizerFormatException($"{source}: no token has id {i} although ids reach {size - 1}; {Range()}.");
        return table;
    }

    /// <summary>The file or directory the tokenizer was loaded from (used in messages).</summary>
    public string Source { get; }
    public int VocabSize => _idToToken.Length;
    /// <summary>HF <c>model_max_length</c>, used when truncation or max-length padding has no explicit MaxLength.</summary>
    public int? ModelMaxLength { get; }
    public string UnkToken { get; }
    public int UnkTokenId => _unkId;
    public string? PadToken { get; }
    public int? PadTokenId { get; }
    /// <summary>The classifier token the single template starts with ([CLS] for BERT), or null without a template.</summary>
    public int? ClsTokenId => _singleTemplate.FirstOrDefault(p => p.SequenceIndex < 0 && p.Ids.Length == 1)?.Ids[0];
    /// <summary>The separator token the single template ends with ([SEP] for BERT), or null without a template.</summary>
    public int? SepTokenId => _singleTemplate.LastOrDefault(p => p.SequenceIndex < 0 && p.Ids.Length == 1)?.Ids[0];
    /// <summary>The mask token's id (<c>mask_token</c> of the config, "[MASK]" for tokenizer.json), or null if absent.</summary>
    public int? MaskTokenId => MaskToken is null ? null : TokenToId(MaskToken);
    public string? MaskToken { get; internal init; }
    /// <summary>Options applied when a call passes none (from tokenizer.json <c>truncation</c>/<c>padding</c>, else no truncation/padding).</summary>
    public EncodeOptions DefaultOptions { get; }
    /// <summary>Whether the normalizer lowercases (HF <c>do_lower_case</c>).</summary>
    public bool LowerCase => _normalizer?.Lowercase ?? false;

    /// <summary>Vocabulary lookups + characters visited since creation; lets tests prove linear running time by counting work.</summary>
    internal long WorkCounter => Interlocked.Read(ref _work);

    /// <summary>Number of tokens the post-processor adds to a single input or a pair.</summary>
    public int NumSpecialTokensToAdd(bool pair) =>
        (pair ? _pairTemplate : _singleTemplate).Where(p => p.SequenceIndex < 0).Sum(p => p.Ids.Length);

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : AddedId(token);

    int? AddedId(string token)
    {
        foreach (var t in _addedTokens) if (t.Content == token) return t.Id;
        return null;
    }

    /// <summary>The token string of <paramref name="id"/>, or null if the id is outside the vocabulary.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>Ids of <paramref name="tokens"/>; unknown tokens map to the unknown-token id (as HF).</summary>
    public int[] ConvertTokensToIds(IEnumerable<string> tokens) => [.. tokens.Select(t => TokenToId(t) ?? _unkId)];

    /// <summary>Tokens of <paramref name="ids"/>; throws <see cref="TokenizationException"/> for an id outside the vocabulary.</summary>
    public string[] ConvertIdsToTokens(IEnumerable<int> ids) =>
        [.. ids.Select(id => IdToToken(id) ?? throw new TokenizationException($"token id {id} is outside the vocabulary (size {VocabSize}) of {Source}."))];

    /// <summary>True for ids of added tokens flagged special ([CLS], [SEP], [PAD], [MASK], [UNK]).</summary>
    public bool IsSpecialTokenId(int id) => (uint)id < (uint)_isSpecialId.Length && _isSpecialId[id];

    // ---------------------------------------------------------------- public encode API

    /// <summary>Encodes one text (HF <c>tokenizer(text)</c>).</summary>
    public Encoding Encode(string text, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var o = options ?? DefaultOptions;
        var e = EncodeOne(new Input(text, null, null, null), o, Workspace.Get());
        PadSingle(e, o);
        return e;
    }

    /// <summary>Encodes a text pair (HF <c>tokenizer(text, text_pair)</c>).</summary>
    public Encoding Encode(string text, string textPair, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(textPair);
        var o = options ?? DefaultOptions;
        var e = EncodeOne(new Input(text, textPair, null, null), o, Workspace.Get());
        PadSingle(e, o);
        return e;
    }

    Encoding ITokenizer.Encode(string text, string? textPair, EncodeOptions options) =>
        textPair is null ? Encode(text, options) : Encode(text, textPair, options);

    /// <summary>Encodes pre-split words (HF <c>is_split_into_words=True</c>); word ids index <paramref name="words"/>, offsets are relative to each word.</summary>
    public Encoding EncodePretokenized(IReadOnlyList<string> words, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(words);
        var o = options ?? DefaultOptions;
        var e = EncodeOne(new Input(null, null, words, null), o, Workspace.Get());
        PadSingle(e, o);
        return e;
    }

    /// <summary>Encodes a pair of pre-split word lists.</summary>
    public Encoding EncodePretokenized(IReadOnlyList<string> words, IReadOnlyList<string> pairWords, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(words);
        ArgumentNullException.ThrowIfNull(pairWords);
        var o = options ?? DefaultOptions;
        var e = EncodeOne(new Input(null, null, words, pairWords), o, Workspace.Get());
        PadSingle(e, o);
        return e;
    }

    /// <summary>Encodes texts in parallel (<see cref="EncodeOptions.Threads"/>); <see cref="PaddingStrategy.Longest"/> pads to the longest of the batch.</summary>
    public IReadOnlyList<Encoding> EncodeBatch(IReadOnlyList<string> texts, EncodeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return RunBatch(texts.Count, i => new Input(texts[i] ?? throw new ArgumentException($"texts[{i}] is null.", nameof(texts)), null, null, null),
            options ?? DefaultOptions, cancellationToken);
    }

    /// <summary>Encodes text pairs in parallel.</summary>
    public IReadOnlyList<Encoding> EncodeBatch(IReadOnlyList<(string Text, string TextPair)> pairs, EncodeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        return RunBatch(pairs.Count, i => new Input(pairs[i].Text ?? throw new ArgumentException($"pairs[{i}].Text is null.", nameof(pairs)),
            pairs[i].TextPair ?? throw new ArgumentException($"pairs[{i}].TextPair is null.", nameof(pairs)), null, null),
            options ?? DefaultOptions, cancellationToken);
    }

    /// <summary>Encodes pre-split word lists in parallel.</summary>
    public IReadOnlyList<Encoding> EncodePretokenizedBatch(IReadOnlyList<IReadOnlyList<string>> wordLists, EncodeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wordLists);
        return RunBatch(wordLists.Count, i => new Input(null, null, wordLists[i] ?? throw new ArgumentException($"wordLists[{i}] is null.", nameof(wordLists)), null),
            options ?? DefaultOptions, cancellationToken);
    }

    /// <summary>The tokens of <paramref name="text"/> without special tokens (HF <c>tokenizer.tokenize</c>).</summary>
    public IReadOnlyList<string> Tokenize(string text) => Encode(text, new EncodeOptions { AddSpecialTokens = false }).Tokens;

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

    readonly record struct Input(string? Text, string? Pair, IReadOnlyList<string>? Words, IReadOnlyList<string>? PairWords)
    {
        public bool IsPair => Pair != null || PairWords != null;
    }

    IReadOnlyList<Encoding> RunBatch(int count, Func<int, Input> input, EncodeOptions o, CancellationToken ct)
    {
        var results = new Encoding[count];
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        threads = Math.Max(1, Math.Min(threads, count));
        if (threads == 1)
        {
            var ws = Workspace.Get();
            for (int i = 0; i < count; i++)
            {
                if ((i & 255) == 0) ct.ThrowIfCancellationRequested();
                results[i] = EncodeOne(input(i), o, ws);
            }
        }
        else
        {
            // Chunks of consecutive texts keep scheduling overhead negligible next to ~50 µs per text.
            int chunk = Math.Clamp(count / (threads * 8), 1, 256), chunks = (count + chunk - 1) / chunk;
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = ct }, c =>
            {
                var ws = Workspace.Get();
                for (int i = c * chunk, end = Math.Min(count, i + chunk); i < end; i++) results[i] = EncodeOne(input(i), o, ws);
            });
        }
        if (o.Padding == PaddingStrategy.Longest && count > 0)
            PadAll(results, results.Max(e => e.Length), o);
        else if (o.Padding == PaddingStrategy.MaxLength)
            PadAll(results, ResolveMaxLength(o, "padding"), o);
        return results;
    }

    /// <summary>
    /// Pads already-built encodings in place (HF <c>tokenizer.pad</c>): to the longest of them
    /// (<see cref="PaddingStrategy.Longest"/>) or to MaxLength, rounded up to <see cref="EncodeOptions.PadToMultipleOf"/>.
    /// Encodings longer than the target are left unchanged.
    /// </summary>
    public void Pad(IReadOnlyList<Encoding> encodings, EncodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(encodings);
        ArgumentNullException.ThrowIfNull(options);
        if (encodings.Count == 0 || options.Padding == PaddingStrategy.None) return;
        int target = options.Padding == PaddingStrategy.Longest ? encodings.Max(e => e.Length) : ResolveMaxLength(options, "padding");
        PadAll([.. encodings], target, options);
    }

    void PadSingle(Encoding e, EncodeOptions o)
    {
        if (o.Padding == PaddingStrategy.Longest) PadAll([e], e.Length, o);
        else if (o.Padding == PaddingStrategy.MaxLength) PadAll([e], ResolveMaxLength(o, "padding"), o);
    }

    void PadAll(Encoding[] encodings, int target, EncodeOptions o)
    {
        if (PadToken is null || PadTokenId is null)
            throw new TokenizationException($"padding was requested but the tokenizer {Source} has no pad token.");
        if (o.PadToMultipleOf is int m && m > 0 && target % m != 0) target += m - target % m;
        foreach (var e in encodings) e.Pad(target, PadTokenId.Value, o.PaddingSide);
    }

    int ResolveMaxLength(EncodeOptions o, string what) =>
        o.MaxLength ?? ModelMaxLength ?? throw new TokenizationException(
            $"{what} needs a max length: set EncodeOptions.MaxLength (the tokenizer {Source} has no model_max_length).");

    // ---------------------------------------------------------------- core

    Encoding EncodeOne(Input input, EncodeOptions o, Workspace ws)
    {
        var a = ws.A; a.Clear();
        if (input.Words != null) TokenizeWords(input.Words, a, ws); else TokenizeText(input.Text!, a, ws, -1);
        TokenBuffer? b = null;
        if (input.IsPair)
        {
            b = ws.B; b.Clear();
            if (input.PairWords != null) TokenizeWords(input.PairWords, b, ws); else TokenizeText(input.Pair!, b, ws, -1);
        }
        Interlocked.Add(ref _work, ws.Work);
        ws.Work = 0;
        ws.TrimIfLarge(); // a and b stay valid: a dropped workspace keeps its buffers until this call returns

        int nA = a.Count, nB = b?.Count ?? 0, keepA = nA, keepB = nB;
        if (o.Truncation != TruncationStrategy.None)
        {
            int maxLength = ResolveMaxLength(o, "truncation");
            int added = o.AddSpecialTokens ? NumSpecialTokensToAdd(b != null) : 0;
            if (nA + nB + added > maxLength)
            {
                if (maxLength < added)
                    throw new TokenizationException($"max_length {maxLength} is smaller than the {added} special tokens the template adds.");
                int budget = maxLength - added, toRemove = nA + nB - budget;
                switch (o.Truncation)
                {
                    case TruncationStrategy.LongestFirstPython:
                        // transformers tokenization_utils_base.truncate_sequences, LONGEST_FIRST branch.
                        for (int r = 0; r < toRemove; r++)
                            if (b == null || keepA > keepB) keepA--; else keepB--;
                        break;
                    case TruncationStrategy.LongestFirst when b == null:
                        keepA = budget;
                        break;
                    case TruncationStrategy.LongestFirst:
                        {
                            // Rust tokenizers/src/utils/truncation.rs: the shorter side (first on a tie) keeps at most half.
                            bool swap = nA > nB;
                            int n1 = swap ? nB : nA;
                            if (n1 > budget / 2) n1 = budget / 2;
                            int n2 = budget - n1;
                            (keepA, keepB) = swap ? (n2, n1) : (n1, n2);
                            keepA = Math.Min(keepA, nA); keepB = Math.Min(keepB, nB);
                            break;
                        }
                    case TruncationStrategy.OnlyFirst:
                        if (nA <= toRemove)
                            throw new TokenizationException($"only_first truncation to max_length {maxLength} would remove all {nA} tokens of the first sequence; use longest_first or a larger max_length.");
                        keepA = nA - toRemove;
                        break;
                    case TruncationStrategy.OnlySecond:
                        if (b == null) throw new TokenizationException("only_second truncation needs a text pair.");
                        if (nB <= toRemove)
                            throw new TokenizationException($"only_second truncation to max_length {maxLength} would remove all {nB} tokens of the second sequence; use longest_first or a larger max_length.");
                        keepB = nB - toRemove;
                        break;
                }
            }
        }

        List<(int Start, int Length)> winA, winB;
        if (o.Truncation == TruncationStrategy.LongestFirstPython)
        {
            winA = [o.TruncationSide == TruncationSide.Right ? (0, keepA) : (nA - keepA, keepA)];
            winB = [o.TruncationSide == TruncationSide.Right ? (0, keepB) : (nB - keepB, keepB)];
        }
        else
        {
            winA = Windows(nA, keepA, o.Stride, o.TruncationSide);
            winB = b == null ? [] : Windows(nB, keepB, o.Stride, o.TruncationSide);
        }
        var b0 = b == null ? default : winB[0];
        var main = Assemble(a, winA[0], b, b0, o.AddSpecialTokens);
        main.NumTruncatedTokens = nA - winA[0].Length + nB - (b == null ? 0 : b0.Length);
        if (winA.Count > 1 || winB.Count > 1)
        {
            // Order as Rust Encoding::merge_with: each A overflow with B and with B's overflows, then A with B's overflows.
            var overflow = new List<Encoding>();
            for (int i = 1; i < winA.Count; i++)
            {
                overflow.Add(Assemble(a, winA[i], b, b0, o.AddSpecialTokens));
                for (int j = 1; j < winB.Count; j++) overflow.Add(Assemble(a, winA[i], b, winB[j], o.AddSpecialTokens));
            }
            for (int j = 1; j < winB.Count; j++) overflow.Add(Assemble(a, winA[0], b, winB[j], o.AddSpecialTokens));
            main.Overflowing = overflow;
        }
        return main;
    }

    /// <summary>Rust <c>Encoding::truncate</c>: the kept window first, then overflowing windows advancing by keep − stride.</summary>
    static List<(int Start, int Length)> Windows(int n, int keep, int stride, TruncationSide side)
    {
        if (keep >= n) return [(0, n)];
        if (keep == 0) return [(0, 0), (0, n)];
        if (stride >= keep)
            throw new TokenizationException($"stride {stride} must be smaller than the {keep} content tokens kept per window (max_length minus special tokens).");
        var list = new List<(int, int)>();
        int step = keep - stride;
        if (side == TruncationSide.Right)
        {
            for (int start = 0; ; start += step)
            {
                int stop = Math.Min(start + keep, n);
                list.Add((start, stop - start));
                if (stop == n) break;
            }
        }
        else
        {
            for (int stop = n; ; stop -= step)
            {
                int start = Math.Max(0, stop - keep);
                list.Add((start, stop - start));
                if (start == 0) break;
            }
        }
        return list;
    }

    Encoding Assemble(TokenBuffer a, (int Start, int Length) wa, TokenBuffer? b, (int Start, int Length) wb, bool addSpecial)
    {
        var template = b == null ? _singleTemplate : _pairTemplate;
        int total = wa.Length + wb.Length;
        if (addSpecial) foreach (var p in template) if (p.SequenceIndex < 0) total += p.Ids.Length;
        var ids = new int[total];
        var typeIds = new int[total];
        var attention = new int[total];
        var special = new int[total];
        var offsets = new TokenOffset[total];
        var words = new int[total];
        var seqs = new int[total];
        Array.Fill(attention, 1);
        int k = 0;

        void CopySeq(TokenBuffer buf, (int Start, int Length) w, int seq, int typeId)
        {
            for (int i = w.Start, end = w.Start + w.Length; i < end; i++, k++)
            {
                int id = buf.Ids[i];
                ids[k] = id; typeIds[k] = typeId;
                offsets[k] = new TokenOffset(buf.Starts[i], buf.Ends[i]);
                words[k] = buf.Words[i]; seqs[k] = seq;
            }
        }

        if (!addSpecial)
        {
            CopySeq(a, wa, 0, 0);
            if (b != null) CopySeq(b, wb, 1, 1);
        }
        else
        {
            foreach (var p in template)
            {
                if (p.SequenceIndex == 0) CopySeq(a, wa, 0, p.TypeId);
                else if (p.SequenceIndex == 1) CopySeq(b!, wb, 1, p.TypeId);
                else
                    foreach (var id in p.Ids)
                    {
                        ids[k] = id; typeIds[k] = p.TypeId; special[k] = 1; words[k] = -1; seqs[k] = -1; k++;
                    }
            }
        }
        return new Encoding(ids, typeIds, attention, special, offsets, words, seqs, _idToToken) { WindowStart = wa.Start };
    }

    void TokenizeWords(IReadOnlyList<string> words, TokenBuffer output, Workspace ws)
    {
        for (int w = 0; w < words.Count; w++)
            TokenizeText(words[w] ?? throw new ArgumentException($"words[{w}] is null."), output, ws, w);
    }

    // Splits on added tokens, then normalizes, pre-tokenizes and WordPiece-encodes each plain segment.
    // fixedWord ≥ 0: every token gets this word id (pre-split input); −1: words are numbered by the pre-tokenizer.
    void TokenizeText(string text, TokenBuffer output, Workspace ws, int fixedWord)
    {
        int plainStart = 0, search = 0;
        if (_addedFirstChars != null)
        {
            while (search < text.Length)
            {
                int rel = text.AsSpan(search).IndexOfAny(_addedFirstChars);
                if (rel < 0) break;
                int at = search + rel;
                ws.Work += _addedByFirstChar[text[at]].Length;
                if (MatchAddedToken(text, at, plainStart, out var tok, out int ms, out int me))
                {
                    TokenizePlain(text, plainStart, ms, output, ws, fixedWord);
                    output.Add(tok.Id, ms, me, fixedWord >= 0 ? fixedWord : output.NextWord++);
                    plainStart = search = me;
                }
                else search = Math.Max(at + 1, me);
            }
        }
        TokenizePlain(text, plainStart, text.Length, output, ws, fixedWord);
    }

    // Leftmost-longest as the Rust AddedVocabulary's Aho-Corasick matcher: the longest token starting at `at` is THE match;
    // if it violates single_word it is discarded and the search resumes after it (shorter tokens are not retried).
    // Returns false with end > at for a discarded match, false with end == at when nothing starts here.
    bool MatchAddedToken(string text, int at, int floor, out AddedToken token, out int start, out int end)
    {
        foreach (var t in _addedByFirstChar[text[at]])
        {
            if (!text.AsSpan(at).StartsWith(t.Content, StringComparison.Ordinal)) continue;
            int s = at, e = at + t.Content.Length;
            token = t;
            if (t.SingleWord && ((s > 0 && IsWordChar(text[s - 1])) || (e < text.Length && IsWordChar(text[e]))))
            {
                start = at; end = e;
                return false;
            }
            if (t.LStrip) while (s > floor && char.IsWhiteSpace(text[s - 1])) s--;
            if (t.RStrip) while (e < text.Length && char.IsWhiteSpace(text[e])) e++;
            start = s; end = e;
            return true;
        }
        token = null!; start = end = at;
        return false;
    }

    static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    void TokenizePlain(string text, int from, int to, TokenBuffer output, Workspace ws, int fixedWord)
    {
        if (from >= to) return;
        int n = NormalizeInto(_normalizer, text, from, to, ws);
        for (int i = 0; NextPreToken(ws.Norm.AsSpan(0, n), ref i, out int start, out int end, out bool punct);)
        {
            int word = fixedWord >= 0 ? fixedWord : output.NextWord++;
            if (!punct) ws.Work += end - start;
            WordPiece(start, end, output, ws, word);
        }
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
            var tok = IdToToken(id) ?? throw new TokenizationException($"token id {id} is outside the vocabulary (size {VocabSize}) of {Source}.");
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

    internal sealed class TokenBuffer
    {
        public int[] Ids = new int[64], Starts = new int[64], Ends = new int[64], Words = new int[64];
        public int Count, NextWord;

        public void Clear() { Count = 0; NextWord = 0; }

        public void Add(int id, int start, int end, int word)
        {
            if (Count == Ids.Length)
            {
                int size = Count * 2;
                Array.Resize(ref Ids, size); Array.Resize(ref Starts, size); Array.Resize(ref Ends, size); Array.Resize(ref Words, size);
            }
            Ids[Count] = id; Starts[Count] = start; Ends[Count] = end; Words[Count] = word; Count++;
        }
    }

    sealed class Workspace
    {
        [ThreadStatic] static Workspace? t_current;

        public char[] Norm = new char[512];
        public int[] NStart = new int[512], NEnd = new int[512];
        public readonly TokenBuffer A = new(), B = new();
        public long Work;

        public static Workspace Get() => t_current ??= new Workspace();

        /// <summary>Drops buffers a huge input grew, so a 1 MB text does not pin ~10 MB per thread forever.</summary>
        public void TrimIfLarge()
        {
            const int Limit = 1 << 16;
            if (Norm.Length > Limit) { Norm = new char[512]; NStart = new int[512]; NEnd = new int[512]; }
            if (A.Ids.Length > Limit || B.Ids.Length > Limit) t_current = null;
        }

        public void Ensure(int size)
        {
            if (Norm.Length >= size) return;
            int n = Math.Max(size, Norm.Length * 2);
            Array.Resize(ref Norm, n); Array.Resize(ref NStart, n); Array.Resize(ref NEnd, n);
        }
    }
}
