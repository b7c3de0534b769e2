using System.CommandLine;
using System.Runtime.Intrinsics;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer info</c>: what this machine offers the kernels.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Print the SIMD width, thread count and int8/bf16 kernels (CPU features) the kernels will use.");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"Vector512 accelerated: {Vector512.IsHardwareAccelerated}");
            Console.WriteLine($"Vector256 accelerated: {Vector256.IsHardwareAccelerated}");
            Console.WriteLine($"Default threads: {Sharpformer.Kernels.Parallelism.Resolve(Sharpformer.Tensors.ExecutionOptions.FromEnvironment().Threads)}");
            Console.WriteLine($"CPU features: {Sharpformer.Kernels.CpuFeatures.Describe()} ({Sharpformer.Kernels.CpuFeatures.JitVariable}=0 forces managed kernels)");
            Console.WriteLine($"int8 kernel: {Sharpformer.Kernels.Int8Gemm.Best}, bf16 kernel: {Sharpformer.Kernels.Bf16Gemm.Best}");
            return 0;
        });
        return cmd;
    }
}
