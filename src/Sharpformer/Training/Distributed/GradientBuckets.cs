using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Distributed;

/// <summary>
/// Sums the parameters' gradients over the ranks of a group in buckets whose all-reduce starts during the backward pass,
/// as soon as the last gradient of the bucket is final (PyTorch DDP's reducer, over <see cref="Tensor.GradReadyHook"/>).
/// </summary>
/// <remarks>
/// Buckets hold parameters in reverse registration order, about the order backward finishes them (the head first, the
/// embeddings last), up to <c>bucketBytes</c> each (PyTorch's default is 25 MiB). Buckets start strictly in index order even
/// when a later one is full first, because every rank must issue the same collectives in the same order. A started
/// all-reduce advances while the rest of the backward runs: each later hook lets MPI progress (MPI_Test), and
/// <see cref="Finish"/> waits for all of them and writes the sums back into the gradients.
/// Gradients are summed, not averaged: the trainer scales each rank's loss by its share of the global batch instead, so the
/// sum is the gradient of the global batch's mean loss even when the ranks' batches differ in size (the epoch's last one).
/// A parameter that got no gradient in a pass contributes zeros and receives the sum (a zero gradient, not null, on every rank).
/// </remarks>
public sealed class GradientBuckets : IDisposable
{
    readonly IProcessGroup _group;
    readonly Parameter[] _parameters;
    readonly Bucket[] _buckets;
    readonly (int Bucket, int Offset)[] _slots;
    readonly Dictionary<Tensor, int> _index = new(ReferenceEqualityComparer.Instance);
    readonly bool[] _copied;
    int _nextToStart;
    bool _armed;

    /// <summary>PyTorch DDP's default bucket cap (bucket_cap_mb = 25).</summary>
    public const int DefaultBucketBytes = 25 << 20;

    public GradientBuckets(IReadOnlyList<Parameter> parameters, IProcessGroup group, int bucketBytes = DefaultBucketBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketBytes, sizeof(float));
        _group = group;
        _parameters = [.. parameters];
        _slots = new (int, int)[_parameters.Length];
        _copied = new bool[_parameters.Length];
        var buckets = new List<Bucket>();
        var members = new List<int>();
        long filled = 0;
        for (int i = _parameters.Length - 1; i >= 0; i--)
        {
            int size = _parameters[i].Size;
            if (members.Count > 0 && (filled + size) * sizeof(float) > bucketBytes) { buckets.Add(new Bucket(members, (int)filled)); members = []; filled = 0; }
            _slots[i] = (buckets.Count, (int)filled);
            members.Add(i);
            filled += size;
        }
        if (members.Count > 0) buckets.Add(new Bucket(members, (int)filled));
        _buckets = [.. buckets];
        for (int i = 0; i < _parameters.Length; i++)
        {
            var value = _parameters[i].Value;
            if (value.GradReadyHook != null) throw new DistributedException($"{_parameters[i]} already has a gradient-ready hook; two reducers over one model would sum its gradient twice.");
            _index[value] = i;
            value.GradReadyHook = OnGradReady;
        }
    }

    /// <summary>Number of buckets (each one all-reduce per step).</summary>
    public int Count => _buckets.Length;

    /// <summary>Floats in each bucket, in the order they are reduced.</summary>
    public IReadOnlyList<int> BucketSizes => _buckets.Select(b => b.Buffer.Length).ToArray();

    /// <summary>
    /// Makes the next backward pass start the all-reduces (call before the last micro-batch of an accumulation; the earlier
    /// ones accumulate locally, like DDP's no_sync).
    /// </summary>
    public void Arm()
    {
        if (_armed) throw new InvalidOperationException("GradientBuckets.Arm called twice without Finish.");
        _armed = true;
        _nextToStart = 0;
        Array.Clear(_copied);
        foreach (var b in _buckets) { b.Ready = 0; b.Request = null; }
    }

    void OnGradReady(Tensor leaf)
    {
        if (!_armed) return;
        int i = _index[leaf];
        var (bi, offset) = _slots[i];
        var bucket = _buckets[bi];
        if (_copied[i])
        {
            if (bucket.Request != null) throw new DistributedException($"The gradient of {_parameters[i]} changed after its bucket's all-reduce started (Backward ran twice in one step?).");
            CopyIn(i, bucket, offset);
            return;
        }
        CopyIn(i, bucket, offset);
        _copied[i] = true;
        bucket.Ready++;
        StartReadyBuckets();
        // Let the library advance the collectives already in flight while backward continues.
        for (int k = 0; k < _nextToStart; k++)
            if (_buckets[k].Request is { } r && !_buckets[k].Done) { _buckets[k].Done = r.Test(); break; }
    }

    void CopyIn(int i, Bucket bucket, int offset)
    {
        var dst = bucket.Buffer.AsSpan(offset, _parameters[i].Size);
        if (_parameters[i].Grad is { } g) g.AsSpan().CopyTo(dst); else dst.Clear();
    }

    void StartReadyBuckets()
    {
        while (_nextToStart < _buckets.Length && _buckets[_nextToStart].Ready == _buckets[_nextToStart].Members.Length)
        {
            var b = _buckets[_nextToStart++];
            b.Done = false;
            b.Request = _group.StartAllReduceSum(b.Buffer);
        }
    }

    /// <summary>
    /// Copies in the gradients no hook delivered (parameters the pass did not reach), starts the remaining buckets, waits for
    /// every all-reduce and replaces each gradient by its sum over the ranks.
    /// </summary>
    public void Finish()
    {
        if (!_armed) throw new InvalidOperationException("GradientBuckets.Finish called without Arm.");
        _armed = false;
        for (int i = 0; i < _parameters.Length; i++)
        {
            if (_copied[i]) continue;
            var (bi, offset) = _slots[i];
            CopyIn(i, _buckets[bi], offset);
            _copied[i] = true;
            _buckets[bi].Ready++;
        }
        StartReadyBuckets();
        foreach (var b in _buckets)
        {
            b.Request!.Wait();
            b.Request = null;
            foreach (int i in b.Members)
            {
                var p = _parameters[i];
                if (p.Grad == null) p.Value.Grad = Tensor.Zeros(p.Value.ShapeArray);
                b.Buffer.AsSpan(_slots[i].Offset, p.Size).CopyTo(p.Grad!.AsSpan());
            }
        }
    }

    /// <summary>Removes the hooks from the parameters.</summary>
    public void Dispose()
    {
        foreach (var p in _parameters) if (p.Value.GradReadyHook == OnGradReady) p.Value.GradReadyHook = null;
    }

    sealed class Bucket(List<int> members, int floats)
    {
        public readonly int[] Members = [.. members];
        // pinned once here, so starting an all-reduce does not pin per step
        public readonly float[] Buffer = GC.AllocateUninitializedArray<float>(floats, pinned: true);
        public int Ready;
        public bool Done;
        public IReduceRequest? Request;
    }
}
