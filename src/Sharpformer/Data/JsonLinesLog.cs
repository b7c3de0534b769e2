using System.Text;
using System.Text.Json;

namespace Sharpformer.Data;

/// <summary>
/// Appends one JSON object per line to a log file and flushes after every line, so a crash loses at most the line
/// being written and the file can be tailed while training runs.
/// </summary>
public sealed class JsonLinesLog : IDisposable
{
    // NaN/∞ (a diverged loss) are written as the strings "NaN", "Infinity" rather than failing the run.
    static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
    readonly StreamWriter _writer;
    readonly object _gate = new();

    /// <param name="path">Log file; its folder is created if needed.</param>
    /// <param name="append">true: keep existing lines; false: start a new file.</param>
    public JsonLinesLog(string path, bool append = true)
    {
        Path = path;
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        _writer = new StreamWriter(new FileStream(path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read),
            new UTF8Encoding(false)) { NewLine = "\n" };
    }

    public string Path { get; }

    /// <summary>Writes an object (a record, anonymous object or dictionary) as one JSON line and flushes.</summary>
    public void Write<T>(T entry)
    {
        var json = JsonSerializer.Serialize(entry, Options);
        if (json.Length == 0 || json[0] != '{')
            throw new ArgumentException($"A JSON-lines log entry must serialise to a JSON object, not '{Conll.Shorten(json)}'.", nameof(entry));
        lock (_gate)
        {
            _writer.WriteLine(json);
            _writer.Flush();
        }
    }

    public void Dispose()
    {
        lock (_gate) _writer.Dispose();
    }
}
