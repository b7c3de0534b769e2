using System.Collections.Concurrent;
using System.Text;

namespace Sharpformer.Tokenization;

/// <summary>
/// GPT-2-style byte-level BPE tokenizer reproducing Hugging Face <c>GPT2TokenizerFast</c> (Rust <c>tokenizers</c>):
/// added-token split on the raw text → ByteLevel pre-tokenizer (GPT-2 split regex, UTF-8 bytes as printable chars) →
/// BPE merges by rank → optional template → padding. Decoding maps token chars back to bytes and reads them as UTF-8.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Merges: within each pre-tokenizer piece the adjacent pair with the lowest rank (line of <c>merges.txt</c>)
/// is merged first, the leftmost on a tie, until no pair has a rank. Short pieces use an array scan with the pair
/// ranks kept up to date (two lookups per merge); pieces longer than <see cref="HeapThreshold"/> symbols use a
/// linked list and a min-heap of (rank, position), O(n log n), so a 1 MB run of one letter costs ~n log n, not n².</item>
/// <item>Results are cached per piece (the original UTF-16 text of the piece is the key), shared by all threads,
/// at most <see cref="CacheCapacity"/> entries of at most <see cref="MaxCachedPieceLength"/> chars.</item>
/// <item>Offsets are UTF-16 <c>[start, end)</c> into the input, leading space included (post-processor
/// <c>trim_offsets=false</c>); a token holding part of a character's bytes spans that whole character.</item>
/// </list>
/// Instances are immutable and thread-safe.
/// </remarks>
public sealed partial class ByteLevelBpeTokenizer : Tokenizer, ITokenizer
{
    /// <summary>Pieces with more byte symbols than this are merged with the heap; shorter ones with the array scan.</summary>
    internal const int HeapThreshold = 48;
    internal const int CacheCapacity = 100_000, MaxCachedPieceLength = 256;

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<long, long> _merges; // (left id << 32 | right id) → (rank << 32 | merged id)
    readonly int[] _byteId = new int[256];   // id of each byte's char, −1 if absent from the vocabulary
    readonly byte[][] _tokenBytes;           // decoded bytes of each id
    readonly int? _unkId;
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;
    int _cacheCount;

