namespace Sharpformer.Kernels;

/// <summary>The fork-join helper kernels share, and how a kernel's <c>threads</c> argument is read.</summary>
/// <remarks>
/// There is no process-wide thread setting: every parallel kernel takes its thread count as an argument, and the
/// callers (a model's <c>ExecutionOptions</c>, the trainer's arguments, the CLI's <c>--threads</c>) pass it down.
/// A count ≤ 0 means every logical processor (<see cref="Environment.ProcessorCount"/>).
/// Work started through <see cref="For"/> marks its threads, and every kernel called from such a thread runs
/// single-threaded, so nested parallel calls never oversubscribe the cores.
/// </remarks>
public static class Parallelism
{
    // True on a thread that is executing a body of For: kernels called there stay on that thread.
    [ThreadStatic] static bool t_insideParallel;

    // Test seam: sees the worker count of every fork started on this thread (see ObserveForks).
    [ThreadStatic] static Action<int>? t_forkObserver;

    /// <summary>Resolves a per-call request: ≤ 0 means every logical processor.</summary>
    public static int Resolve(int threads) => threads > 0 ? threads : Environment.ProcessorCount;

    /// <summary>
    /// Calls <paramref name="observer"/> with the worker count of every fork (<see cref="For"/>, dynamic loops) started on the
    /// calling thread until disposed, so tests can check which thread count a kernel used without timing it.
    /// </summary>
    internal static IDisposable ObserveForks(Action<int> observer)
    {
        var previous = t_forkObserver;
        t_forkObserver = observer;
        return new ForkObservation(previous);
    }

    sealed class ForkObservation(Action<int>? previous) : IDisposable
    {
        public void Dispose() => t_forkObserver = previous;
    }

    /// <summary>True when the current thread is running a body of <see cref="For"/> (nested kernels then use one thread).</summary>
    public static bool IsInsideParallelRegion => t_insideParallel;

    /// <summary>
    /// How many workers to use for <paramref name="work"/> units when each worker should get at least
    /// <paramref name="minWorkPerThread"/>: 1 inside a parallel region, otherwise at most <see cref="Resolve"/>(threads).
    /// </summary>
    public static int WorkersFor(long work, long minWorkPerThread, int threads)
    {
        if (t_insideParallel) return 1;
        long byWork = Math.Max(1, work / Math.Max(1, minWorkPerThread));
        return (int)Math.Min(Resolve(threads), byWork);
    }

    /// <summary>
    /// Runs body(0 … parts−1) on up to <paramref name="parts"/> threads (the caller is one of them) and returns when all
    /// are done. Kernels called inside a body run single-threaded. Exceptions propagate as <see cref="AggregateException"/>.
    /// </summary>
    public static void For(int parts, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (parts <= 0) return;
        if (parts == 1 || t_insideParallel) { RunMarked(0, parts, body); return; }
        t_forkObserver?.Invoke(parts);
        System.Threading.Tasks.Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, w => RunMarked(w, w + 1, body));
    }

    /// <summary>body(0 … count−1) on up to <paramref name="threads"/> threads, items handed out dynamically (a thread
    /// that falls behind, e.g. descheduled on a shared machine, takes fewer items).</summary>
    internal static void ForDynamic(int count, int threads, Action<int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1 || t_insideParallel) { RunMarked(0, count, body); return; }
        t_forkObserver?.Invoke(threads);
        System.Threading.Tasks.Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i => RunMarked(i, i + 1, body));
    }

    static void RunMarked(int from, int to, Action<int> body)
    {
        bool outer = t_insideParallel;
        t_insideParallel = true;
        try { for (int w = from; w < to; w++) body(w); }
        finally { t_insideParallel = outer; }
    }

    /// <summary>The half-open range [lo, hi) of <paramref name="count"/> items that worker <paramref name="w"/> of <paramref name="parts"/> owns, boundaries rounded to <paramref name="align"/>.</summary>
    internal static (int Lo, int Hi) Range(int count, int w, int parts, int align = 1)
    {
        long units = (count + (long)align - 1) / align;
        int lo = (int)Math.Min(count, units * w / parts * align), hi = (int)Math.Min(count, units * (w + 1) / parts * align);
        return (lo, hi);
    }

    internal delegate void UnaryKernel(ReadOnlySpan<float> x, Span<float> y);
    internal delegate void BinaryKernel(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx);

    /// <summary>Below this many elements per worker an elementwise kernel stays on one thread.</summary>
    internal const int MinElementsPerWorker = 1 << 15;

    /// <summary>Runs an elementwise kernel over equal slices of its spans on several threads when they are large.</summary>
    internal static unsafe void Elementwise(ReadOnlySpan<float> x, Span<float> y, UnaryKernel kernel, int threads)
    {
        int n = x.Length, workers = WorkersFor(n, MinElementsPerWorker, threads);
        if (workers <= 1) { kernel(x, y); return; }
        fixed (float* px = x) fixed (float* py = y)
        {
            nint ax = (nint)px, ay = (nint)py;
            For(workers, w =>
            {
                var (lo, hi) = Range(n, w, workers, 16);
                kernel(new ReadOnlySpan<float>((float*)ax + lo, hi - lo), new Span<float>((float*)ay + lo, hi - lo));
            });
        }
    }

    /// <inheritdoc cref="Elementwise(ReadOnlySpan{float}, Span{float}, UnaryKernel, int)"/>
    internal static unsafe void Elementwise(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, BinaryKernel kernel, int threads)
    {
        int n = x.Length, workers = WorkersFor(n, MinElementsPerWorker, threads);
        if (workers <= 1) { kernel(x, dy, dx); return; }
        fixed (float* px = x) fixed (float* pg = dy) fixed (float* pd = dx)
        {
            nint ax = (nint)px, ag = (nint)pg, ad = (nint)pd;
            For(workers, w =>
            {
                var (lo, hi) = Range(n, w, workers, 16);
                kernel(new ReadOnlySpan<float>((float*)ax + lo, hi - lo), new ReadOnlySpan<float>((float*)ag + lo, hi - lo),
                    new Span<float>((float*)ad + lo, hi - lo));
            });
        }
    }

    /// <summary>Splits rows [0, rows) of cols-long rows across workers when rows·cols is large; body gets [lo, hi).</summary>
    internal static void Rows(int rows, int cols, int threads, Action<int, int> body)
    {
        int workers = (int)Math.Min(rows, WorkersFor((long)rows * cols, MinElementsPerWorker, threads));
        if (workers <= 1) { body(0, rows); return; }
        For(workers, w => { var (lo, hi) = Range(rows, w, workers); if (hi > lo) body(lo, hi); });
    }
}
