using System.CommandLine;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli;

/// <summary>
/// Runs the CLI in-process with given standard streams (tests, embedding): the same verbs and error handling as
/// <see cref="Program.Main"/>, with stdin available to verbs through <see cref="Input"/>.
/// </summary>
public static class CliHost
{
    static readonly AsyncLocal<TextReader?> InputOverride = new();

    /// <summary>Standard input for verbs that read texts from it.</summary>
    public static TextReader Input => InputOverride.Value ?? Console.In;

    public static int Invoke(string[] args, TextReader input, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("Sharpformer: transformer models for NLP, native to .NET.");
        foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
        var previous = InputOverride.Value;
        InputOverride.Value = input;
        try
        {
            return CliErrors.Run(() => root.Parse(args).Invoke(new InvocationConfiguration
            {
                Output = output, Error = error, EnableDefaultExceptionHandler = false,
            }), error);
        }
        finally { InputOverride.Value = previous; }
    }
}
