using System.CommandLine;
using Sharpformer.Hub;

namespace Sharpformer.Cli;

/// <summary>
/// The <c>--model</c> option of a verb, and its one reading: the value given, else — for a verb with a shipped default — the
/// task's model in the repository's <c>models/</c> folder (<see cref="ShippedModels"/>), else a clear error.
/// </summary>
internal static class ModelOption
{
    /// <summary>An option required when <paramref name="task"/> is null, optional with the shipped default otherwise.</summary>
    public static Option<string?> Create(string description, ShippedTask? task = null) => new("--model")
    {
        Description = task is { } t ? $"{description} Default: {ShippedModels.FolderName}/{ShippedModels.DefaultName(t)} (the shipped model; {ShippedModels.EnvironmentVariable} sets the folder)." : description,
        Required = task is null,
    };

    /// <summary>The model directory or Hub id to load.</summary>
    public static string Read(ParseResult r, Option<string?> option, ShippedTask? task) =>
        r.GetValue(option) ?? (task is { } t ? ShippedModels.Resolve(t, CliHost.ModelSearch)
            : throw new ArgumentException("--model is required."));
}
