using System.Threading.Channels;

namespace Sharpformer.Serving;

/// <summary>The queue has no room for a request (too many texts waiting, or too many tokens in flight); the server answers 429.</summary>
public sealed class QueueFullException : SharpformerException
{
    public QueueFullException(int capacity) : base($"the request queue is full ({capacity} waiting); retry later.") { }

    public QueueFullException(long cost, long inFlight, long budget)
        : base($"the server is busy: this request needs {cost} tokens and {inFlight} of its {budget}-token budget are in flight; retry later.") { }
}

/// <summary>The batcher is shutting down and takes no new work; the server answers 503.</summary>
public sealed class BatcherClosedException : SharpformerException
{
    public BatcherClosedException() : base("the server is shutting down and accepts no new requests.") { }
}

/// <summary>
/// Dynamic batching over a queue: one worker takes the first waiting item, then keeps collecting until it has
/// <c>maxBatchSize</c> items or <c>maxWait</c> has passed since that first item, and runs them as one batch.
/// </summary>
/// <remarks>
/// Under load the queue is never empty, so batches fill up without waiting; when idle a lone request waits at most
/// <c>maxWait</c>. Admission is atomic per request (<see cref="EnqueueAll"/>): either all its items are queued or none,
/// bounded by <c>queueCapacity</c> waiting items and by <c>maxCost</c> in flight (queued or running; the cost of an item,
/// e.g. its tokens, comes from <c>cost</c>), so one huge request cannot stall everything behind it.
/// Callers should validate items before queueing them; should a batch still fail, it is retried item by item so one bad
/// input fails only its own request. Completing the queue (<see cref="Complete"/>) lets the worker finish everything queued.
/// </remarks>
public sealed class DynamicBatcher<TIn, TOut> : IAsyncDisposable
{
    sealed record Work(TIn Input, long Cost, TaskCompletionSource<TOut> Done, CancellationToken Cancellation);

    readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    readonly Func<IReadOnlyList<TIn>, CancellationToken, IReadOnlyList<TOut>> _run;
    readonly Func<TIn, long> _cost;
    readonly int _maxBatch, _capacity;
    readonly long _maxCost;
    readonly TimeSpan _maxWait;
    readonly Action<int>? _onBatch;
    readonly Task _worker;
    readonly object _admission = new();
    int _depth;
    long _inFlightCost;
    bool _completed;

    public DynamicBatcher(Func<IReadOnlyList<TIn>, CancellationToken, IReadOnlyList<TOut>> run, int maxBatchSize, TimeSpan maxWait,
        int queueCapacity, Action<int>? onBatch = null, Func<TIn, long>? cost = null, long maxCost = long.MaxValue)
    {
        if (maxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize, "must be ≥ 1.");
        if (queueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(queueCapacity), queueCapacity, "must be ≥ 1.");
        if (maxWait < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(maxWait), maxWait, "must be ≥ 0.");
        if (maxCost < 1) throw new ArgumentOutOfRangeException(nameof(maxCost), maxCost, "must be ≥ 1.");
        _run = run; _maxBatch = maxBatchSize; _maxWait = maxWait; _capacity = queueCapacity; _onBatch = onBatch;
        _cost = cost ?? (_ => 0); _maxCost = maxCost;
        _worker = Task.Factory.StartNew(WorkerAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Items waiting in the queue (not yet taken into a batch).</summary>
    public int QueueDepth => Volatile.Read(ref _depth);

    /// <summary>Total cost of the items queued or running.</summary>
    public long InFlightCost => Interlocked.Read(ref _inFlightCost);

    /// <summary>Queues one item; throws <see cref="QueueFullException"/> at once when there is no room.</summary>
    public Task<TOut> EnqueueAsync(TIn input, CancellationToken cancellationToken = default) => EnqueueAll([input], cancellationToken)[0];

    /// <summary>
    /// Queues all <paramref name="inputs"/> or none: throws <see cref="QueueFullException"/> when they would exceed the
    /// waiting-item capacity or the cost budget, <see cref="BatcherClosedException"/> after <see cref="Complete"/>.
    /// </summary>
    public IReadOnlyList<Task<TOut>> EnqueueAll(IReadOnlyList<TIn> inputs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var work = new Work[inputs.Count];
        long cost = 0;
        for (int i = 0; i < work.Length; i++)
        {
            long c = _cost(inputs[i]);
            work[i] = new Work(inputs[i], c, new TaskCompletionSource<TOut>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
            cost += c;
        }
        // One lock makes check-and-reserve atomic, so concurrent requests cannot overshoot and a request is never half queued.
        lock (_admission)
        {
            if (_completed) throw new BatcherClosedException();
            if (_depth + work.Length > _capacity) throw new QueueFullException(_capacity);
            if (_inFlightCost + cost > _maxCost) throw new QueueFullException(cost, _inFlightCost, _maxCost);
            Interlocked.Add(ref _depth, work.Length);
            Interlocked.Add(ref _inFlightCost, cost);
            foreach (var w in work) _queue.Writer.TryWrite(w);   // unbounded: always succeeds while not completed
        }
        return work.Select(w => w.Done.Task).ToArray();
    }

    /// <summary>Stops accepting work; everything already queued is still processed.</summary>
    public void Complete()
    {
        lock (_admission) { _completed = true; _queue.Writer.TryComplete(); }
    }

    /// <summary>Completes the queue and waits until the worker has drained it.</summary>
    public async ValueTask DisposeAsync()
    {
        Complete();
        await _worker.ConfigureAwait(false);
    }

    async Task WorkerAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Work>(_maxBatch);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            if (!reader.TryRead(out var first)) continue;
            batch.Add(first);
            var deadline = DateTime.UtcNow + _maxWait;
            while (batch.Count < _maxBatch)
            {
                if (reader.TryRead(out var next)) { batch.Add(next); continue; }
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) break;
                using var timeout = new CancellationTokenSource(left);
                try { if (!await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false)) break; }
                catch (OperationCanceledException) { break; }
            }
            Interlocked.Add(ref _depth, -batch.Count);
            try { Process(batch); }
            finally { Interlocked.Add(ref _inFlightCost, -batch.Sum(w => w.Cost)); }
            batch.Clear();
        }
    }

    void Process(List<Work> batch)
    {
        // Requests whose caller gave up are dropped before they cost compute.
        var live = batch.Where(w => !w.Cancellation.IsCancellationRequested).ToList();
        foreach (var w in batch.Where(w => w.Cancellation.IsCancellationRequested)) w.Done.TrySetCanceled(w.Cancellation);
        if (live.Count == 0) return;
        _onBatch?.Invoke(live.Count);
        try
        {
            var outputs = _run(live.Select(w => w.Input).ToList(), CancellationToken.None);
            if (outputs.Count != live.Count) throw new InvalidOperationException($"the batch function returned {outputs.Count} results for {live.Count} inputs.");
            for (int i = 0; i < live.Count; i++) live[i].Done.TrySetResult(outputs[i]);
        }
        catch (Exception) when (live.Count > 1)
        {
            foreach (var w in live)
            {
                try { w.Done.TrySetResult(_run([w.Input], CancellationToken.None)[0]); }
                catch (Exception e) { w.Done.TrySetException(e); }
            }
        }
        catch (Exception e)
        {
            live[0].Done.TrySetException(e);
        }
    }
}
