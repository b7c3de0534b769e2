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
    /// <summary>Model calls wait here: <c>Reset</c> it to hold the model, so tests need no timing guesses.</summary>
    public ManualResetEventSlim Gate { get; } = new(initialState: true);
    /// <summary>Every text the model was given, in order (a text run twice appears twice).</summary>
    public ConcurrentQueue<string> Seen { get; } = new();
    /// <summary>The most model calls (batches and attention) that ever overlapped; the server's one worker keeps it at 1.</summary>
    public int MaxConcurrentCalls => _maxConcurrent;
    int _concurrent, _maxConcurrent;

    public IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken)
    {
        using var _ = Enter();
        Batches.Enqueue(items.Count);
        foreach (var item in items) Seen.Enqueue(item.Text);
        Gate.Wait();
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        return items.Select(item => Run(item)).ToList();
    }

    sealed class Exit(Action exit) : IDisposable { public void Dispose() => exit(); }

    IDisposable Enter()
    {
        int now = Interlocked.Increment(ref _concurrent);
        int max;
        while ((max = _maxConcurrent) < now && Interlocked.CompareExchange(ref _maxConcurrent, now, max) != max) { }
        return new Exit(() => Interlocked.Decrement(ref _concurrent));
    }

    object Run(ServingItem item)
    {
        var text = item.Text;
        if (text.Contains("boom", StringComparison.Ordinal)) throw new PipelineInputException("the text says boom.");
        if (text.Contains("crash", StringComparison.Ordinal)) throw new InvalidOperationException("a bug in the model code.");
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

    /// <summary>Rejects what <see cref="Run"/> would reject up front, except "boom", which stands for a failure only the model finds.</summary>
    public int Validate(ServingItem item, int index)
    {
        if (Task == ServingTask.FillMask && !item.Text.Contains("[MASK]", StringComparison.Ordinal))
            throw new PipelineInputException($"input {index}: no [MASK] token in the text.");
        return CountTokens(item.Text) + 2;
    }

    public int CountTokens(string text) => Words(text).Count();

    public AttentionMaps Attention(string text, CancellationToken cancellationToken)
    {
        using var _ = Enter();
        Batches.Enqueue(1);
        Gate.Wait();
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        var tokens = new[] { "[CLS]" }.Concat(Words(text).Select(w => text[w.Start..w.End].ToLowerInvariant())).Append("[SEP]").ToArray();
        int n = tokens.Length;
        var data = new float[2 * 2 * n * n];
        // Layer l, head h: query q attends to key (q + l + h) mod n with 0.7, the rest spread evenly.
        for (int l = 0; l < 2; l++) for (int h = 0; h < 2; h++) for (int q = 0; q < n; q++) for (int k = 0; k < n; k++)
            data[((l * 2 + h) * n + q) * n + k] = k == (q + l + h) % n ? 0.7f + 0.3f / n : 0.3f / n;
        return new AttentionMaps(tokens, 2, 2, data);
    }
}
