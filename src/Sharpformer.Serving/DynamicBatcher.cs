using System.Threading.Channels;

namespace Sharpformer.Serving;

/// <summary>The bounded request queue is full; the server answers 429.</summary>
public sealed class QueueFullException : SharpformerException
{
    public QueueFullException(int capacity) : base($"the request queue is full ({capacity} waiting); retry later.") { }
}

/// <summary>The batcher is shutting down and takes no new work; the server answers 503.</summary>
public sealed class BatcherClosedException : SharpformerException
{
    public BatcherClosedException() : base("the server is shutting down and accepts no new requests.") { }
}

/// <summary>
/// Dynamic batching over a bounded channel: one worker takes the first waiting item, then keeps collecting until it has
/// <c>maxBatchSize</c> items or <c>maxWait</c> has passed since that first item, and runs them as one batch.
/// </summary>
/// <remarks>
/// Under load the queue is never empty, so batches fill up without waiting; when idle a lone request waits at most
/// <c>maxWait</c>. A failing batch is retried item by item so one bad input fails only its own request.
/// Completing the queue (<see cref="Complete"/>) lets the worker finish everything already queued.
/// </remarks>
public sealed class DynamicBatcher<TIn, TOut> : IAsyncDisposable
{
    sealed record Work(TIn Input, TaskCompletionSource<TOut> Done, CancellationToken Cancellation);

    readonly Channel<Work> _queue;
    readonly Func<IReadOnlyList<TIn>, CancellationToken, IReadOnlyList<TOut>> _run;
    readonly int _maxBatch, _capacity;
    readonly TimeSpan _maxWait;
    readonly Action<int>? _onBatch;
    readonly Task _worker;
    int _depth;

    public DynamicBatcher(Func<IReadOnlyList<TIn>, CancellationToken, IReadOnlyList<TOut>> run, int maxBatchSize, TimeSpan maxWait,
        int queueCapacity, Action<int>? onBatch = null)
    {
        if (maxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize, "must be ≥ 1.");
        if (queueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(queueCapacity), queueCapacity, "must be ≥ 1.");
        if (maxWait < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(maxWait), maxWait, "must be ≥ 0.");
        _run = run; _maxBatch = maxBatchSize; _maxWait = maxWait; _capacity = queueCapacity; _onBatch = onBatch;
        _queue = Channel.CreateBounded<Work>(new BoundedChannelOptions(queueCapacity)
        { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _worker = Task.Factory.StartNew(WorkerAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Items waiting in the queue (not yet taken into a batch).</summary>
    public int QueueDepth => Volatile.Read(ref _depth);

    /// <summary>Queues one item; throws <see cref="QueueFullException"/> at once when the queue is full.</summary>
    public Task<TOut> EnqueueAsync(TIn input, CancellationToken cancellationToken = default)
    {
        var work = new Work(input, new TaskCompletionSource<TOut>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        Interlocked.Increment(ref _depth);
        if (!_queue.Writer.TryWrite(work))
        {
            Interlocked.Decrement(ref _depth);
            // TryWrite fails both when full and when completed; tell them apart.
            if (_completed) throw new BatcherClosedException();
            throw new QueueFullException(_capacity);
        }
        return work.Done.Task;
    }

    volatile bool _completed;

    /// <summary>Stops accepting work; everything already queued is still processed.</summary>
    public void Complete() { _completed = true; _queue.Writer.TryComplete(); }

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
            Process(batch);
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
