using System.Diagnostics;

namespace Sharpformer.Models;

/// <summary>The kinds of operation the inference fast path times when a forward is given an <see cref="EncoderProfile"/>.</summary>
public enum EncoderOp
{
    Embedding, QueryGemm, KeyGemm, ValueGemm, OutputGemm, FfnInGemm, FfnOutGemm,
    /// <summary>Scores, mask, softmax and context together: they are one fused kernel (Kernels/Attention.cs).</summary>
    Attention,
    LayerNorm, Activation,
    /// <summary>Quantizing activations to u8 for the int8 GEMMs (int8 models only; once per input, shared by query, key and value).</summary>
    Quantize,
    /// <summary>Everything else on the fast path: the mask, copies of hidden states, the pooler.</summary>
    Other,
}

/// <summary>
/// Wall time per <see cref="EncoderOp"/> summed over the forwards it is passed to (via <see cref="ForwardOptions.Profile"/>).
/// Per call, never global: a forward without one pays one null check per operation. Not thread-safe: one forward at a time.
/// </summary>
public sealed class EncoderProfile
{
    readonly long[] _ticks = new long[Enum.GetValues<EncoderOp>().Length];

    /// <summary>Forwards recorded.</summary>
    public int Forwards { get; private set; }

    /// <summary>Milliseconds spent in <paramref name="op"/> over all recorded forwards.</summary>
    public double Milliseconds(EncoderOp op) => _ticks[(int)op] * 1000.0 / Stopwatch.Frequency;

    /// <summary>Forgets what was recorded.</summary>
    public void Reset() { Array.Clear(_ticks); Forwards = 0; _totalTicks = 0; }

    /// <summary>The current timestamp when <paramref name="profile"/> is on, else 0 (no clock read).</summary>
    internal static long Start(EncoderProfile? profile) => profile is null ? 0 : Stopwatch.GetTimestamp();

    /// <summary>Charges the time since <paramref name="since"/> to <paramref name="op"/> and returns now, for the next lap.</summary>
    internal long Lap(EncoderOp op, long since)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)op] += now - since;
        return now;
    }

    /// <summary>Counts one forward that started at <paramref name="startTimestamp"/>; wall time no op claimed goes to <see cref="EncoderOp.Other"/>.</summary>
    internal void EndForward(long startTimestamp)
    {
        long total = Stopwatch.GetTimestamp() - startTimestamp, claimed = 0;
        for (int i = 0; i < _ticks.Length; i++) if (i != (int)EncoderOp.Other) claimed += _ticks[i];
        _totalTicks += total;
        _ticks[(int)EncoderOp.Other] = Math.Max(0, _totalTicks - claimed);
        Forwards++;
    }

    /// <summary>Total wall time of the recorded forwards, ms.</summary>
    public double TotalMilliseconds => _totalTicks * 1000.0 / Stopwatch.Frequency;

    long _totalTicks;
}
