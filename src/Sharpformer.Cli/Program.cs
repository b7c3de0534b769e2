namespace Sharpformer.Cli;

/// <summary>Entry point: each verb lives in Commands/ as a thin wrapper over the library.</summary>
public static class Program
{
    // CliHost turns System.CommandLine's default handler (which prints stack traces) off, so CliErrors reports errors in one line.
    public static int Main(string[] args) => CliHost.Invoke(args, Console.In, Console.Out, Console.Error);
}
