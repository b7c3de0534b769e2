using System.CommandLine;
using System.CommandLine.Help;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli;

/// <summary>
/// Runs the CLI in-process with given standard streams (tests, embedding): the same verbs and error handling as
/// <see cref="Program.Main"/>, with stdin available to verbs through <see cref="Input"/>.
/// </summary>
public static class CliHost
{
    static readonly AsyncLocal<TextReader?> InputOverride = new();
    static readonly AsyncLocal<bool?> InputRedirectedOverride = new();
    static readonly AsyncLocal<Hub.ShippedModelSearch?> ModelSearchOverride = new();

    /// <summary>Where verbs look for the shipped default model when no --model is given (SHARPFORMER_MODELS, else models/ above the current or program directory).</summary>
    public static Hub.ShippedModelSearch ModelSearch => ModelSearchOverride.Value ?? Hub.ShippedModelSearch.FromEnvironment();

    /// <summary>Like <see cref="Invoke(string[], TextReader, TextWriter, TextWriter)"/> with the shipped models looked up as <paramref name="modelSearch"/> says (tests, embedding).</summary>
    public static int Invoke(string[] args, TextReader input, TextWriter output, TextWriter error, Hub.ShippedModelSearch modelSearch)
    {
        var previous = ModelSearchOverride.Value;
        ModelSearchOverride.Value = modelSearch;
        try { return Invoke(args, input, output, error); }
        finally { ModelSearchOverride.Value = previous; }
    }

    /// <summary>Standard input for verbs that read texts from it.</summary>
    public static TextReader Input => InputOverride.Value ?? Console.In;

    /// <summary>True when <see cref="Input"/> is a pipe, a file or a caller's reader rather than a terminal.</summary>
    public static bool InputRedirected => InputRedirectedOverride.Value ?? Console.IsInputRedirected;

    /// <summary>The command tree. The root is named <c>sharpformer</c> (the tool's command name), not after the assembly.</summary>
    internal static Command CreateRoot()
    {
        // RootCommand takes its name from the executable (Sharpformer.Cli under `dotnet Sharpformer.Cli.dll`), so the root is a
        // plain command named as users type it, with the --help and --version options RootCommand would add.
        var root = new Command("sharpformer", "Sharpformer: transformer models for NLP, native to .NET.");
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
        return root;
    }

    /// <summary>
    /// Runs the CLI as one rank of a data-parallel job started by <c>mpirun</c>: rank 0 prints as usual; the other ranks
    /// print nothing but their errors, prefixed with their rank. A rank that fails ends the whole job (MPI_Abort) so the
    /// others do not wait for it forever in a collective.
    /// </summary>
    public static int InvokeAsRank(string[] args, int rank)
    {
        if (rank == 0) return Finish(Invoke(args, Console.In, Console.Out, Console.Error));
        var stderr = Console.Error;
        var errors = new StringWriter();
        // Verbs also write progress and results straight to Console; silence those on the replicas.
        Console.SetOut(TextWriter.Null);
        Console.SetError(TextWriter.Null);
        int code = Invoke(args, TextReader.Null, TextWriter.Null, errors);
        foreach (var line in errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)) stderr.WriteLine($"[rank {rank}] {line}");
        return Finish(code);

        static int Finish(int code)
        {
            if (code != 0 && Training.Distributed.MpiProcessGroup.IsInitialized) Training.Distributed.MpiProcessGroup.World.Abort(code);
            return code;
        }
    }

    public static int Invoke(string[] args, TextReader input, TextWriter output, TextWriter error)
    {
        var root = CreateRoot();
        var (previous, previousRedirected) = (InputOverride.Value, InputRedirectedOverride.Value);
        InputOverride.Value = input;
        InputRedirectedOverride.Value = ReferenceEquals(input, Console.In) ? null : true;
        try
        {
            return CliErrors.Run(() =>
            {
                var parse = root.Parse(args);
                if (CliParsing.UsageError(parse) is { } usage) { error.WriteLine($"error: {usage}"); return 1; }
                return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
            }, error);
        }
        finally { (InputOverride.Value, InputRedirectedOverride.Value) = (previous, previousRedirected); }
    }
}
