using System.Collections.Concurrent;
using Sharpformer.Pipelines;
using Sharpformer.Serving;

namespace Sharpformer.Tests.Serving;

/// <summary>
/// A deterministic stand-in model for testing the server's mechanics (batching, limits, errors, shutdown):
/// capitalised words are PER entities, classification is by length, embeddings count characters.
/// </summary>
public sealed class TestPipeline(ServingTask task, int delayMsPerBatch = 0) : IPipeline
{
    public ServingTask Task { get; } = task;
    public string ModelName => "test-model";
    public ConcurrentQueue<int> Batches { get; } = new();
    public int DelayMs { get; set; } = delayMsPerBatch;

    public IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken)
    {
        Batches.Enqueue(items.Count);
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        return items.Select(item => Run(item)).ToList();
    }

    object Run(ServingItem item)
    {
        var text = item.Text;
        if (text.Contains("boom", StringComparison.Ordinal)) throw new PipelineInputException("the text says boom.");
        switch (Task)
        {
            case ServingTask.Classify:
                var labels = new List<LabelScore> { new(text.Length > 10 ? "long" : "short", 0.75f), new(text.Length > 10 ? "short" : "long", 0.25f) };
                return labels.Take(item.TopK ?? 1).ToList();
            case ServingTask.Ner:
                return Words(text).Where(w => char.IsUpper(text[w.Start]))
                    .Select(w => new TokenEntity("PER", 0.9f, text[w.Start..w.End], w.Start, w.End)).ToList();
            case ServingTask.Embed:
                return new[] { text.Length, text.Count(char.IsUpper), text.Count(c => c == ' '), 1f };
            default:
                if (!text.Contains("[MASK]", StringComparison.Ordinal)) throw new PipelineInputException("no [MASK] token in the text.");
                return new List<IReadOnlyList<FillMaskCandidate>> { new List<FillMaskCandidate> { new(0.5f, 7, "x", text.Replace("[MASK]", "x")) } };
        }
    }

    static IEnumerable<(int Start, int End)> Words(string text)
    {
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && !char.IsLetter(text[i])) i++;
            int s = i;
            while (i < text.Length && char.IsLetter(text[i])) i++;
            if (i > s) yield return (s, i);
        }
    }

    public int CountTokens(string text) => Words(text).Count();

    public AttentionMaps Attention(string text, CancellationToken cancellationToken)
    {
        var tokens = new[] { "[CLS]" }.Concat(Words(text).Select(w => text[w.Start..w.End].ToLowerInvariant())).Append("[SEP]").ToArray();
        int n = tokens.Length;
        var data = new float[2 * 2 * n * n];
        // Layer l, head h: query q attends to key (q + l + h) mod n with 0.7, the rest spread evenly.
        for (int l = 0; l < 2; l++) for (int h = 0; h < 2; h++) for (int q = 0; q < n; q++) for (int k = 0; k < n; k++)
            data[((l * 2 + h) * n + q) * n + k] = k == (q + l + h) % n ? 0.7f + 0.3f / n : 0.3f / n;
        return new AttentionMaps(tokens, 2, 2, data);
    }
}
