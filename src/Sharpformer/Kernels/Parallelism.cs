namespace Sharpformer.Kernels;

/// <summary>How many threads kernels use when a call does not say.</summary>
/// <remarks>
/// Read on every call (never cached), so changing it takes effect at once. Defaults to the
/// machine's logical processor count, or the SHARPFORMER_THREADS environment variable when set.
/// </remarks>
public static class Parallelism
{
    static int _defaultThreads = FromEnvironment();

    /// <summary>Default thread count for kernels; at least 1.</summary>
    public static int DefaultThreads
    {
        get => Volatile.Read(ref _defaultThreads);
        set => Volatile.Write(ref _defaultThreads, value < 1
            ? throw new ArgumentOutOfRangeException(nameof(value), value, "Thread count must be at least 1.")
            : value);
    }

    /// <summary>Resolves a per-call request: ≤ 0 means the default.</summary>
    public static int Resolve(int threads) => threads > 0 ? threads : DefaultThreads;

    static int FromEnvironment()
    {
        var s = Environment.GetEnvironmentVariable("SHARPFORMER_THREADS");
        return int.TryParse(s, out var t) && t > 0 ? t : Environment.ProcessorCount;
    }
}
