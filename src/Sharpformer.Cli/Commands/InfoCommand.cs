using System.CommandLine;
using System.Runtime.Intrinsics;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer info</c>: what this machine offers the kernels.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Print the SIMD width and thread count the kernels will use.");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"Vector512 accelerated: {Vector512.IsHardwareAccelerated}");
            Console.WriteLine($"Vector256 accelerated: {Vector256.IsHardwareAccelerated}");
            Console.WriteLine($"Default threads: {Sharpformer.Kernels.Parallelism.Resolve(Sharpformer.Tensors.ExecutionOptions.FromEnvironment().Threads)}");
            return 0;
        });
        return cmd;
    }
}
