using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Sharpformer.Training;

/// <summary>
/// A one-line progress display on stderr, redrawn in place with '\r': step, loss, learning rate,
/// samples/s and ETA. Silent when stderr is redirected (logs, CI) or when disabled.
/// </summary>
public sealed class ProgressLine : IDisposable
{
    readonly bool _enabled;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    long _lastDraw = -1000;
    int _lastWidth;

    public ProgressLine(bool disabled) => _enabled = !disabled && !Console.IsErrorRedirected;

    /// <summary>Redraws at most 5 times a second (and always when <paramref name="step"/> = <paramref name="total"/>).</summary>
    public void Update(long step, long total, double loss, double lr, double samplesPerSecond, long firstStep)
    {
        if (!_enabled) return;
        long now = _clock.ElapsedMilliseconds;
        if (now - _lastDraw < 200 && step < total) return;
        _lastDraw = now;
        double perStep = step > firstStep ? _clock.Elapsed.TotalSeconds / (step - firstStep) : 0;
        var eta = TimeSpan.FromSeconds(Math.Max(0, perStep * (total - step)));
        int width = 24, filled = total > 0 ? (int)(width * step / total) : 0;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', width - filled)}] {step}/{total} loss {loss:F4} lr {lr:G3} {samplesPerSecond:F0} samples/s ETA {eta:hh\\:mm\\:ss}");
        Console.Error.Write("\r" + line.PadRight(_lastWidth));
        _lastWidth = line.Length;
    }

    /// <summary>Erases the line so other output (an evaluation record) starts on a clean line; the next update redraws it.</summary>
    public void Clear()
    {
        if (!_enabled || _lastWidth == 0) return;
        Console.Error.Write("\r" + new string(' ', _lastWidth) + "\r");
        _lastWidth = 0;
        _lastDraw = -1000;
    }

    public void Dispose()
    {
        Clear();
    }
}

/// <summary>Appends one JSON object per line to <c>metrics.jsonl</c> (flushed per line, so a killed run keeps its history).</summary>
public sealed class MetricsLog(string path)
{
    /// <summary>The file written.</summary>
    public string Path { get; } = path;

    public void Append(TrainerLog record)
    {
        ArgumentNullException.ThrowIfNull(record);
        File.AppendAllText(Path, record.ToJson() + "\n");
    }

    /// <summary>
    /// Before a run resumes from the checkpoint of <paramref name="step"/>: removes the records the earlier run wrote
    /// after it (step &gt; <paramref name="step"/>) and its "train_end" records (the run goes on), so every step is
    /// logged once and the file reads as if the run had never stopped. The file is replaced atomically.
    /// </summary>
    /// <remarks>A last line that is not valid JSON is the torn write of a killed process and is dropped too.</remarks>
    public void DropAfter(long step)
    {
        if (!File.Exists(Path)) return;
        var lines = File.ReadAllLines(Path);
        var kept = new System.Text.StringBuilder();
        bool changed = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            bool keep;
            try
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(line) as System.Text.Json.Nodes.JsonObject;
                keep = node is null
                    || !(node["kind"]?.GetValueKind() == JsonValueKind.String && node["kind"]!.GetValue<string>() == "train_end"
                         || node["step"]?.GetValueKind() == JsonValueKind.Number && node["step"]!.GetValue<long>() > step);
            }
            catch (JsonException) { keep = i < lines.Length - 1; }
            if (keep) kept.Append(line).Append('\n');
            else changed = true;
        }
        if (changed) Checkpoints.AtomicFile.WriteAllText(Path, kept.ToString());
    }
}
