namespace Sharpformer.Tokenization;

/// <summary>Settings of <see cref="BpeTrainer"/> (HF <c>BpeTrainer</c> with the ByteLevel pre-tokenizer).</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>Target vocabulary size, special tokens and the 256-byte alphabet included (HF <c>vocab_size</c>).</summary>
    public int VocabSize { get; init; } = 30_000;
    /// <summary>Pairs seen fewer times than this are never merged (HF <c>min_frequency</c>).</summary>
    public long MinFrequency { get; init; }
    /// <summary>Tokens given the first ids, in order, and matched in raw text when encoding (HF <c>special_tokens</c>).</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = [];
    /// <summary>Start from all 256 byte characters (HF <c>initial_alphabet=ByteLevel.alphabet()</c>); false = only the bytes seen.</summary>
    public bool FullByteAlphabet { get; init; } = true;
}

/// <summary>
/// Learns a GPT-2-style byte-level BPE vocabulary from text, as HF <c>tokenizers</c>' <c>BpeTrainer</c> (Rust
/// <c>models/bpe/trainer.rs</c>) does with the ByteLevel pre-tokenizer, so the same corpus gives the same merges.
/// </summary>
/// <remarks>
/// <list type="number">
/// <item>Every text is split by the GPT-2 regex and each piece's UTF-8 bytes written as byte characters; pieces are
/// counted (added tokens are not split out, as in HF training).</item>
/// <item>Ids: special tokens first, then the alphabet (seen characters plus the 256 byte characters) sorted by code
/// point, then one id per new merge result.</item>
/// <item>Merges: HF's merge loop (<see cref="BpeMergeLoop"/>, shared with <see cref="WordPieceTrainer"/>), until the
/// vocabulary reaches <see cref="BpeTrainerOptions.VocabSize"/> or no pair reaches <see cref="BpeTrainerOptions.MinFrequency"/>.
/// A pair HF merges twice (its own count is never decremented) keeps its last rank in the saved merge list, as HF
/// collects the merges into a map where later ranks overwrite earlier ones.</item>
/// </list>
/// </remarks>
public static class BpeTrainer
{
    /// <summary>Trains on <paramref name="texts"/> (each pre-tokenized on its own, as one line of a file with its line ending).</summary>
    public static ByteLevelBpeTokenizer Train(IEnumerable<string> texts, BpeTrainerOptions? options = null,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var o = options ?? new BpeTrainerOptions();
        if (o.VocabSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"VocabSize must be positive (got {o.VocabSize}).");
        if (o.SpecialTokens.Any(string.IsNullOrEmpty)) throw new ArgumentException("special tokens must be non-empty strings.", nameof(options));

        // 1. Word counts, keyed by the original piece first (cheap), then by its byte-level form.
        var pieceCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = pieceCounts.GetAlternateLookup<ReadOnlySpan<char>>();
        long work = 0, lines = 0;
        foreach (var text in texts)
        {
            if ((++lines & 1023) == 0) cancellationToken.ThrowIfCancellationRequested();
            var s = text.AsSpan();
            for (int i = 0; i < s.Length;)
            {
                int end = ByteLevel.NextPiece(s, i, ref work);
                var piece = s[i..end];
                if (lookup.TryGetValue(piece, out var c)) lookup[piece] = c + 1; else lookup[piece] = 1;
                i = end;
            }
        }
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (piece, c) in pieceCounts)
        {
            var mapped = ByteLevel.Map(piece);
            wordCounts[mapped] = wordCounts.GetValueOrDefault(mapped) + c;
        }
        progress?.Report($"{lines} texts, {wordCounts.Count} distinct words");

        // 2. Vocabulary: specials, then the alphabet by code point.
        var idToWord = new List<string>();
        var wordToId = new Dictionary<string, int>(StringComparer.Ordinal);
        void AddToken(string t) { if (wordToId.TryAdd(t, idToWord.Count)) idToWord.Add(t); }
        foreach (var t in o.SpecialTokens) AddToken(t);
        var alphabet = new SortedSet<int>();
        foreach (var w in wordCounts.Keys) foreach (var rune in w.EnumerateRunes()) alphabet.Add(rune.Value);
        if (o.FullByteAlphabet) foreach (var c in ByteLevel.ByteToChar) alphabet.Add(c);
        foreach (var cp in alphabet) AddToken(char.ConvertFromUtf32(cp));

        // 3. Words as symbol ids.
        var words = new List<int>[wordCounts.Count];
        var counts = new long[wordCounts.Count];
        int wi = 0;
        foreach (var (w, c) in wordCounts)
        {
            var symbols = new List<int>(w.Length);
            foreach (var rune in w.EnumerateRunes()) symbols.Add(wordToId[rune.ToString()]);
            words[wi] = symbols; counts[wi] = c; wi++;
        }

        // 4-5. Merges (the loop HF's BpeTrainer runs).
        var merges = new List<(long Pair, int NewId)>();
        BpeMergeLoop.Run(words, counts, o.VocabSize, o.MinFrequency, () => wordToId.Count,
            (a, b) =>
            {
                var newToken = idToWord[a] + idToWord[b];
                if (!wordToId.TryGetValue(newToken, out int newId)) { newId = idToWord.Count; AddToken(newToken); }
                return newId;
            },
            (a, b, newId) =>
            {
                merges.Add((BpeMergeLoop.Pair(a, b), newId));
                if ((merges.Count & 255) != 0) return;
                cancellationToken.ThrowIfCancellationRequested();
                if ((merges.Count & 1023) == 0) progress?.Report($"{merges.Count} merges, vocabulary {wordToId.Count}/{o.VocabSize}");
            });

        // A pair merged twice keeps its last rank (HF collects the merges into a map, later ranks overwriting earlier).
        var lastRank = new Dictionary<long, int>();
        for (int r = 0; r < merges.Count; r++) lastRank[merges[r].Pair] = r;
        var finalMerges = new List<(int, int)>(lastRank.Count);
        for (int r = 0; r < merges.Count; r++)
            if (lastRank[merges[r].Pair] == r) finalMerges.Add(((int)(merges[r].Pair >> 32), (int)(uint)merges[r].Pair));
        progress?.Report($"done: {finalMerges.Count} merges, vocabulary {wordToId.Count}");

        var added = o.SpecialTokens.Distinct().Select(t => new Tokenizer.AddedToken(wordToId[t], t, true, false, false, false, false)).ToList();
        return new ByteLevelBpeTokenizer(wordToId, finalMerges, null, added, [new(0, [], 0)], [new(0, [], 0), new(1, [], 1)],
            ByteLevelBpeTokenizer.DefaultSpecials(wordToId, added), null, null, "(trained BPE)");
    }

    /// <summary>
    /// Trains on text files read as HF <c>Tokenizer.train(files)</c> reads them: line by line, each line keeping its
    /// line ending (so a trailing <c>\n</c> is part of the last piece of every line).
    /// </summary>
    public static ByteLevelBpeTokenizer TrainFromFiles(IEnumerable<string> files, BpeTrainerOptions? options = null,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        return Train(files.SelectMany(LinesWithEndings), options, progress, cancellationToken);
    }

    static IEnumerable<string> LinesWithEndings(string path)
    {
        var text = File.ReadAllText(path, System.Text.Encoding.UTF8);
        for (int start = 0; start < text.Length;)
        {
            int nl = text.IndexOf('\n', start);
            int end = nl < 0 ? text.Length : nl + 1;
            yield return text[start..end];
            start = end;
        }
    }

}
