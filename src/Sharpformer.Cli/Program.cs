using System.CommandLine;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli;

/// <summary>Entry point: each verb lives in Commands/ as a thin wrapper over the library.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("Sharpformer: transformer models for NLP, native to .NET.");
        foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
        return CliErrors.Run(() => root.Parse(args).Invoke());
    }
}
