namespace Sharpformer.Training.Distributed;

/// <summary>
/// The processes of one data-parallel run and the collectives the trainer needs from them (the subset of MPI that
/// PyTorch DDP and Horovod use): a rank, a size, a sum all-reduce that can run in the background, broadcast and barrier.
/// </summary>
/// <remarks>
/// Every rank must call the collectives in the same order with the same counts (MPI's rule); the trainer does.
/// <see cref="SingleProcessGroup"/> is the one-process group (every collective is the identity); <see cref="MpiProcessGroup"/>
/// runs over Open MPI. <see cref="ProcessGroups.FromEnvironment"/> picks between them from what <c>mpirun</c> set.
/// </remarks>
public interface IProcessGroup
{
    /// <summary>This process's index in [0, <see cref="Size"/>); rank 0 writes checkpoints and logs.</summary>
    int Rank { get; }

    /// <summary>Number of processes (the world size).</summary>
    int Size { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank by their element-wise sum over all ranks (blocking).</summary>
    void AllReduceSum(Span<double> values);

    /// <summary>
    /// Starts summing <paramref name="buffer"/> over all ranks in place and returns at once; the buffer is pinned and must
    /// not be touched until the returned request completes.
    /// </summary>
    IReduceRequest StartAllReduceSum(Memory<float> buffer);

    /// <summary>Copies <paramref name="buffer"/> of rank <paramref name="root"/> into every other rank's buffer (blocking).</summary>
    void Broadcast(Span<float> buffer, int root);

    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();
}

/// <summary>A collective started by <see cref="IProcessGroup.StartAllReduceSum"/>.</summary>
public interface IReduceRequest
{
    /// <summary>Lets the library make progress and returns true when the result is in the buffer (then the request is finished).</summary>
    bool Test();

    /// <summary>Blocks until the result is in the buffer.</summary>
    void Wait();
}

/// <summary>One process: rank 0 of 1, every collective is the identity.</summary>
public sealed class SingleProcessGroup : IProcessGroup
{
    /// <summary>The group of this process alone.</summary>
    public static SingleProcessGroup Instance { get; } = new();

    SingleProcessGroup() { }

    public int Rank => 0;
    public int Size => 1;
    public void AllReduceSum(Span<double> values) { }
    public IReduceRequest StartAllReduceSum(Memory<float> buffer) => Completed.Instance;
    public void Broadcast(Span<float> buffer, int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "A one-process group has only rank 0.");
    }
    public void Barrier() { }

    sealed class Completed : IReduceRequest
    {
        public static readonly Completed Instance = new();
        public bool Test() => true;
        public void Wait() { }
    }
}

/// <summary>Collectives built on the sum all-reduce.</summary>
public static class Collectives
{
    /// <summary>
    /// Every rank receives every item: <paramref name="mine"/> holds this rank's items at their indices and null elsewhere,
    /// each index being given by exactly one rank. Two sum all-reduces (the lengths, then the values at their offsets, zeros
    /// elsewhere), so the integers arrive exactly.
    /// </summary>
    public static int[][] AllGather(this IProcessGroup group, IReadOnlyList<int[]?> mine)
    {
        var lengths = new double[mine.Count];
        for (int i = 0; i < mine.Count; i++) lengths[i] = mine[i]?.Length ?? 0;
        group.AllReduceSum(lengths);
        var offsets = new long[mine.Count + 1];
        for (int i = 0; i < mine.Count; i++) offsets[i + 1] = offsets[i] + (long)lengths[i];
        var values = new double[offsets[^1]];
        for (int i = 0; i < mine.Count; i++)
            if (mine[i] is { } item)
                for (int j = 0; j < item.Length; j++) values[offsets[i] + j] = item[j];
        group.AllReduceSum(values);
        var all = new int[mine.Count][];
        for (int i = 0; i < mine.Count; i++)
        {
            all[i] = new int[(int)lengths[i]];
            for (int j = 0; j < all[i].Length; j++) all[i][j] = (int)values[offsets[i] + j];
        }
        return all;
    }
}

/// <summary>Finds the process group a launcher set up for this process.</summary>
public static class ProcessGroups
{
    /// <summary>
    /// The rank <c>mpirun</c> gave this process and the world size, read from the launcher's environment without starting
    /// MPI; (0, 1) when not launched by an MPI launcher. For logging set-up before any training starts.
    /// </summary>
    /// <remarks>Open MPI sets OMPI_COMM_WORLD_RANK/SIZE; MPICH's Hydra and Slurm's PMI set PMI_RANK/SIZE.</remarks>
    public static (int Rank, int Size) Launched()
    {
        static int? Read(string name) => int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : null;
        int? size = Read("OMPI_COMM_WORLD_SIZE") ?? Read("PMI_SIZE");
        int? rank = Read("OMPI_COMM_WORLD_RANK") ?? Read("PMI_RANK");
        return size is > 1 && rank is >= 0 ? (rank.Value, size.Value) : (0, 1);
    }

    /// <summary>
    /// The MPI world (<see cref="MpiProcessGroup.World"/>, initialising MPI on first use) when this process was started by
    /// Open MPI's <c>mpirun</c> with more than one process; otherwise <see cref="SingleProcessGroup.Instance"/>.
    /// </summary>
    /// <exception cref="DistributedException">Launched by another MPI's launcher (its C ABI differs from Open MPI's).</exception>
    public static IProcessGroup FromEnvironment()
    {
        if (Launched().Size == 1) return SingleProcessGroup.Instance;
        if (Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") == null)
            throw new DistributedException("This process was started by an MPI launcher other than Open MPI's (PMI_SIZE is set, OMPI_COMM_WORLD_SIZE is not). " +
                "Sharpformer's MPI binding targets Open MPI's C ABI; launch with Open MPI's mpirun (Debian: apt-get install openmpi-bin).");
        return MpiProcessGroup.World;
    }
}

/// <summary>A collective failed, MPI could not be loaded, or the ranks disagree.</summary>
public sealed class DistributedException(string message) : SharpformerException(message);
