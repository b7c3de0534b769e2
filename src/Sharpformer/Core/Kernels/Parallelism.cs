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

    /// <summary>
    /// body(chunk, lo, hi) over [0, <paramref name="count"/>) cut into chunks of <paramref name="chunk"/> items (the last one
    /// shorter), handed out dynamically to up to <paramref name="threads"/> workers.
    /// </summary>
    /// <remarks>
    /// Why chunks rather than one slice per thread: on a shared VM a descheduled worker would hold its whole slice and
    /// stall the op; with chunks the other workers take its share. The cut depends only on <paramref name="count"/> and
    /// <paramref name="chunk"/>, never on the thread count, so a caller that keeps one partial result per chunk and
    /// reduces them in chunk order gets the same bits on 1, 2 or 64 threads. Returns the number of chunks.
    /// A single worker still runs as a parallel region (kernels inside stay on this thread).
    /// </remarks>
    internal static int ForChunks(int count, int chunk, int threads, Action<int, int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return 0;
        chunk = Math.Max(1, chunk);
        int chunks = (int)(((long)count + chunk - 1) / chunk);
        int workers = WorkersFor(chunks, 1, threads);
        void Chunk(int c) { int lo = c * chunk; body(c, lo, (int)Math.Min(count, (long)lo + chunk)); }
        if (workers <= 1) { RunMarked(0, chunks, Chunk); return chunks; }
        // each worker claims one chunk at a time, so a stalled worker holds at most the chunk it is in
        int next = -1;
        try { For(workers, _ => { int c; while ((c = Interlocked.Increment(ref next)) < chunks) Chunk(c); }); }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            // keep the typed exception a body threw (e.g. a ShapeMismatchException) rather than the wrapper
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        return chunks;
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

    /// <summary>Runs an elementwise kernel over chunks of its spans on several threads when they are large.</summary>
    internal static unsafe void Elementwise(ReadOnlySpan<float> x, Span<float> y, UnaryKernel kernel, int threads)
    {
        int n = x.Length;
        if (WorkersFor(n, MinElementsPerWorker, threads) <= 1) { kernel(x, y); return; }
        fixed (float* px = x) fixed (float* py = y)
        {
            nint ax = (nint)px, ay = (nint)py;
            ForChunks(n, MinElementsPerWorker, threads, (_, lo, hi) =>
                kernel(new ReadOnlySpan<float>((float*)ax + lo, hi - lo), new Span<float>((float*)ay + lo, hi - lo)));
        }
    }

    /// <inheritdoc cref="Elementwise(ReadOnlySpan{float}, Span{float}, UnaryKernel, int)"/>
    internal static unsafe void Elementwise(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, BinaryKernel kernel, int threads)
    {
        int n = x.Length;
        if (WorkersFor(n, MinElementsPerWorker, threads) <= 1) { kernel(x, dy, dx); return; }
        fixed (float* px = x) fixed (float* pg = dy) fixed (float* pd = dx)
        {
            nint ax = (nint)px, ag = (nint)pg, ad = (nint)pd;
            ForChunks(n, MinElementsPerWorker, threads, (_, lo, hi) =>
                kernel(new ReadOnlySpan<float>((float*)ax + lo, hi - lo), new ReadOnlySpan<float>((float*)ag + lo, hi - lo),
                    new Span<float>((float*)ad + lo, hi - lo)));
        }
    }

    /// <summary>Splits rows [0, rows) of cols-long rows into chunks shared by the workers when rows·cols is large; body gets [lo, hi).</summary>
    internal static void Rows(int rows, int cols, int threads, Action<int, int> body)
    {
        int workers = (int)Math.Min(rows, WorkersFor((long)rows * cols, MinElementsPerWorker, threads));
        if (workers <= 1) { body(0, rows); return; }
        ForChunks(rows, RowsPerChunk(cols), threads, (_, lo, hi) => body(lo, hi));
    }

    /// <summary>Rows per chunk of about <see cref="MinElementsPerWorker"/> elements (at least one row).</summary>
    internal static int RowsPerChunk(long cols) => (int)Math.Max(1, MinElementsPerWorker / Math.Max(1, cols));
}
