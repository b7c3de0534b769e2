using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

/// <summary>
/// The x86 features the run-time-emitted kernels need, read once from CPUID (leaf 7: subleaf 0 ECX bit 11 AVX512_VNNI,
/// EDX bits 22/24/25 AMX-BF16/AMX-TILE/AMX-INT8; subleaf 1 EAX bit 5 AVX512_BF16), and whether emitting code is allowed.
/// </summary>
/// <remarks>
/// .NET 10 exposes 256-bit AVX-VNNI as intrinsics but neither 512-bit VNNI/BF16 nor AMX, so those kernels are machine
/// code written at run time (<see cref="X64Emitter"/>). AVX-512 itself is taken from <see cref="Avx512BW"/>.IsSupported,
/// which also means the OS saves the zmm state (XCR0) and the runtime was not told to avoid AVX-512.
/// Setting the environment variable <c>SHARPFORMER_JIT=0</c> turns every emitted kernel off (the managed ones run), for
/// comparing the two or working around a fault on an unusual machine.
/// </remarks>
public static class CpuFeatures
{
    /// <summary>The environment variable that, set to 0, forces the managed kernels.</summary>
    public const string JitVariable = "SHARPFORMER_JIT";

    static readonly (bool Vnni, bool Bf16, bool AmxTile, bool AmxInt8, bool AmxBf16) Leaf7 = Read();

    static (bool, bool, bool, bool, bool) Read()
    {
        if (!X86Base.IsSupported || X86Base.CpuId(0, 0).Eax < 7) return default;
        var (_, _, ecx, edx) = X86Base.CpuId(7, 0);
        var (eax1, _, _, _) = X86Base.CpuId(7, 1);
        return ((ecx & (1 << 11)) != 0, (eax1 & (1 << 5)) != 0, (edx & (1 << 24)) != 0, (edx & (1 << 25)) != 0, (edx & (1 << 22)) != 0);
    }

    /// <summary>AVX-512 F+BW+VL usable (CPU, OS and runtime).</summary>
    public static bool Avx512 => Avx512F.IsSupported && Avx512BW.IsSupported && Avx512F.VL.IsSupported;
    /// <summary>512-bit vpdpbusd (AVX512_VNNI: Intel Ice Lake+, AMD Zen 4+).</summary>
    public static bool Avx512Vnni => Avx512 && Leaf7.Vnni;
    /// <summary>vdpbf16ps (AVX512_BF16: Intel Cooper Lake / Sapphire Rapids+, AMD Zen 4+).</summary>
    public static bool Avx512Bf16 => Avx512 && Leaf7.Bf16;
    /// <summary>AMX tiles with int8 and bf16 TMUL (Intel Sapphire Rapids+), as the CPU reports them.</summary>
    public static bool Amx => Leaf7.AmxTile && Leaf7.AmxInt8 && Leaf7.AmxBf16;

    /// <summary>
    /// True when kernels may be emitted at run time: x86-64 Linux (mmap/mprotect, System V calling convention) and
    /// <c>SHARPFORMER_JIT</c> not set to 0.
    /// </summary>
    public static bool JitAllowed { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64 && OperatingSystem.IsLinux()
        && Environment.GetEnvironmentVariable(JitVariable) != "0";

    /// <summary>One line naming what this machine runs, for bench output.</summary>
    public static string Describe() =>
        $"avx512={Avx512} avx512_vnni={Leaf7.Vnni} avx512_bf16={Leaf7.Bf16} avx_vnni={AvxVnni.IsSupported} amx={Amx} jit={JitAllowed}";
}
