using System.Buffers;
using System.Runtime.InteropServices;

namespace Sharpformer.Training.Distributed;

/// <summary>
/// The MPI world (MPI_COMM_WORLD) as an <see cref="IProcessGroup"/>, over Open MPI 4.x's C library (libmpi.so.40,
/// Debian's openmpi-bin / libopenmpi3) through the thin binding <see cref="OpenMpiAbi"/>.
/// </summary>
/// <remarks>
/// MPI is initialised (MPI_Init_thread, MPI_THREAD_SERIALIZED) on first use of <see cref="World"/> and finalised when the
/// process exits normally. A process that fails must call <see cref="Abort"/> instead: MPI_Finalize would wait for ranks
/// that are themselves waiting for this one in a collective. Calls are serialised with a lock, so any one thread at a time
/// may use the group (MPI_THREAD_SERIALIZED's rule).
/// </remarks>
public sealed unsafe class MpiProcessGroup : IProcessGroup
{
    static readonly Lazy<MpiProcessGroup> LazyWorld = new(() => new MpiProcessGroup(OpenMpiAbi.Load()), LazyThreadSafetyMode.ExecutionAndPublication);

    readonly OpenMpiAbi _mpi;
    readonly Lock _gate = new();
    bool _finalized;

    /// <summary>MPI_COMM_WORLD of this process, initialising MPI on first use.</summary>
    /// <exception cref="DistributedException">libmpi.so.40 cannot be loaded or MPI_Init_thread fails.</exception>
    public static MpiProcessGroup World => LazyWorld.Value;

    /// <summary>True once <see cref="World"/> has initialised MPI in this process (so <see cref="Abort"/> is meaningful).</summary>
    public static bool IsInitialized => LazyWorld.IsValueCreated;

    MpiProcessGroup(OpenMpiAbi mpi)
    {
        _mpi = mpi;
        int already;
        Check(_mpi.Initialized(&already), "MPI_Initialized");
        if (already == 0)
        {
            int provided;
            Check(_mpi.InitThread(null, null, OpenMpiAbi.ThreadSerialized, &provided), "MPI_Init_thread");
            if (provided < OpenMpiAbi.ThreadSerialized)
                throw new DistributedException($"Open MPI provides thread level {provided}; Sharpformer needs MPI_THREAD_SERIALIZED ({OpenMpiAbi.ThreadSerialized}) " +
                    "because .NET may run the trainer on a thread other than the one that initialised MPI.");
            AppDomain.CurrentDomain.ProcessExit += (_, _) => FinalizeOnExit();
        }
        int rank, size;
        Check(_mpi.CommRank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(_mpi.CommSize(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank; Size = size;
    }

    public int Rank { get; }
    public int Size { get; }

    /// <summary>The Open MPI library version string (MPI_Get_library_version), e.g. "Open MPI v4.1.4, …".</summary>
    public string LibraryVersion
    {
        get
        {
            var buffer = stackalloc byte[OpenMpiAbi.MaxLibraryVersionString];
            int length;
            lock (_gate) Check(_mpi.GetLibraryVersion(buffer, &length), "MPI_Get_library_version");
            return new string((sbyte*)buffer, 0, length).TrimEnd('\0', '\n');
        }
    }

    public void AllReduceSum(Span<double> values)
    {
        fixed (double* p = values)
            lock (_gate) Check(_mpi.Allreduce(OpenMpiAbi.InPlace, p, values.Length, _mpi.Double, _mpi.OpSum, _mpi.CommWorld), "MPI_Allreduce");
    }

    public IReduceRequest StartAllReduceSum(Memory<float> buffer)
    {
        var pin = buffer.Pin();
        nint request;
        try
        {
            lock (_gate) Check(_mpi.Iallreduce(OpenMpiAbi.InPlace, pin.Pointer, buffer.Length, _mpi.Float, _mpi.OpSum, _mpi.CommWorld, &request), "MPI_Iallreduce");
        }
        catch { pin.Dispose(); throw; }
        return new Request(this, pin, request);
    }

    public void Broadcast(Span<float> buffer, int root)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"The world has ranks 0..{Size - 1}.");
        fixed (float* p = buffer)
            lock (_gate) Check(_mpi.Bcast(p, buffer.Length, _mpi.Float, root, _mpi.CommWorld), "MPI_Bcast");
    }

    public void Barrier()
    {
        lock (_gate) Check(_mpi.Barrier(_mpi.CommWorld), "MPI_Barrier");
    }

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (MPI_Abort): what a failing rank must do so the others do not wait forever.</summary>
    public void Abort(int exitCode)
    {
        _mpi.Abort(_mpi.CommWorld, exitCode);
    }

    void FinalizeOnExit()
    {
        lock (_gate)
        {
            if (_finalized) return;
            _finalized = true;
            _mpi.FinalizeMpi();
        }
    }

    static void Check(int code, string function)
    {
        // Open MPI's default handler on MPI_COMM_WORLD (MPI_ERRORS_ARE_FATAL) aborts before returning an error; this is for
        // a handler changed by the host application.
        if (code != OpenMpiAbi.Success) throw new DistributedException($"{function} failed with MPI error code {code}.");
    }

    sealed class Request(MpiProcessGroup group, MemoryHandle pin, nint handle) : IReduceRequest
    {
        nint _handle = handle;
        MemoryHandle _pin = pin;
        bool _done;

        public bool Test()
        {
            if (_done) return true;
            int flag;
            nint h = _handle;
            lock (group._gate) Check(group._mpi.Test(&h, &flag, null), "MPI_Test");
            _handle = h;
            if (flag != 0) Complete();
            return _done;
        }

        public void Wait()
        {
            if (_done) return;
            nint h = _handle;
            lock (group._gate) Check(group._mpi.Wait(&h, null), "MPI_Wait");
            _handle = h;
            Complete();
        }

        void Complete() { _done = true; _pin.Dispose(); }
    }
}

/// <summary>
/// The part of Open MPI 4.x's C ABI (libmpi.so.40) the trainer uses, resolved at run time with
/// <see cref="NativeLibrary"/>: functions as unmanaged function pointers and the predefined handles as addresses of exported
/// objects.
/// </summary>
/// <remarks>
/// This binding is specific to Open MPI. Its <c>mpi.h</c> makes every handle a pointer to a library-internal struct, and the
/// predefined ones are the addresses of exported globals: <c>MPI_COMM_WORLD</c> is <c>&amp;ompi_mpi_comm_world</c>,
/// <c>MPI_FLOAT</c> <c>&amp;ompi_mpi_float</c>, <c>MPI_SUM</c> <c>&amp;ompi_mpi_op_sum</c> — so they are resolved here with
/// <see cref="NativeLibrary.GetExport"/>, exactly like the functions. MPICH (and its ABI family: Intel MPI, MVAPICH) uses
/// integer constants instead (<c>MPI_COMM_WORLD</c> = 0x44000000, <c>MPI_FLOAT</c> = 0x4c00040a) and a different
/// <c>MPI_Status</c>; it would need its own table of constants, not this one. <c>MPI_IN_PLACE</c> is <c>(void*)1</c> and
/// <c>MPI_STATUS_IGNORE</c> is NULL in Open MPI. The library is opened with RTLD_GLOBAL first because Open MPI loads its
/// transport components as plugins that resolve symbols from libmpi in the global namespace (mpi4py does the same).
/// </remarks>
internal sealed unsafe class OpenMpiAbi
{
    public const string LibraryName = "libmpi.so.40";
    public const int Success = 0;
    /// <summary>MPI_THREAD_SERIALIZED in Open MPI's mpi.h (SINGLE 0, FUNNELED 1, SERIALIZED 2, MULTIPLE 3).</summary>
    public const int ThreadSerialized = 2;
    /// <summary>MPI_MAX_LIBRARY_VERSION_STRING in Open MPI's mpi.h.</summary>
    public const int MaxLibraryVersionString = 256;
    /// <summary>MPI_IN_PLACE: <c>(void *) 1</c> in Open MPI.</summary>
    public static readonly void* InPlace = (void*)1;

