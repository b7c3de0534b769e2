using System.Collections;

namespace Sharpformer.Data;

/// <summary>Options shared by every reader.</summary>
/// <param name="SkipMalformed">
/// false (default): the first malformed line throws <see cref="DataFormatException"/>.
/// true: malformed lines are skipped and listed in <see cref="ReadResult{T}.Skipped"/>; nothing is skipped silently.
/// </param>
public sealed record ReadOptions(bool SkipMalformed = false)
{
    public static ReadOptions Default { get; } = new();
}

/// <summary>A line a reader skipped because <see cref="ReadOptions.SkipMalformed"/> was set.</summary>
public sealed record SkippedLine(string File, int Line, string Reason)
{
    public override string ToString() => $"{File}:{Line}: {Reason}";
}

/// <summary>Examples read from a file, plus what was skipped and the label set used (if any).</summary>
/// <remarks>It is an <see cref="IReadOnlyList{T}"/> of the examples, so it can be used directly as the list.</remarks>
public sealed class ReadResult<T> : IReadOnlyList<T>
{
    public ReadResult(string file, IReadOnlyList<T> examples, IReadOnlyList<SkippedLine> skipped, LabelSet? labels = null)
    {
        File = file;
        Examples = examples;
        Skipped = skipped;
        Labels = labels;
    }

    public string File { get; }
    public IReadOnlyList<T> Examples { get; }
    public IReadOnlyList<SkippedLine> Skipped { get; }
    public int SkippedCount => Skipped.Count;
    public LabelSet? Labels { get; }

    public T this[int index] => Examples[index];
    public int Count => Examples.Count;
    public IEnumerator<T> GetEnumerator() => Examples.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Collects examples and skipped lines while a reader runs; enforces <see cref="ReadOptions.SkipMalformed"/>.</summary>
internal sealed class ReadCollector<T>(string file, ReadOptions? options)
{
    readonly List<T> _examples = [];
    readonly List<SkippedLine> _skipped = [];
    readonly bool _skip = options?.SkipMalformed ?? false;

    public string File { get; } = file;

    public void Add(T example) => _examples.Add(example);

    /// <summary>Throws the error, or records it when skipping is allowed.</summary>
    public void Malformed(DataFormatException error)
    {
        if (!_skip) throw error;
        _skipped.Add(new SkippedLine(error.File, error.Line, error.Reason));
    }

    public void Malformed(int line, string message) => Malformed(new DataFormatException(File, line, message));

    public ReadResult<T> Result(LabelSet? labels = null) => new(File, _examples, _skipped.OrderBy(s => s.Line).ToArray(), labels);
}
