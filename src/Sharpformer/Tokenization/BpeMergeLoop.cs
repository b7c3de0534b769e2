namespace Sharpformer.Tokenization;

/// <summary>
/// The merge loop of HF tokenizers' <c>BpeTrainer</c> (Rust <c>models/bpe/trainer.rs</c> <c>do_train</c>, step 5), shared by
/// <see cref="BpeTrainer"/> (byte-level BPE) and <see cref="WordPieceTrainer"/> (HF builds its WordPiece trainer on the
/// same BPE trainer).
/// </summary>
/// <remarks>
/// Pair counts (weighted by word counts) go into a max-heap ordered by count, then by the smaller (left id, right id).
/// A popped entry whose count is out of date is pushed back with the current count; otherwise its pair is merged in the
/// words it lists, the neighbouring pair counts change, and the pairs that gained occurrences are pushed with the words
/// they gained them in. The loop stops when the vocabulary reaches the target size, the heap is empty or the best count
/// is below the minimum frequency. As in HF the merged pair's own count is not decremented, so a pair can be merged
/// again later (in words that gained it afterwards); the caller sees each merge, repeats included.
/// </remarks>
internal static class BpeMergeLoop
{
    /// <param name="words">Symbol ids of each distinct word; merged in place.</param>
    /// <param name="counts">Occurrences of each word.</param>
    /// <param name="vocabularySize">Target vocabulary size.</param>
    /// <param name="minFrequency">Pairs seen fewer times are never merged.</param>
    /// <param name="currentVocabularySize">The vocabulary size now (read before every merge).</param>
    /// <param name="merge">Finds or adds the token made by (left, right) and returns its id.</param>
    /// <param name="onMerge">Called after each merge with (left, right, new id): record it, report progress, check cancellation.</param>
    public static void Run(List<int>[] words, long[] counts, int vocabularySize, long minFrequency, Func<int> currentVocabularySize,
        Func<int, int, int> merge, Action<int, int, int> onMerge)
    {
        var pairCounts = new Dictionary<long, long>();
        var whereToUpdate = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Length; w++)
        {
            var s = words[w];
            for (int i = 0; i + 1 < s.Count; i++)
            {
                long pair = Pair(s[i], s[i + 1]);
                pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + counts[w];
                if (!whereToUpdate.TryGetValue(pair, out var set)) whereToUpdate[pair] = set = [];
                set.Add(w);
            }
        }
        // Max-heap on count, then ascending pair: a min-heap on (−count, pair). Entries carry the count they were pushed with.
        var queue = new PriorityQueue<(long Pair, long Count, HashSet<int> Positions), (long NegCount, long Pair)>();
        void PushAll()
        {
            foreach (var (pair, positions) in whereToUpdate)
            {
                long count = pairCounts[pair];
                if (count > 0) queue.Enqueue((pair, count, positions), (-count, pair));
            }
            whereToUpdate.Clear();
        }
        PushAll();

        var changes = new List<(long Pair, int Delta)>();
        while (currentVocabularySize() < vocabularySize && queue.TryDequeue(out var top, out _))
        {
            long current = pairCounts[top.Pair];
            if (top.Count != current)
            {
                queue.Enqueue((top.Pair, current, top.Positions), (-current, top.Pair));
                continue;
            }
            if (top.Count < 1 || minFrequency > top.Count) break;
            int left = (int)(top.Pair >> 32), right = (int)(uint)top.Pair;
            int merged = merge(left, right);
            foreach (int w in top.Positions)
            {
                changes.Clear();
                MergeWord(words[w], left, right, merged, changes);
                foreach (var (pair, delta) in changes)
                {
                    pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + delta * counts[w];
                    if (delta > 0)
                    {
                        if (!whereToUpdate.TryGetValue(pair, out var set)) whereToUpdate[pair] = set = [];
                        set.Add(w);
                    }
                }
            }
            PushAll();
            onMerge(left, right, merged);
        }
    }

    internal static long Pair(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// HF <c>Word::merge</c>: merges every (left, right) occurrence of one word, scanning left to right (so "a a a" →
    /// "aa a"), and lists the pair changes: the neighbours' old pairs lose one, their pairs with the merged token gain one.
    /// </summary>
    internal static void MergeWord(List<int> symbols, int left, int right, int merged, List<(long Pair, int Delta)> changes)
    {
        for (int i = 0; i < symbols.Count; i++)
        {
            if (symbols[i] != left || i + 1 >= symbols.Count || symbols[i + 1] != right) continue;
            if (i > 0)
            {
                changes.Add((Pair(symbols[i - 1], left), -1));
                changes.Add((Pair(symbols[i - 1], merged), 1));
            }
            symbols[i] = merged;
            symbols.RemoveAt(i + 1);
            if (i + 1 < symbols.Count)
            {
                changes.Add((Pair(right, symbols[i + 1]), -1));
                changes.Add((Pair(merged, symbols[i + 1]), 1));
            }
        }
    }
}
