namespace Sharpformer.Cli;

/// <summary>Entry point: each verb lives in Commands/ as a thin wrapper over the library.</summary>
public static class Program
{
    // CliHost turns System.CommandLine's default handler (which prints stack traces) off, so CliErrors reports errors in one line.
    // Under mpirun every rank runs the same verb; only rank 0 prints (see CliHost.InvokeAsRank).
    public static int Main(string[] args) => Training.Distributed.ProcessGroups.Launched() is { Size: > 1 } launched
        ? CliHost.InvokeAsRank(args, launched.Rank)
        : CliHost.Invoke(args, Console.In, Console.Out, Console.Error);
}
