using System.Diagnostics;

namespace Sharpformer.Tensors;

/// <summary>One row of an <see cref="OpProfile"/>: a phase ("fwd", "bwd", or a caller's), an op name, how often it was charged,
/// and the process CPU time and wall time charged to it.</summary>
public sealed record OpTime(string Phase, string Op, long Count, double CpuMilliseconds, double WallMilliseconds);

/// <summary>
/// Where the time of training steps goes, op by op: while a profile is entered (<see cref="Enter"/>), every op that records an
/// autograd node charges the time since the previous charge to ("fwd", op), every node run by <see cref="Autograd.Backward"/>
/// charges its backward to ("bwd", op), and a few fused ops split their charge by part (the GEMM, the bf16 packing, the
/// activation) so that GEMMs show by shape. Callers charge their own phases (clipping, the optimizer) with <see cref="Lap"/>.
/// </summary>
/// <remarks>
/// Lap-based: a charge covers everything since the previous one, so glue between two recorded ops (views, masks computed
/// without gradient) is charged to the next recorded op, and nothing is counted twice: the rows sum to the profiled time.
/// CPU time is the process's (<see cref="Environment.CpuUsage"/>: all threads, including the GC's and idle kernel workers
/// spinning), the figure that holds on a loaded machine at one kernel thread; wall time includes waiting for a CPU.
/// A charge costs two clock reads (about a microsecond), against ops of tens of microseconds and more. The scope is an
/// <see cref="AsyncLocal{T}"/> like <see cref="ExecutionScope"/>: profiling one model's steps never touches another's.
/// </remarks>
public sealed class OpProfile
{
    static readonly AsyncLocal<OpProfile?> Current = new();

    readonly Dictionary<(string Phase, string Op), (long Count, TimeSpan Cpu, long WallTicks)> _rows = [];
    TimeSpan _lastCpu;
    long _lastWall;

    /// <summary>Profiles the ops run on this logical flow until disposal (the clock starts now).</summary>
    public static IDisposable Enter(OpProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var scope = new Scope(Current.Value);
        Current.Value = profile;
        profile.Restart();
        return scope;
    }

    sealed class Scope(OpProfile? previous) : IDisposable
    {
        bool _disposed;
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Current.Value = previous;
        }
    }

    /// <summary>The profile entered on this logical flow, or null (the common case: nothing is measured).</summary>
    internal static OpProfile? Active => Current.Value;

    /// <summary>Charges the time since the previous charge to (<paramref name="phase"/>, <paramref name="op"/>) in the active profile, if any.</summary>
    internal static void LapActive(string phase, string op) => Current.Value?.Lap(phase, op);

    /// <summary>Restarts the clock without charging anyone (for time that belongs to no op, e.g. between profiled steps).</summary>
    public void Restart()
    {
        _lastCpu = Environment.CpuUsage.TotalTime;
        _lastWall = Stopwatch.GetTimestamp();
    }

    /// <summary>Charges the CPU and wall time since the previous charge (or <see cref="Restart"/>) to (<paramref name="phase"/>, <paramref name="op"/>).</summary>
    public void Lap(string phase, string op)
    {
        var cpu = Environment.CpuUsage.TotalTime;
        long wall = Stopwatch.GetTimestamp();
        var key = (phase, op);
        _rows.TryGetValue(key, out var row);
        _rows[key] = (row.Count + 1, row.Cpu + (cpu - _lastCpu), row.WallTicks + (wall - _lastWall));
        // the bookkeeping above is charged to the next op, not lost: the clock restarts where this charge ended
        _lastCpu = cpu;
        _lastWall = wall;
    }

    /// <summary>Forgets every row.</summary>
    public void Clear() => _rows.Clear();

    /// <summary>The rows, most CPU time first.</summary>
    public IReadOnlyList<OpTime> Rows => _rows
        .Select(kv => new OpTime(kv.Key.Phase, kv.Key.Op, kv.Value.Count, kv.Value.Cpu.TotalMilliseconds, kv.Value.WallTicks * 1000.0 / Stopwatch.Frequency))
        .OrderByDescending(r => r.CpuMilliseconds).ThenByDescending(r => r.WallMilliseconds).ToList();
}
