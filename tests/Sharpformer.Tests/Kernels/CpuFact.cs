using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>The CPU features a test can require (see <see cref="CpuFactAttribute"/>).</summary>
public enum CpuFeature { Avx512Vnni, Avx512Bf16, Amx }

/// <summary>
/// A [Fact] that runs only where the CPU has <see cref="CpuFeature"/> and emitting code is allowed, and is otherwise
/// reported as skipped with "skipped: CPU lacks X" (or that SHARPFORMER_JIT=0 forced the managed kernels).
/// </summary>
public sealed class CpuFactAttribute : FactAttribute
{
    public CpuFactAttribute(CpuFeature feature)
    {
        if (CpuSkip.Reason(feature) is { } reason) Skip = reason;
    }
}

/// <summary>The [Theory] form of <see cref="CpuFactAttribute"/>.</summary>
public sealed class CpuTheoryAttribute : TheoryAttribute
{
    public CpuTheoryAttribute(CpuFeature feature)
    {
        if (CpuSkip.Reason(feature) is { } reason) Skip = reason;
    }
}

internal static class CpuSkip
{
    public static string? Reason(CpuFeature feature)
    {
        bool has = feature switch
        {
            CpuFeature.Avx512Vnni => CpuFeatures.Avx512Vnni,
            CpuFeature.Avx512Bf16 => CpuFeatures.Avx512Bf16,
            _ => CpuFeatures.Amx,
        };
        string name = feature switch { CpuFeature.Avx512Vnni => "AVX512_VNNI", CpuFeature.Avx512Bf16 => "AVX512_BF16", _ => "AMX" };
        if (!has) return $"skipped: CPU lacks {name}";
        if (!CpuFeatures.JitAllowed) return $"skipped: {CpuFeatures.JitVariable}=0 (or not x86-64 Linux) keeps emitted kernels off";
        return null;
    }
}

/// <summary>A [Fact] that needs GNU as and objcopy (apt-get install -y binutils) to check encodings against a real assembler.</summary>
public sealed class AssemblerFactAttribute : FactAttribute
{
    public AssemblerFactAttribute()
    {
        if (!File.Exists("/usr/bin/as") || !File.Exists("/usr/bin/objcopy"))
            Skip = "skipped: GNU as/objcopy are not installed (apt-get install -y binutils); the stored encodings are still checked";
    }
}
