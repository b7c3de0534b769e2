using System.Collections.Concurrent;

namespace Sharpformer.Serving;

/// <summary>Request counts, latency percentiles and batch sizes, as served by <c>GET /metrics</c>.</summary>
public sealed class ServerMetrics
{
    readonly ConcurrentDictionary<(string Route, int Status), long> _requests = new();
    readonly ConcurrentDictionary<int, long> _batchSizes = new();
    readonly object _latencyLock = new();
    // The most recent latencies per route; percentiles over a sliding window keep memory bounded under long runs.
    readonly Dictionary<string, Queue<double>> _latencies = new();
    const int Window = 100_000;
    long _batches, _batchedItems;

    /// <summary>Counts one finished request.</summary>
    public void RecordRequest(string route, int status, double milliseconds)
    {
        _requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);
        lock (_latencyLock)
        {
            if (!_latencies.TryGetValue(route, out var q)) _latencies[route] = q = new Queue<double>();
            if (q.Count == Window) q.Dequeue();
            q.Enqueue(milliseconds);
        }
    }

    /// <summary>Counts one batch run by the batcher.</summary>
    public void RecordBatch(int size)
    {
        _batchSizes.AddOrUpdate(size, 1, (_, n) => n + 1);
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _batchedItems, size);
    }

    /// <summary>A consistent-enough copy of the counters for JSON output.</summary>
    public MetricsSnapshot Snapshot(int queueDepth)
    {
        var requests = _requests.OrderBy(kv => kv.Key.Route).ThenBy(kv => kv.Key.Status)
            .Select(kv => new RequestCount(kv.Key.Route, kv.Key.Status, kv.Value)).ToList();
        var latency = new Dictionary<string, LatencySummary>();
        lock (_latencyLock)
            foreach (var (route, q) in _latencies)
            {
                var sorted = q.ToArray();
                Array.Sort(sorted);
                latency[route] = new LatencySummary(sorted.Length, Percentile(sorted, 0.50), Percentile(sorted, 0.90), Percentile(sorted, 0.99), sorted.Length == 0 ? 0 : sorted[^1]);
            }
        var histogram = _batchSizes.OrderBy(kv => kv.Key).ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value);
        long batches = Interlocked.Read(ref _batches), items = Interlocked.Read(ref _batchedItems);
        return new MetricsSnapshot(requests, latency, new BatchSummary(batches, items, batches == 0 ? 0 : (double)items / batches,
            _batchSizes.IsEmpty ? 0 : _batchSizes.Keys.Max(), histogram), queueDepth);
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0) return 0;
        int rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

public sealed record RequestCount(string Route, int Status, long Count);
public sealed record LatencySummary(int Count, double P50Ms, double P90Ms, double P99Ms, double MaxMs);
/// <summary>Batches run, texts in them, mean and largest size, and a histogram (batch size → number of batches).</summary>
public sealed record BatchSummary(long Batches, long Items, double MeanSize, int MaxSize, IReadOnlyDictionary<string, long> Histogram);
public sealed record MetricsSnapshot(IReadOnlyList<RequestCount> Requests, IReadOnlyDictionary<string, LatencySummary> LatencyMs,
    BatchSummary BatchSizes, int QueueDepth);
