using System.Buffers;

namespace Sharpformer.Tokenization;

/// <summary>
/// What every HF-compatible tokenizer shares, as the Rust <c>tokenizers::Tokenizer</c> pipeline around its model:
/// added-token split on the raw text → (model-specific normalizer, pre-tokenizer, model) → truncation →
/// post-processor template → padding, plus batch encoding on several threads.
/// </summary>
/// <remarks>
/// A subclass supplies only <see cref="TokenizeSegment"/>: the tokens of a stretch of text that contains no added
/// token. Everything else (the public Encode/EncodeBatch/Pad API, truncation windows with stride, the template,
/// padding side and multiple-of) lives here once, so <see cref="BertTokenizer"/> and <see cref="ByteLevelBpeTokenizer"/>
/// cannot drift apart. Instances are immutable and thread-safe; scratch buffers are per thread.
/// </remarks>
public abstract partial class Tokenizer
{
    private protected readonly string[] _idToToken;
    readonly AddedToken[] _addedTokens;
    private protected IReadOnlyList<AddedToken> AddedTokens => _addedTokens;
    readonly Dictionary<char, AddedToken[]> _addedByFirstChar = [];
    readonly SearchValues<char>? _addedFirstChars;
    readonly bool[] _isSpecialId;
    private protected readonly TemplatePiece[] _singleTemplate, _pairTemplate;
    long _work;

