using System.Runtime.InteropServices;

namespace Sharpformer.Kernels;

/// <summary>
/// int8 GEMM micro-kernels on AMX tiles (tdpbusd), emitted at run time like <see cref="JitDotKernels"/> and writing the
/// same accumulator layout: acc[i, 16·j + c] for i &lt; mr ≤ 16 rows and nb ≤ 4 blocks of 16 channels, over steps of 64
/// bytes of k. <see cref="Int8PackedWeights"/>' block layout [k/4][16][4] is exactly tdpbusd's B-tile layout (16 rows of
/// 4 k × 16 channels per 64 k), so the weights need no repacking.
/// </summary>
/// <remarks>
/// kernel(a = rdi, lda = rsi, b = rdx, block stride = rcx, acc = r8, steps = r9, tile config = [rsp+8]); tiles: tmm0–3 the
/// accumulators (mr rows × 64 bytes), tmm4 the activations (mr rows × 64 bytes), tmm5–7 the weights (16 rows × 64 bytes).
/// Linux makes a process ask for the tile data state first (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18).
/// Not yet run on an AMX machine when written (the test host had none), so <see cref="Int8Gemm.Best"/> does not pick it;
/// its reference-twin test runs where AMX exists.
/// </remarks>
internal static unsafe partial class AmxKernels
{
    public const int MaxRows = 16, StepBytes = 64;

    const long SysArchPrctl = 158, ArchReqXcompPerm = 0x1023, XfeatureXtiledata = 18;

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long arg1, long arg2);

    static readonly Lazy<nint[]?> Int8 = new(Build);

    /// <summary>True when the CPU has AMX-TILE/INT8, emitting is allowed, Linux granted the tile state and the kernels were mapped.</summary>
    public static bool IsAvailable => CpuFeatures.JitAllowed && CpuFeatures.Amx && Int8.Value != null;

    /// <summary>The kernel for nb blocks; mr comes from the tile configuration (<see cref="Configure"/>).</summary>
    public static delegate* unmanaged[SuppressGCTransition]<void*, nint, void*, nint, void*, nint, void*, void> Get(int nb) =>
        (delegate* unmanaged[SuppressGCTransition]<void*, nint, void*, nint, void*, nint, void*, void>)(Int8.Value ?? throw new PlatformNotSupportedException("No AMX kernels on this machine."))[nb - 1];

    /// <summary>Writes the 64-byte palette-1 tile configuration for mr rows: tiles 0–4 mr rows, 5–7 sixteen rows, all 64 bytes wide.</summary>
    public static void Configure(byte* cfg, int mr)
    {
        new Span<byte>(cfg, 64).Clear();
        cfg[0] = 1;
        for (int t = 0; t < 8; t++)
        {
            ((ushort*)(cfg + 16))[t] = StepBytes;
            cfg[48 + t] = (byte)(t < 5 ? mr : 16);
        }
    }

    /// <summary>All four (nb = 1…4) kernels in one emitter, kernel nb starting at offsets[nb − 1].</summary>
    internal static X64Emitter EmitAll(out int[] offsets)
    {
        var e = new X64Emitter();
        offsets = new int[JitDotKernels.MaxBlocks];
        for (int nb = 1; nb <= JitDotKernels.MaxBlocks; nb++)
        {
            offsets[nb - 1] = e.Length;
            Emit(e, nb);
        }
        return e;
    }

    static nint[]? Build()
    {
        if (!CpuFeatures.Amx || !CpuFeatures.JitAllowed) return null;
        if (syscall(SysArchPrctl, ArchReqXcompPerm, XfeatureXtiledata) != 0) return null; // the kernel refused the tile state
        var e = EmitAll(out var offsets);
        nint code;
        try { code = ExecutableMemory.Load(e.ToArray()); }
        catch (PlatformNotSupportedException) { return null; }
        return offsets.Select(o => code + o).ToArray();
    }

    static void Emit(X64Emitter e, int nb)
    {
        const int A = 4;
        e.Mov(Gpr.Rax, new Mem(Gpr.Rsp, Disp: 8));
        e.Ldtilecfg(new Mem(Gpr.Rax));
        for (int j = 0; j < nb; j++) e.Tilezero(j);
        e.Mov(Gpr.R10, StepBytes); // a B tile's rows are 64 bytes apart
        int loop = e.Label();
        e.Tileloadd(A, new Mem(Gpr.Rdi, Gpr.Rsi));
        for (int j = 0; j < nb; j++)
        {
            int b = 5 + j % 3;
            if (j == 0) e.Tileloadd(b, new Mem(Gpr.Rdx, Gpr.R10));
            else
            {
                e.Lea(Gpr.R11, j == 3 ? new Mem(Gpr.R11, Gpr.Rcx) : new Mem(Gpr.Rdx, Gpr.Rcx, j));
                e.Tileloadd(b, new Mem(Gpr.R11, Gpr.R10));
            }
            e.Tdpbusd(j, A, b);
        }
        e.Add(Gpr.Rdi, StepBytes);
        e.Add(Gpr.Rdx, 16 * StepBytes); // 64 k of a block: 16 rows of 64 bytes
        e.Dec(Gpr.R9);
        e.JnzBack(loop);
        e.Mov(Gpr.R11, JitDotKernels.AccStride * 4);
        for (int j = 0; j < nb; j++)
        {
            e.Lea(Gpr.Rax, new Mem(Gpr.R8, Disp: j * 64));
            e.Tilestored(new Mem(Gpr.Rax, Gpr.R11), j);
        }
        e.Tilerelease();
        e.Ret();
    }
}
