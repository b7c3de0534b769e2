using System.Collections.Concurrent;
using Sharpformer.Serving;

namespace Sharpformer.Tests.Serving;

public class DynamicBatcherTests
{
    [Fact]
    public async Task QueuedItems_RunTogether_UpToMaxBatchSize_InOrder()
    {
        var batches = new ConcurrentQueue<int[]>();
        var gate = new ManualResetEventSlim(false);
        await using var batcher = new DynamicBatcher<int, int>((xs, _) =>
        {
            gate.Wait();   // hold the worker so the queue fills up behind the first item
            batches.Enqueue([.. xs]);
            return xs.Select(x => x * 10).ToList();
        }, maxBatchSize: 4, maxWait: TimeSpan.FromMilliseconds(50), queueCapacity: 100);
        var tasks = Enumerable.Range(0, 10).Select(i => batcher.EnqueueAsync(i)).ToList();
        gate.Set();
        var results = await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 10), results);
        Assert.All(batches, b => Assert.InRange(b.Length, 1, 4));
        Assert.Equal(Enumerable.Range(0, 10), batches.SelectMany(b => b));   // FIFO
        Assert.True(batches.Max(b => b.Length) == 4);
    }

    [Fact]
    public async Task ALoneItem_WaitsAtMostMaxWait_ThenRunsAlone()
    {
        var sizes = new ConcurrentQueue<int>();
        await using var batcher = new DynamicBatcher<string, string>((xs, _) => { sizes.Enqueue(xs.Count); return xs; },
            maxBatchSize: 8, maxWait: TimeSpan.FromMilliseconds(20), queueCapacity: 10, onBatch: _ => { });
        Assert.Equal("a", await batcher.EnqueueAsync("a").WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal([1], sizes);
    }

    [Fact]
    public async Task AFailingItem_FailsOnlyItsOwnRequest()
    {
        var gate = new ManualResetEventSlim(false);
        await using var batcher = new DynamicBatcher<int, int>((xs, _) =>
        {
            gate.Wait();
            if (xs.Contains(3)) throw new ArgumentException("three is bad");
            return xs;
        }, maxBatchSize: 8, maxWait: TimeSpan.FromMilliseconds(50), queueCapacity: 100);
        var tasks = Enumerable.Range(0, 6).Select(i => batcher.EnqueueAsync(i)).ToList();
        gate.Set();
        await Assert.ThrowsAsync<ArgumentException>(() => tasks[3]);
        foreach (var i in new[] { 0, 1, 2, 4, 5 }) Assert.Equal(i, await tasks[i]);
    }

    [Fact]
    public async Task FullQueue_Throws_AndCompleteDrainsWhatWasQueued()
    {
        var gate = new ManualResetEventSlim(false);
        var batcher = new DynamicBatcher<int, int>((xs, _) => { gate.Wait(); return xs; }, maxBatchSize: 1, maxWait: TimeSpan.Zero, queueCapacity: 2);
        var first = batcher.EnqueueAsync(0);
        while (batcher.QueueDepth > 0) await Task.Delay(1);   // the worker holds item 0
        var queued = new[] { batcher.EnqueueAsync(1), batcher.EnqueueAsync(2) };
        Assert.Equal(2, batcher.QueueDepth);
        Assert.Throws<QueueFullException>(() => { _ = batcher.EnqueueAsync(3); });
        batcher.Complete();
        Assert.Throws<BatcherClosedException>(() => { _ = batcher.EnqueueAsync(4); });
        gate.Set();
        var dispose = batcher.DisposeAsync().AsTask();
        var all = await Task.WhenAll(queued.Prepend(first));
        Assert.Equal(new[] { 0, 1, 2 }, all);
        await dispose;
    }

    [Fact]
    public async Task EnqueueAll_AdmitsAllOrNone_WithinCapacityAndCostBudget_AndReleasesCostAfterRunning()
    {
        var gate = new ManualResetEventSlim(false);
        var ran = new ConcurrentQueue<int>();
        var batcher = new DynamicBatcher<int, int>((xs, _) => { gate.Wait(); foreach (var x in xs) ran.Enqueue(x); return xs; },
            maxBatchSize: 1, maxWait: TimeSpan.Zero, queueCapacity: 4, cost: x => x, maxCost: 100);
        var first = batcher.EnqueueAsync(50);
        while (batcher.QueueDepth > 0) await Task.Delay(1);   // 50 is running and still counts
        Assert.Equal(50, batcher.InFlightCost);
        var ok = batcher.EnqueueAll([10, 20]);
        var overCost = Assert.Throws<QueueFullException>(() => batcher.EnqueueAll([5, 30]));
        Assert.Contains("needs 35 tokens and 80 of its 100-token budget", overCost.Message);
        Assert.Throws<QueueFullException>(() => batcher.EnqueueAll([1, 1, 1]));   // 2 waiting + 3 > capacity 4
        Assert.Equal(2, batcher.QueueDepth);
        Assert.Equal(80, batcher.InFlightCost);
        gate.Set();
        Assert.Equal(new[] { 50, 10, 20 }, await Task.WhenAll(ok.Prepend(first)));
        await batcher.DisposeAsync();
        Assert.Equal(new[] { 50, 10, 20 }, ran);   // nothing of the rejected requests ran
        Assert.Equal(0, batcher.InFlightCost);
    }
}
