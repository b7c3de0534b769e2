using System.Buffers;
using System.IO.Compression;
using System.Text;

namespace Sharpformer.Data;

/// <summary>How <see cref="Corpus.Clean"/> cleans and splits a pretraining corpus.</summary>
public sealed record CorpusOptions
{
    /// <summary>Drop a line whose normalised text was already seen (across all sources), canonically equivalent spellings included.</summary>
    public bool Deduplicate { get; init; } = true;
    /// <summary>Every n-th kept line (the 100th, 200th, …) is held out for evaluation; 0 = none.</summary>
    public int HoldOutEvery { get; init; } = 100;
    /// <summary>false: a line with invalid UTF-8 throws <see cref="DataFormatException"/> (file:line); true: it is skipped and counted.</summary>
    public bool SkipInvalidLines { get; init; }
}

/// <summary>One corpus line after normalisation.</summary>
/// <param name="Text">The text with whitespace runs collapsed to one space, trimmed; never empty.</param>
/// <param name="File">Source file.</param>
/// <param name="Line">1-based line in a text file; 1-based example number in a task file.</param>
/// <param name="HeldOut">True for evaluation lines (see <see cref="CorpusOptions.HoldOutEvery"/>).</param>
public readonly record struct CorpusLine(string Text, string File, int Line, bool HeldOut);

/// <summary>Counts of what <see cref="Corpus.Clean"/> did, updated while it streams.</summary>
public sealed class CorpusStatistics
{
    public int Files { get; internal set; }
    public long LinesRead { get; internal set; }
    public long EmptyLines { get; internal set; }
    public long Duplicates { get; internal set; }
    public long InvalidLines { get; internal set; }
    public long TrainLines { get; internal set; }
    public long HeldOutLines { get; internal set; }
    /// <summary>UTF-16 characters of the kept (train + held-out) lines.</summary>
    public long Characters { get; internal set; }
}

/// <summary>The labelled task data whose train split may serve as pretraining text.</summary>
public enum TaskText
{
    /// <summary>AG News <c>train_subset.csv</c> (<see cref="AgNews.ReadTrainSubset"/>): one text per row.</summary>
    AgNews,
    /// <summary>CoNLL-2003 train (<see cref="Conll.Read(string, ConllOptions?, ReadOptions?)"/>): one sentence per example, words joined by spaces.</summary>
    Conll,
    /// <summary>emotion <c>train.txt</c> (<see cref="Emotion.Read(string, LabelSet?, ReadOptions?)"/>): one tweet per line.</summary>
    Emotion,
}