    internal ByteLevelBpeTokenizer(Dictionary<string, int> vocab, IReadOnlyList<(int Left, int Right)> merges, string? unkToken,
        IReadOnlyList<AddedToken> addedTokens, TemplatePiece[] singleTemplate, TemplatePiece[] pairTemplate,
        SpecialTokens specials, int? modelMaxLength, EncodeOptions? defaultOptions, string source)
        : base(BuildIdToToken(vocab, addedTokens, source), addedTokens, singleTemplate, pairTemplate, modelMaxLength, defaultOptions, source)
    {
        _vocab = vocab;
        Merges = merges;
        _merges = new Dictionary<long, long>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r) = merges[rank];
            var merged = _idToToken[l] + _idToToken[r];
            if (!vocab.TryGetValue(merged, out var id))
                throw new TokenizerFormatException($"{source}: merge {rank + 1} ('{_idToToken[l]} {_idToToken[r]}') makes '{merged}', which is not in the vocabulary.");
            _merges.TryAdd(Key(l, r), ((long)rank << 32) | (uint)id); // a repeated pair keeps its first (lowest) rank, as HF
        }
        for (int b = 0; b < 256; b++) _byteId[b] = vocab.TryGetValue(ByteLevel.ByteToChar[b].ToString(), out var id) ? id : -1;
        if (unkToken != null)
            _unkId = (vocab.TryGetValue(unkToken, out var unk) ? unk : AddedId(unkToken))
                ?? throw new TokenizerFormatException($"{source}: the unknown token '{unkToken}' is not in the vocabulary.");
        UnkToken = unkToken;
        _tokenBytes = new byte[_idToToken.Length][];
        for (int i = 0; i < _idToToken.Length; i++) _tokenBytes[i] = TokenBytes(_idToToken[i]);
        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        Specials = specials;
        if (specials.Pad is { } pad)
        {
            PadToken = pad;
            PadTokenId = TokenToId(pad) ?? throw new TokenizerFormatException($"{source}: the pad token '{pad}' is not in the vocabulary.");
        }
    }

    static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>ByteLevel decoder for one token: its chars as bytes, or its UTF-8 if a char is not a byte char (as HF).</summary>
    static byte[] TokenBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            char c = token[i];
            if (c >= ByteLevel.CharToByte.Length || ByteLevel.CharToByte[c] < 0) return System.Text.Encoding.UTF8.GetBytes(token);
            bytes[i] = (byte)ByteLevel.CharToByte[c];
        }
        return bytes;
    }

    /// <summary>The special-token roles of HF <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c>.</summary>
    public sealed record SpecialTokens(string? Bos = null, string? Eos = null, string? Pad = null);

    internal SpecialTokens Specials { get; }
    /// <summary>The merges as (left id, right id), in rank order.</summary>
    internal IReadOnlyList<(int Left, int Right)> Merges { get; }
    /// <summary>The model's unk_token (GPT-2 has none: every byte is in the vocabulary).</summary>
    public string? UnkToken { get; }
    public string? BosToken => Specials.Bos;
    public int? BosTokenId => Specials.Bos is null ? null : TokenToId(Specials.Bos);
    public string? EosToken => Specials.Eos;
    public int? EosTokenId => Specials.Eos is null ? null : TokenToId(Specials.Eos);

    public override int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : AddedId(token);

    Encoding ITokenizer.Encode(string text, string? textPair, EncodeOptions options) =>
        textPair is null ? Encode(text, options) : Encode(text, textPair, options);

    /// <remarks>Through <see cref="ITokenizer"/> cleanup defaults to on, as transformers 4.30's GPT-2 <c>decode</c>; <see cref="DecodeCleanup"/> has no effect here.</remarks>
    string ITokenizer.Decode(IEnumerable<int> ids, bool skipSpecialTokens, bool cleanUpTokenizationSpaces, DecodeCleanup cleanup) =>
        Decode(ids, skipSpecialTokens, cleanUpTokenizationSpaces);

    int? ITokenizer.MaskTokenId => null;

    /// <summary>The model's unknown-token id; −1 (matching no token) for GPT-2, whose byte alphabet never needs one.</summary>
    int ITokenizer.UnkTokenId => _unkId ?? -1;

    /// <summary>
    /// A tokenizer identical to this one but with <paramref name="padToken"/> as its pad token (HF
    /// <c>tokenizer.pad_token = tokenizer.eos_token</c>, the usual choice for GPT-2, which has none).
    /// </summary>
    public ByteLevelBpeTokenizer WithPadToken(string padToken)
    {
        ArgumentNullException.ThrowIfNull(padToken);
        if (TokenToId(padToken) is null) throw new TokenizationException($"pad token '{padToken}' is not in the vocabulary of {Source}.");
        return new ByteLevelBpeTokenizer(_vocab, Merges, UnkToken, AddedTokens, _singleTemplate, _pairTemplate,
            Specials with { Pad = padToken }, ModelMaxLength, DefaultOptions, Source);
    }

    // ---------------------------------------------------------------- encode

    private protected override void TokenizeSegment(string text, int from, int to, TokenBuffer output, int fixedWord)
    {
        var s = text.AsSpan(0, to);
        long work = 0;
        Span<int> map = stackalloc int[0];
        for (int i = from; i < to;)
        {
            int end = ByteLevel.NextPiece(s, i, ref work);
            int word = fixedWord >= 0 ? fixedWord : output.NextWord++;
            var piece = s[i..end];
            int[]? tokens = null;
            bool cacheable = piece.Length <= MaxCachedPieceLength;
            if (cacheable && _cacheLookup.TryGetValue(piece, out tokens)) work += piece.Length;
            else
            {
                tokens = MergePiece(piece, ref work);
                if (cacheable && Volatile.Read(ref _cacheCount) < CacheCapacity && _cacheLookup.TryAdd(piece, tokens))
                    Interlocked.Increment(ref _cacheCount);
            }
            EmitTokens(piece, i, tokens, output, word);
            i = end;
        }
        output.Work += work;
    }

    /// <summary>Appends the (id, byte length) pairs of <paramref name="tokens"/> with UTF-16 offsets; <paramref name="start"/> is the piece's offset.</summary>
    static void EmitTokens(ReadOnlySpan<char> piece, int start, int[] tokens, TokenBuffer output, int word)
    {
        bool ascii = System.Text.Ascii.IsValid(piece);
        if (ascii)
        {
            int pos = start;
            for (int t = 0; t < tokens.Length; t += 2)
            {
                output.Add(tokens[t], pos, pos + tokens[t + 1], word);
                pos += tokens[t + 1];
            }
            return;
        }
        // Walk bytes and chars together: a token starts at the char holding its first byte and ends after the char
        // holding its last byte.
        Span<byte> buf = stackalloc byte[4];
        int ci = 0, charBytesLeft = 0, charStart = 0, charLen = 0;
        for (int t = 0; t < tokens.Length; t += 2)
        {
            int tokStart = -1, tokEnd = 0;
            for (int b = 0; b < tokens[t + 1]; b++)
            {
                if (charBytesLeft == 0)
                {
                    charStart = ci;
                    charBytesLeft = ByteLevel.EncodeUtf8(piece, ci, buf, out charLen);
                    ci += charLen;
                }
                if (tokStart < 0) tokStart = charStart;
                charBytesLeft--;
                tokEnd = charStart + charLen;
            }
            output.Add(tokens[t], start + tokStart, start + tokEnd, word);
        }
    }

    /// <summary>BPE over the UTF-8 bytes of one piece: (id, byte length) pairs, interleaved. Tests pass
    /// <paramref name="heapThreshold"/> 0 or <see cref="int.MaxValue"/> to force one merge algorithm.</summary>
    internal int[] MergePiece(ReadOnlySpan<char> piece, ref long work, int heapThreshold = HeapThreshold)
    {
        // UTF-8 is at most 3 bytes per UTF-16 unit.
        int cap = piece.Length * 3;
        byte[]? rented = null;
        Span<byte> bytes = cap <= 768 ? stackalloc byte[cap] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(cap));
        int nb = 0;
        for (int i = 0; i < piece.Length;)
        {
            nb += ByteLevel.EncodeUtf8(piece, i, bytes[nb..], out int cl);
            i += cl;
        }
        var ids = new int[nb];
        var lens = new int[nb];
        int n = 0, dropped = 0;
        for (int b = 0; b < nb; b++)
        {
            int id = _byteId[bytes[b]];
            if (id < 0)
            {
                // A byte without a vocabulary entry becomes unk_token, or is dropped without one (as HF BPE); a dropped
                // byte's length goes to a neighbour so the offsets of the following tokens stay right.
                if (_unkId is not int unk)
                {
                    if (n > 0) lens[n - 1]++; else dropped++;
                    continue;
                }
                id = unk;
            }
            ids[n] = id; lens[n] = 1 + dropped; dropped = 0; n++;
        }
        if (rented != null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        n = n > heapThreshold ? MergeWithHeap(ids, lens, n, ref work) : MergeWithScan(ids, lens, n, ref work);
        var result = new int[2 * n];
        for (int k = 0; k < n; k++) { result[2 * k] = ids[k]; result[2 * k + 1] = lens[k]; }
        return result;
    }

    long PairRank(int left, int right, ref long work)
    {
        work++;
        return _merges.TryGetValue(Key(left, right), out var v) ? v : long.MaxValue;
    }

    /// <summary>Merges in place by repeatedly taking the lowest-ranked adjacent pair (leftmost on ties); returns the new length. O(n²) compares, 2 lookups per merge.</summary>
    internal int MergeWithScan(int[] ids, int[] lens, int n, ref long work)
    {
        if (n < 2) return n;
        var ranks = new long[n - 1]; // (rank << 32 | merged id) of pair (k, k+1)
        for (int k = 0; k < n - 1; k++) ranks[k] = PairRank(ids[k], ids[k + 1], ref work);
        while (n > 1)
        {
            int best = -1;
            long bestRank = long.MaxValue;
            for (int k = 0; k < n - 1; k++)
                if (ranks[k] < bestRank) { bestRank = ranks[k]; best = k; }
            work += n;
            if (best < 0) break;
            ids[best] = (int)(bestRank & 0xFFFFFFFF);
            lens[best] += lens[best + 1];
            Array.Copy(ids, best + 2, ids, best + 1, n - best - 2);
            Array.Copy(lens, best + 2, lens, best + 1, n - best - 2);
            if (best + 1 < n - 1) Array.Copy(ranks, best + 2, ranks, best + 1, n - best - 3);
            n--;
            if (best > 0) ranks[best - 1] = PairRank(ids[best - 1], ids[best], ref work);
            if (best < n - 1) ranks[best] = PairRank(ids[best], ids[best + 1], ref work);
        }
        return n;
    }

    /// <summary>
    /// The same merges over a doubly linked list with a min-heap of (rank, left position); stale heap entries are
    /// skipped when popped. Each merge pushes at most two pairs, so the heap sees at most 3n entries: O(n log n).
    /// </summary>
    internal int MergeWithHeap(int[] ids, int[] lens, int n, ref long work)
    {
        var prev = new int[n];
        var next = new int[n];
        for (int k = 0; k < n; k++) { prev[k] = k - 1; next[k] = k + 1 < n ? k + 1 : -1; }
        // Priority: rank first, then the left symbol's original position (leftmost wins ties, as HF).
        var heap = new PriorityQueue<(int Pos, int Left, int Right, int Merged), (int Rank, int Pos)>(n);
        void Push(int pos, ref long w)
        {
            int r = next[pos];
            if (r < 0) return;
            long v = PairRank(ids[pos], ids[r], ref w);
            if (v == long.MaxValue) return;
            heap.Enqueue((pos, ids[pos], ids[r], (int)(v & 0xFFFFFFFF)), ((int)(v >> 32), pos));
            w += 1 + BitLength(heap.Count);
        }
        for (int k = 0; k < n - 1; k++) Push(k, ref work);
        var alive = new bool[n];
        Array.Fill(alive, true);
        while (heap.TryDequeue(out var top, out _))
        {
            work += 1 + BitLength(heap.Count);
            int p = top.Pos, r = next[p];
            if (!alive[p] || r < 0 || ids[p] != top.Left || ids[r] != top.Right) continue; // stale
            ids[p] = top.Merged;
            lens[p] += lens[r];
            alive[r] = false;
            next[p] = next[r];
            if (next[r] >= 0) prev[next[r]] = p;
            if (prev[p] >= 0) Push(prev[p], ref work);
            Push(p, ref work);
        }
        int count = 0;
        for (int k = 0; k >= 0; k = next[k]) { ids[count] = ids[k]; lens[count] = lens[k]; count++; }
        return count;
    }

    static int BitLength(int x) => 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)x);

    // ---------------------------------------------------------------- decode

    /// <summary>
    /// Ids back to text as the Rust ByteLevel decoder: each token's chars mapped back to bytes (an added token whose
    /// chars are not all byte chars contributes its own UTF-8), all bytes read as UTF-8 with invalid sequences → U+FFFD.
    /// </summary>
    /// <param name="ids">Token ids; an id outside the vocabulary is a <see cref="TokenizationException"/>.</param>
    /// <param name="skipSpecialTokens">Drop added tokens flagged special (<c>&lt;|endoftext|&gt;</c>).</param>
    /// <param name="cleanUpTokenizationSpaces">transformers' <c>clean_up_tokenization_spaces</c> (" ." → "." …), which
    /// transformers 4.30 applies by default for GPT-2; the Rust decoder (and the fixtures) do not.</param>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            TokenOf(id);
            if (skipSpecialTokens && IsSpecialTokenId(id)) continue;
            bytes.AddRange(_tokenBytes[id]);
        }
        var text = System.Text.Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
        return cleanUpTokenizationSpaces ? BertTokenizer.CleanUp(text, false) : text;
    }

    /// <summary>Decodes every row of a batch.</summary>
    public IReadOnlyList<string> DecodeBatch(IEnumerable<IEnumerable<int>> batch, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = false) =>
        [.. batch.Select(ids => Decode(ids, skipSpecialTokens, cleanUpTokenizationSpaces))];

    /// <summary>An incremental decoder for streaming generation: see <see cref="DecodeStream"/>.</summary>
    public DecodeStream CreateDecodeStream(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    /// <summary>
    /// Decodes ids one at a time (HF <c>DecodeStream</c>): <see cref="Step"/> returns the text completed by the id, holding
    /// back the bytes of a character split across tokens until it is complete; <see cref="Flush"/> returns what is left.
    /// The concatenated outputs equal <see cref="Decode"/> of all ids.
    /// </summary>
    /// <remarks>
    /// Bytes are released up to the last UTF-8 lead byte whose sequence is still short of its length. UTF-8 decoding
    /// restarts at every lead byte, so cutting there never changes the text (invalid bytes still become U+FFFD).
    /// Not thread-safe: one stream per generated sequence.
    /// </remarks>
    public sealed class DecodeStream
    {
        readonly ByteLevelBpeTokenizer _tokenizer;
        readonly bool _skipSpecial;
        readonly List<byte> _pending = [];

        internal DecodeStream(ByteLevelBpeTokenizer tokenizer, bool skipSpecialTokens) { _tokenizer = tokenizer; _skipSpecial = skipSpecialTokens; }

        /// <summary>Adds one id; returns the newly completed text ("" while a character is incomplete).</summary>
        public string Step(int id)
        {
            _tokenizer.TokenOf(id);
            if (_skipSpecial && _tokenizer.IsSpecialTokenId(id)) return "";
            _pending.AddRange(_tokenizer._tokenBytes[id]);
            int keep = IncompleteTail(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending));
            return Take(_pending.Count - keep);
        }

        /// <summary>The remaining bytes as text (an incomplete character becomes U+FFFD).</summary>
        public string Flush() => Take(_pending.Count);

        string Take(int count)
        {
            if (count == 0) return "";
            var text = System.Text.Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..count]);
            _pending.RemoveRange(0, count);
            return text;
        }

        /// <summary>Length of a trailing lead byte plus continuation bytes that is shorter than the lead byte announces.</summary>
        static int IncompleteTail(ReadOnlySpan<byte> b)
        {
            for (int k = 1; k <= Math.Min(3, b.Length); k++)
            {
                byte c = b[^k];
                if (c is >= 0x80 and <= 0xBF) continue; // continuation byte: look further back
                int need = c >= 0xF0 && c <= 0xF7 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                return c >= 0xC0 && c <= 0xF7 && k < need ? k : 0;
            }
            return 0;
        }
    }
}
