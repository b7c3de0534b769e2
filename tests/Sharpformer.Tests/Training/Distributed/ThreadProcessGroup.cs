using Sharpformer.Training.Distributed;

namespace Sharpformer.Tests.Training.Distributed;

/// <summary>
/// N ranks as N threads of this process (a test double for the MPI world): each collective is a rendezvous of all ranks;
/// sums add the ranks' values in rank order, so every rank gets the same bits. A rank that does not arrive within the
/// timeout fails the collective instead of hanging the test run.
/// </summary>
sealed class ThreadWorld(int size)
{
    readonly Barrier _barrier = new(size);
    readonly object?[] _slots = new object?[size];
    public int Size => size;
    /// <summary>Sizes of the float all-reduces in the order rank 0 started them.</summary>
    public List<int> Started { get; } = [];

    public IProcessGroup Rank(int rank) => new Group(this, rank);

    /// <summary>Runs <paramref name="body"/> on every rank in its own thread and returns the results by rank.</summary>
    public T[] Run<T>(Func<IProcessGroup, T> body)
    {
        var results = new T[size];
        var tasks = Enumerable.Range(0, size).Select(r => Task.Factory.StartNew(() => results[r] = body(Rank(r)), TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
        return results;
    }

    void Meet()
    {
        if (!_barrier.SignalAndWait(TimeSpan.FromSeconds(60))) throw new TimeoutException("A rank did not reach the collective (the ranks issued different collectives).");
    }

    T[] Exchange<T>(int rank, T mine)
    {
        _slots[rank] = mine;
        Meet();
        var all = _slots.Select(s => (T)s!).ToArray();
        Meet();
        return all;
    }

    sealed class Group(ThreadWorld world, int rank) : IProcessGroup
    {
        public int Rank => rank;
        public int Size => world.Size;

        public void AllReduceSum(Span<double> values)
        {
            var all = world.Exchange(rank, values.ToArray());
            int n = values.Length;
            if (all.Any(a => a.Length != n)) throw new InvalidOperationException("Ranks reduced different lengths.");
            for (int i = 0; i < values.Length; i++) { double s = 0; foreach (var a in all) s += a[i]; values[i] = s; }
        }

        public IReduceRequest StartAllReduceSum(Memory<float> buffer)
        {
            if (rank == 0) world.Started.Add(buffer.Length);
            var all = world.Exchange(rank, buffer.ToArray());
            int n = buffer.Length;
            if (all.Any(a => a.Length != n)) throw new InvalidOperationException("Ranks reduced different lengths.");
            var span = buffer.Span;
            for (int i = 0; i < span.Length; i++) { float s = 0; foreach (var a in all) s += a[i]; span[i] = s; }
            return new Done();
        }

        public void Broadcast(Span<float> buffer, int root)
        {
            var all = world.Exchange(rank, buffer.ToArray());
            all[root].CopyTo(buffer);
        }

        public void Barrier() => world.Meet();
    }

    sealed class Done : IReduceRequest
    {
        public bool Test() => true;
        public void Wait() { }
    }
}