/// <summary>
/// Plain-text corpora for language-model pretraining: <c>.txt</c> / <c>.txt.gz</c> files (UTF-8, one paragraph or
/// sentence per line) and the train splits of the task datasets, streamed line by line, normalised, de-duplicated,
/// and split into train and held-out lines.
/// </summary>
/// <remarks>
/// Normalisation collapses whitespace only; lower-casing, accent stripping and control characters are the
/// tokenizer's BertNormalizer's job. Text is not recomposed to NFC (the library runs with invariant globalization,
/// where .NET has no Unicode normalisation), but the de-duplication key is the canonical decomposition, so "café"
/// spelled with U+00E9 or with e + U+0301 counts as one line. De-duplication keeps a 64-bit hash per distinct line
/// (≈ 30 bytes per line in the set — ~15 MB for the 450 k lines of the shared 8.2 M-word corpus); two different
/// lines collide with probability ≈ n²/2⁶⁵ (≈ 10⁻⁸ for a million lines), which would drop one of them.
/// </remarks>
public static class Corpus
{
    /// <summary>
    /// The corpus files of <paramref name="paths"/>: a directory contributes its <c>*.txt</c> and <c>*.txt.gz</c>
    /// files (not recursively), in ordinal name order; a file is taken as given.
    /// </summary>
    public static IReadOnlyList<string> FindFiles(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
            {
                var found = Directory.EnumerateFiles(p)
                    .Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".txt.gz", StringComparison.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal).ToList();
                if (found.Count == 0) throw new SharpformerException($"Corpus folder '{p}' holds no .txt or .txt.gz files.");
                files.AddRange(found);
            }
            else if (File.Exists(p)) files.Add(p);
            else throw new SharpformerException($"Corpus path '{p}' is neither a file nor a folder.");
        }
        return files;
    }

    /// <summary>
    /// Streams the raw lines of a <c>.txt</c> or gzip-compressed <c>.gz</c> file (a UTF-8 BOM is dropped, "\r\n"
    /// and "\n" end lines). Invalid UTF-8 throws <see cref="DataFormatException"/> naming the file, the line and
    /// the byte; with <paramref name="skipInvalid"/> the line is yielded as null instead.
    /// </summary>
    public static IEnumerable<(string? Text, int Line)> ReadLines(string path, bool skipInvalid = false)
    {
        if (!File.Exists(path)) throw new SharpformerException($"Corpus file not found: '{path}'.");
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        var line = new ArrayBufferWriter<byte>(1 << 12);
        try
        {
            int lineNo = 0;
            bool first = true;
            while (true)
            {
                int read;
                try { read = stream.Read(buffer, 0, buffer.Length); }
                catch (InvalidDataException e)
                {
                    throw new DataFormatException(path, lineNo + 1, $"the gzip data is corrupt ({e.Message}); re-create the file.");
                }
                if (read == 0) break;
                int start = 0;
                for (int i = 0; i < read; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    line.Write(buffer.AsSpan(start, i - start));
                    start = i + 1;
                    yield return Decode(line.WrittenSpan, path, ++lineNo, ref first, skipInvalid);
                    line.ResetWrittenCount();
                }
                line.Write(buffer.AsSpan(start, read - start));
            }
            if (line.WrittenCount > 0) yield return Decode(line.WrittenSpan, path, ++lineNo, ref first, skipInvalid);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    static (string? Text, int Line) Decode(ReadOnlySpan<byte> bytes, string path, int lineNo, ref bool first, bool skipInvalid)
    {
        if (first && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        first = false;
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        var chars = ArrayPool<char>.Shared.Rent(bytes.Length);
        try
        {
            var status = System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out int read, out int written, replaceInvalidSequences: false);
            if (status == OperationStatus.Done) return (new string(chars, 0, written), lineNo);
            if (skipInvalid) return (null, lineNo);
            throw new DataFormatException(path, lineNo, $"invalid UTF-8 byte 0x{bytes[read]:X2} at byte {read + 1} of the line; re-save the file as UTF-8 or pass SkipInvalidLines (--skip-invalid).");
        }
        finally { ArrayPool<char>.Shared.Return(chars); }
    }

    /// <summary>Whitespace runs (any Unicode space, tab, line break) → one space, trimmed.</summary>
    public static string NormalizeLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var sb = new StringBuilder(line.Length);
        bool space = false;
        foreach (char c in line)
        {
            if (char.IsWhiteSpace(c)) { space = sb.Length > 0; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(c);
        }
        return sb.Length == line.Length ? line : sb.ToString();
    }

    /// <summary>
    /// The texts of a task's train split, in file order, for domain adaptation. A file whose name contains "test"
    /// is refused: test splits must never become training text.
    /// </summary>
    public static IEnumerable<CorpusLine> ReadTaskTrain(TaskText task, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Path.GetFileName(path).Contains("test", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{path}' looks like a test split; pretraining may only use train splits (held-out evaluation comes from the corpus itself).", nameof(path));
        IEnumerable<string> texts = task switch
        {
            TaskText.AgNews => AgNews.ReadTrainSubset(path).Select(e => e.Text),
            TaskText.Conll => Conll.Read(path).Select(e => string.Join(' ', e.Words)),
            TaskText.Emotion => Emotion.Read(path).Select(e => e.Text),
            _ => throw new ArgumentOutOfRangeException(nameof(task), task, "Unknown task."),
        };
        return texts.Select((t, i) => new CorpusLine(t, path, i + 1, false));
    }

    /// <summary>The train file of <paramref name="task"/> in a data folder laid out as ../shared/data.</summary>
    public static string TaskTrainFile(TaskText task, string dataFolder) => task switch
    {
        TaskText.AgNews => Path.Combine(dataFolder, "ag_news", "train_subset.csv"),
        TaskText.Conll => Path.Combine(dataFolder, "conll2003", "hf_iob2", "train.txt"),
        TaskText.Emotion => Path.Combine(dataFolder, "emotion", "train.txt"),
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, "Unknown task."),
    };

    /// <summary>Streams the lines of corpus files (see <see cref="FindFiles"/>), then of task train files, through <see cref="Clean"/>.</summary>
    public static IEnumerable<CorpusLine> Read(IEnumerable<string> corpusPaths, IEnumerable<(TaskText Task, string Path)>? taskFiles = null,
        CorpusOptions? options = null, CorpusStatistics? statistics = null)
    {
        options ??= new CorpusOptions();
        var files = FindFiles(corpusPaths);
        var sources = files.Select(f => ReadLines(f, options.SkipInvalidLines).Select(l => new CorpusLine(l.Text!, f, l.Line, false)))
            .Concat((taskFiles ?? []).Select(t => ReadTaskTrain(t.Task, t.Path)));
        return Clean(sources, options, statistics);
    }

    /// <summary>
    /// Normalises (<see cref="NormalizeLine"/>), drops empty lines and (optionally) repeats, and marks every
    /// <see cref="CorpusOptions.HoldOutEvery"/>-th kept line as held out. Lines with null text (invalid UTF-8 being
    /// skipped) are counted in <see cref="CorpusStatistics.InvalidLines"/>. Deterministic: same input, same split.
    /// </summary>
    public static IEnumerable<CorpusLine> Clean(IEnumerable<IEnumerable<CorpusLine>> sources, CorpusOptions? options = null, CorpusStatistics? statistics = null)
    {
        ArgumentNullException.ThrowIfNull(sources);
        options ??= new CorpusOptions();
        if (options.HoldOutEvery < 0) throw new ArgumentOutOfRangeException(nameof(options), options.HoldOutEvery, "HoldOutEvery cannot be negative.");
        var stats = statistics ?? new CorpusStatistics();
        var seen = options.Deduplicate ? new HashSet<ulong>() : null;
        long kept = 0;
        foreach (var source in sources)
        {
            stats.Files++;
            foreach (var raw in source)
            {
                stats.LinesRead++;
                if (raw.Text is null) { stats.InvalidLines++; continue; }
                var text = NormalizeLine(raw.Text);
                if (text.Length == 0) { stats.EmptyLines++; continue; }
                if (seen != null && !seen.Add(Hash(text))) { stats.Duplicates++; continue; }
                kept++;
                bool heldOut = options.HoldOutEvery > 0 && kept % options.HoldOutEvery == 0;
                if (heldOut) stats.HeldOutLines++; else stats.TrainLines++;
                stats.Characters += text.Length;
                yield return raw with { Text = text, HeldOut = heldOut };
            }
        }
    }

    /// <summary>
    /// FNV-1a over the UTF-16 units of the canonical decomposition of each code point, finished with the SplitMix64
    /// mixer (stable across runs and platforms, unlike string.GetHashCode).
    /// </summary>
    internal static ulong Hash(string text)
    {
        ulong h = 0xCBF29CE484222325UL;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c >= 0xC0 && Rune.DecodeFromUtf16(text.AsSpan(i), out var r, out int used) == OperationStatus.Done
                && Tokenization.UnicodeTables.Decompose(r.Value) is { } parts)
            {
                foreach (char p in parts) { h ^= p; h *= 0x100000001B3UL; }
                i += used - 1;
                continue;
            }
            h ^= c; h *= 0x100000001B3UL;
        }
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
        return h ^ (h >> 31);
    }
}
