namespace Sharpformer.Metrics;

/// <summary>Word and phoneme error rates of a G2P system (errors over words; phoneme edits over reference phonemes).</summary>
/// <param name="Words">words scored.</param>
/// <param name="WordErrors">words whose prediction equals none of their references.</param>
/// <param name="PhonemeEdits">Σ over words of the smallest edit distance to a reference.</param>
/// <param name="ReferencePhonemes">Σ over words of the length of that (closest) reference.</param>
public sealed record G2PScore(int Words, int WordErrors, long PhonemeEdits, long ReferencePhonemes)
{
    public double Wer => Words == 0 ? 0 : (double)WordErrors / Words;
    public double Per => ReferencePhonemes == 0 ? 0 : (double)PhonemeEdits / ReferencePhonemes;
}

/// <summary>
/// The standard CMUdict G2P scoring (../shared/data/cmudict/SOURCE.md): stress digits stripped; a word is correct when the
/// prediction equals any of its references; PER = Σ min edit distance to a reference / Σ length of that reference
/// (among equally close references, the first in reference order).
/// </summary>
public static class G2PScoring
{
    /// <summary>Scores predictions against the references of each word (same order).</summary>
    public static G2PScore Score(IReadOnlyList<string[]> predicted, IReadOnlyList<IReadOnlyList<string[]>> references)
    {
        if (predicted.Count != references.Count) throw new ArgumentException($"{predicted.Count} predictions for {references.Count} words.", nameof(predicted));
        int errors = 0; long edits = 0, length = 0;
        for (int i = 0; i < predicted.Count; i++)
        {
            if (references[i].Count == 0) throw new ArgumentException($"Word {i} has no reference pronunciation.", nameof(references));
            var p = Strip(predicted[i]);
            int best = int.MaxValue, bestLength = 0;
            foreach (var r in references[i])
            {
                var rs = Strip(r);
                int d = EditDistance(p, rs);
                if (d < best) { best = d; bestLength = rs.Length; }
            }
            if (best != 0) errors++;
            edits += best; length += bestLength;
        }
        return new G2PScore(predicted.Count, errors, edits, length);
    }

    static string[] Strip(string[] phonemes) => phonemes.Select(p => p.TrimEnd('0', '1', '2')).ToArray();

    /// <summary>Levenshtein distance (unit insertions, deletions, substitutions).</summary>
    public static int EditDistance<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        var prev = new int[b.Count + 1]; var cur = new int[b.Count + 1];
        for (int j = 0; j <= b.Count; j++) prev[j] = j;
        for (int i = 1; i <= a.Count; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Count; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (EqualityComparer<T>.Default.Equals(a[i - 1], b[j - 1]) ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Count];
    }
}