    public readonly nint CommWorld, Float, Double, OpSum;
    public readonly delegate* unmanaged<int*, int> Initialized;
    public readonly delegate* unmanaged<int*, byte***, int, int*, int> InitThread;
    public readonly delegate* unmanaged<int> FinalizeMpi;
    public readonly delegate* unmanaged<nint, int, int> Abort;
    public readonly delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public readonly delegate* unmanaged<byte*, int*, int> GetLibraryVersion;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> Allreduce;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> Iallreduce;
    public readonly delegate* unmanaged<void*, int, nint, int, nint, int> Bcast;
    public readonly delegate* unmanaged<nint, int> Barrier;
    public readonly delegate* unmanaged<nint*, int*, void*, int> Test;
    public readonly delegate* unmanaged<nint*, void*, int> Wait;

    OpenMpiAbi(nint lib)
    {
        nint Export(string name) => NativeLibrary.TryGetExport(lib, name, out var address) ? address
            : throw new DistributedException($"{LibraryName} has no export '{name}': it is not Open MPI 4.x (this binding targets Open MPI's C ABI).");
        CommWorld = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Double = Export("ompi_mpi_double");
        OpSum = Export("ompi_mpi_op_sum");
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        InitThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        FinalizeMpi = (delegate* unmanaged<int>)Export("MPI_Finalize");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        GetLibraryVersion = (delegate* unmanaged<byte*, int*, int>)Export("MPI_Get_library_version");
        Allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce");
        Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        Test = (delegate* unmanaged<nint*, int*, void*, int>)Export("MPI_Test");
        Wait = (delegate* unmanaged<nint*, void*, int>)Export("MPI_Wait");
    }

    /// <summary>Opens libmpi.so.40 (RTLD_NOW | RTLD_GLOBAL) and resolves the functions and predefined handles.</summary>
    public static OpenMpiAbi Load()
    {
        if (!OperatingSystem.IsLinux())
            throw new DistributedException("The Open MPI binding is written for Linux (libmpi.so.40); run data-parallel training on Linux.");
        const int RtldNow = 2, RtldGlobal = 0x100;
        var libc = NativeLibrary.Load("libc.so.6");
        var dlopen = (delegate* unmanaged<byte*, int, nint>)NativeLibrary.GetExport(libc, "dlopen");
        nint handle;
        fixed (byte* name = "libmpi.so.40\0"u8) handle = dlopen(name, RtldNow | RtldGlobal);
        if (handle == 0)
            throw new DistributedException($"Cannot load {LibraryName} (Open MPI 4.x). Install it (Debian: apt-get install openmpi-bin libopenmpi3) " +
                "or run without mpirun for single-process training.");
        return new OpenMpiAbi(handle);
    }
}
