namespace Sharpformer.Kernels;

/// <summary>The 512-bit dot-product instruction an emitted GEMM micro-kernel is built on.</summary>
internal enum DotInstruction
{
    /// <summary>vpdpbusd: u8 activations × s8 weights, 4 per int32 lane (AVX512_VNNI).</summary>
    Vpdpbusd,
    /// <summary>vdpbf16ps: bf16 pairs × bf16 pairs into fp32 lanes (AVX512_BF16).</summary>
    Vdpbf16ps,
}

/// <summary>
/// GEMM micro-kernels emitted at run time for the dot-product instructions .NET has no intrinsic for. One kernel computes
/// acc[i, 16·j + c] = Σ_s dot(a_i[s], b_j[s][c]) for mr ≤ <see cref="MaxRows"/> rows and nb ≤ <see cref="MaxBlocks"/>
/// packed blocks of 16 output channels, where each step s covers 4 bytes of a row (4 u8 or 2 bf16) and 64 bytes of a
/// block (16 channels × those 4 bytes) — the packing of <see cref="Int8PackedWeights"/> and <see cref="Bf16PackedWeights"/>.
/// </summary>
/// <remarks>
/// Calling convention (System V x86-64): kernel(a = rdi, lda bytes = rsi, b = rdx, block stride bytes = rcx, acc = r8,
/// steps = r9 ≥ 1). acc is [mr][<see cref="AccStride"/>] int32 or fp32, written (not added to). Registers: zmm0–23
/// accumulators (row-major over rows × blocks), zmm24–27 the blocks' weights of one step, zmm28/29 the broadcast
/// activations of alternating rows; rows 3–5 are addressed through r10 = 3·lda and r11 = a + 4·lda, block 3 through
/// rax = 3·stride — all caller-saved, so the kernel needs no prologue. Per step: nb weight loads and mr broadcasts feed
/// mr·nb dot products, which keeps loads well under the two per cycle current cores sustain.
/// All 24 (mr, nb) shapes are emitted together into one read+execute region the first time an instruction is used.
/// </remarks>
internal static unsafe class JitDotKernels
{
    public const int MaxRows = 6, MaxBlocks = 4, AccStride = 64;

    /// <summary>Bytes of a packed weight block per step: 16 channels × 4 bytes.</summary>
    public const int StepBytes = 64;

    static readonly Lazy<nint[]?> Int8 = new(() => Build(DotInstruction.Vpdpbusd));
    static readonly Lazy<nint[]?> Bf16 = new(() => Build(DotInstruction.Vdpbf16ps));

    /// <summary>True when the CPU has the instruction, emitting is allowed (<see cref="CpuFeatures.JitAllowed"/>) and the kernels were mapped.</summary>
    public static bool IsAvailable(DotInstruction ins) => ins switch
    {
        DotInstruction.Vpdpbusd => CpuFeatures.JitAllowed && CpuFeatures.Avx512Vnni && Int8.Value != null,
        DotInstruction.Vdpbf16ps => CpuFeatures.JitAllowed && CpuFeatures.Avx512Bf16 && Bf16.Value != null,
        _ => false,
    };

    /// <summary>The kernel for mr rows × nb blocks; only call after <see cref="IsAvailable"/> returned true.</summary>
    public static delegate* unmanaged[SuppressGCTransition]<void*, nint, void*, nint, void*, nint, void> Get(DotInstruction ins, int mr, int nb)
    {
        var table = (ins == DotInstruction.Vpdpbusd ? Int8 : Bf16).Value ?? throw new PlatformNotSupportedException($"No {ins} kernels on this machine.");
        return (delegate* unmanaged[SuppressGCTransition]<void*, nint, void*, nint, void*, nint, void>)table[(mr - 1) * MaxBlocks + nb - 1];
    }

    /// <summary>Every (mr, nb) kernel of one instruction in one emitter, kernel k starting at offsets[k].</summary>
    internal static X64Emitter EmitAll(DotInstruction ins, out int[] offsets)
    {
        var e = new X64Emitter();
        offsets = new int[MaxRows * MaxBlocks];
        for (int mr = 1; mr <= MaxRows; mr++)
            for (int nb = 1; nb <= MaxBlocks; nb++)
            {
                offsets[(mr - 1) * MaxBlocks + nb - 1] = e.Length;
                Emit(e, ins, mr, nb);
            }
        return e;
    }

    static nint[]? Build(DotInstruction ins)
    {
        bool cpu = ins == DotInstruction.Vpdpbusd ? CpuFeatures.Avx512Vnni : CpuFeatures.Avx512Bf16;
        if (!cpu || !CpuFeatures.JitAllowed) return null;
        var e = EmitAll(ins, out var offsets);
        nint code;
        try { code = ExecutableMemory.Load(e.ToArray()); }
        catch (PlatformNotSupportedException) { return null; } // the managed kernels run instead
        return offsets.Select(o => code + o).ToArray();
    }

    static void Emit(X64Emitter e, DotInstruction ins, int mr, int nb)
    {
        const int W = 24, A = 28;
        for (int r = 0; r < mr; r++) for (int j = 0; j < nb; j++) e.VpxordZero(r * nb + j);
        if (mr > 3) e.Lea(Gpr.R10, new Mem(Gpr.Rsi, Gpr.Rsi, 2));
        if (mr > 4) e.Lea(Gpr.R11, new Mem(Gpr.Rdi, Gpr.Rsi, 4));
        if (nb > 3) e.Lea(Gpr.Rax, new Mem(Gpr.Rcx, Gpr.Rcx, 2));
        int loop = e.Label();
        for (int j = 0; j < nb; j++) e.Vmovdqu32Load(W + j, BlockOperand(j));
        for (int r = 0; r < mr; r++)
        {
            int a = A + (r & 1);
            if (ins == DotInstruction.Vpdpbusd) e.Vpbroadcastd(a, RowOperand(r));
            else e.Vbroadcastss(a, RowOperand(r));
            for (int j = 0; j < nb; j++)
                if (ins == DotInstruction.Vpdpbusd) e.Vpdpbusd(r * nb + j, a, W + j);
                else e.Vdpbf16ps(r * nb + j, a, W + j);
        }
        e.Add(Gpr.Rdi, 4);
        if (mr > 4) e.Add(Gpr.R11, 4);
        e.Add(Gpr.Rdx, StepBytes);
        e.Dec(Gpr.R9);
        e.JnzBack(loop);
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nb; j++)
            {
                var dst = new Mem(Gpr.R8, Disp: (r * AccStride + j * 16) * 4);
                if (ins == DotInstruction.Vpdpbusd) e.Vmovdqu32Store(dst, r * nb + j);
                else e.VmovupsStore(dst, r * nb + j);
            }
        e.Vzeroupper();
        e.Ret();
    }

    static Mem RowOperand(int r) => r switch
    {
        0 => new Mem(Gpr.Rdi),
        1 => new Mem(Gpr.Rdi, Gpr.Rsi),
        2 => new Mem(Gpr.Rdi, Gpr.Rsi, 2),
        3 => new Mem(Gpr.Rdi, Gpr.R10),
        4 => new Mem(Gpr.R11),
        _ => new Mem(Gpr.R11, Gpr.Rsi),
    };

    static Mem BlockOperand(int j) => j switch
    {
        0 => new Mem(Gpr.Rdx),
        1 => new Mem(Gpr.Rdx, Gpr.Rcx),
        2 => new Mem(Gpr.Rdx, Gpr.Rcx, 2),
        _ => new Mem(Gpr.Rdx, Gpr.Rax),
    };
}