    internal sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);
    internal sealed record TemplatePiece(int SequenceIndex /* -1 = special token */, int[] Ids, int TypeId);

    private protected Tokenizer(string[] idToToken, IReadOnlyList<AddedToken> addedTokens, TemplatePiece[] singleTemplate,
        TemplatePiece[] pairTemplate, int? modelMaxLength, EncodeOptions? defaultOptions, string source)
    {
        _idToToken = idToToken;
        int size = idToToken.Length;
        foreach (var piece in singleTemplate.Concat(pairTemplate))
            foreach (var id in piece.Ids)
                if ((uint)id >= (uint)size)
                    throw new TokenizerFormatException($"{source}: post_processor special token id {id} is not in the vocabulary (ids 0..{size - 1}).");
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
        ModelMaxLength = modelMaxLength;
        DefaultOptions = defaultOptions ?? EncodeOptions.Default;
        Source = source;
    }

    /// <summary>
    /// The id → token table. Ids must be 0..n−1 without gaps: every id is checked against the token count before it
    /// indexes anything (a hostile id of −1 or 2³¹−1 is a format error, not an overflow or a 8 GB allocation), and two
    /// different tokens may not share an id (an added token may repeat its own vocabulary entry, as BERT's specials do).
    /// </summary>
    private protected static string[] BuildIdToToken(Dictionary<string, int> vocab, IReadOnlyList<AddedToken> addedTokens, string source)
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
    public string? PadToken { get; private protected init; }
    public int? PadTokenId { get; private protected init; }
    /// <summary>Options applied when a call passes none (from tokenizer.json <c>truncation</c>/<c>padding</c>, else no truncation/padding).</summary>
    public EncodeOptions DefaultOptions { get; }

    /// <summary>Model work (vocabulary lookups, characters visited, merges) since creation; lets tests prove linear running time by counting work.</summary>
    internal long WorkCounter => Interlocked.Read(ref _work);

    /// <summary>Number of tokens the post-processor adds to a single input or a pair.</summary>
    public int NumSpecialTokensToAdd(bool pair) =>
        (pair ? _pairTemplate : _singleTemplate).Where(p => p.SequenceIndex < 0).Sum(p => p.Ids.Length);

    /// <summary>The id of <paramref name="token"/> (a vocabulary entry or an added token), or null.</summary>
    public abstract int? TokenToId(string token);

    private protected int? AddedId(string token)
    {
        foreach (var t in _addedTokens) if (t.Content == token) return t.Id;
        return null;
    }

    /// <summary>The token string of <paramref name="id"/>, or null if the id is outside the vocabulary.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>Tokens of <paramref name="ids"/>; throws <see cref="TokenizationException"/> for an id outside the vocabulary.</summary>
    public string[] ConvertIdsToTokens(IEnumerable<int> ids) => [.. ids.Select(TokenOf)];

    private protected string TokenOf(int id) =>
        IdToToken(id) ?? throw new TokenizationException($"token id {id} is outside the vocabulary (size {VocabSize}) of {Source}.");

    /// <summary>True for ids of added tokens flagged special ([CLS], [SEP], [PAD], [MASK], [UNK], &lt;|endoftext|&gt;).</summary>
    public bool IsSpecialTokenId(int id) => (uint)id < (uint)_isSpecialId.Length && _isSpecialId[id];

    // ---------------------------------------------------------------- public encode API

    /// <summary>Encodes one text (HF <c>tokenizer(text)</c>).</summary>
    public Encoding Encode(string text, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeAndPad(new Input(text, null, null, null), options);
    }

    /// <summary>Encodes a text pair (HF <c>tokenizer(text, text_pair)</c>).</summary>
    public Encoding Encode(string text, string textPair, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(textPair);
        return EncodeAndPad(new Input(text, textPair, null, null), options);
    }

    /// <summary>Encodes pre-split words (HF <c>is_split_into_words=True</c>); word ids index <paramref name="words"/>, offsets are relative to each word.</summary>
    public Encoding EncodePretokenized(IReadOnlyList<string> words, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(words);
        return EncodeAndPad(new Input(null, null, words, null), options);
    }

    /// <summary>Encodes a pair of pre-split word lists.</summary>
    public Encoding EncodePretokenized(IReadOnlyList<string> words, IReadOnlyList<string> pairWords, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(words);
        ArgumentNullException.ThrowIfNull(pairWords);
        return EncodeAndPad(new Input(null, null, words, pairWords), options);
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

    Encoding EncodeAndPad(Input input, EncodeOptions? options)
    {
        var o = options ?? DefaultOptions;
        var e = EncodeOne(input, o, Scratch.Get());
        PadSingle(e, o);
        return e;
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
            var ws = Scratch.Get();
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
                var ws = Scratch.Get();
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

    Encoding EncodeOne(Input input, EncodeOptions o, Scratch ws)
    {
        var a = ws.A; a.Clear();
        if (input.Words != null) TokenizeWords(input.Words, a); else TokenizeText(input.Text!, a, -1);
        TokenBuffer? b = null;
        if (input.IsPair)
        {
            b = ws.B; b.Clear();
            if (input.PairWords != null) TokenizeWords(input.PairWords, b); else TokenizeText(input.Pair!, b, -1);
        }
        Interlocked.Add(ref _work, a.Work + (b?.Work ?? 0));
        ws.TrimIfLarge(); // a and b stay valid: a dropped scratch keeps its buffers until this call returns

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

    void TokenizeWords(IReadOnlyList<string> words, TokenBuffer output)
    {
        for (int w = 0; w < words.Count; w++)
            TokenizeText(words[w] ?? throw new ArgumentException($"words[{w}] is null."), output, w);
    }

    // Splits on added tokens, then hands each plain segment to the model-specific TokenizeSegment.
    // fixedWord ≥ 0: every token gets this word id (pre-split input); −1: words are numbered by the pre-tokenizer.
    void TokenizeText(string text, TokenBuffer output, int fixedWord)
    {
        int plainStart = 0, search = 0;
        if (_addedFirstChars != null)
        {
            while (search < text.Length)
            {
                int rel = text.AsSpan(search).IndexOfAny(_addedFirstChars);
                if (rel < 0) break;
                int at = search + rel;
                output.Work += _addedByFirstChar[text[at]].Length;
                if (MatchAddedToken(text, at, plainStart, out var tok, out int ms, out int me))
                {
                    if (ms > plainStart) TokenizeSegment(text, plainStart, ms, output, fixedWord);
                    output.Add(tok.Id, ms, me, fixedWord >= 0 ? fixedWord : output.NextWord++);
                    plainStart = search = me;
                }
                else search = Math.Max(at + 1, me);
            }
        }
        if (text.Length > plainStart) TokenizeSegment(text, plainStart, text.Length, output, fixedWord);
    }

    /// <summary>
    /// Appends the tokens of <c>text[from, to)</c> (non-empty, free of added tokens) to <paramref name="output"/>, with
    /// offsets into <paramref name="text"/>. Word ids: <paramref name="fixedWord"/> if ≥ 0, else <c>output.NextWord++</c>
    /// per pre-tokenizer word. Work (lookups, characters visited) is added to <c>output.Work</c>.
    /// </summary>
    private protected abstract void TokenizeSegment(string text, int from, int to, TokenBuffer output, int fixedWord);

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

    // ---------------------------------------------------------------- scratch

    /// <summary>The tokens of one sequence as parallel arrays, before truncation and the template.</summary>
    internal sealed class TokenBuffer
    {
        public int[] Ids = new int[64], Starts = new int[64], Ends = new int[64], Words = new int[64];
        public int Count, NextWord;
        /// <summary>Work units spent producing these tokens (see <see cref="WorkCounter"/>).</summary>
        public long Work;

        public void Clear() { Count = 0; NextWord = 0; Work = 0; }

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

    sealed class Scratch
    {
        [ThreadStatic] static Scratch? t_current;

        public readonly TokenBuffer A = new(), B = new();

        public static Scratch Get() => t_current ??= new Scratch();

        /// <summary>Drops buffers a huge input grew, so a 1 MB text does not pin ~10 MB per thread forever.</summary>
        public void TrimIfLarge()
        {
            const int Limit = 1 << 16;
            if (A.Ids.Length > Limit || B.Ids.Length > Limit) t_current = null;
        }
    }
}
