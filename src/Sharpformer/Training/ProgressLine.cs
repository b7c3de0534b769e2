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

    public void Append(IReadOnlyDictionary<string, object?> record)
    {
        var json = JsonSerializer.Serialize(record);
        File.AppendAllText(Path, json + "\n");
    }
}
