using System.CommandLine;
using System.CommandLine.Parsing;

namespace Sharpformer.Cli;

/// <summary>
/// The one place that turns a parse into a usage error for every verb: unknown options (which System.CommandLine would
/// otherwise hand to a verb's zero-or-more text argument, so <c>--topk 3</c> became two input texts) and bad option
/// values, each as one <c>error:</c> line rather than the whole help text.
/// </summary>
internal static class CliParsing
{
    /// <summary>The usage error of <paramref name="parse"/>, or null when the verb may run.</summary>
    public static string? UsageError(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        if (FirstUnknownOption(parse) is { } unknown)
        {
            var suggestion = Suggest(unknown, OptionNames(parse.CommandResult));
            return $"unknown option '{unknown}'{(suggestion is null ? "" : $" (did you mean {suggestion}?)")}; " +
                   $"see '{CommandPath(parse.CommandResult)} --help' (a text that starts with '-' goes after --).";
        }
        if (parse.Errors.Count == 0) return null;
        // A group verb without its sub-verb (bare `sharpformer`, `sharpformer train`): the help listing the verbs is the answer.
        if (command.Subcommands.Count > 0 && command.Action is null) return null;
        return $"{parse.Errors[0].Message} (see '{CommandPath(parse.CommandResult)} --help')";
    }

    /// <summary>
    /// The first token that looks like an option (<c>-x</c>, <c>--name</c>) but matched none: either left unmatched or taken
    /// as an argument value. Tokens after <c>--</c> are texts by request.
    /// </summary>
    static string? FirstUnknownOption(ParseResult parse)
    {
        var unmatched = parse.UnmatchedTokens.ToHashSet();
        foreach (var token in parse.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) break;
            if ((token.Type == TokenType.Argument || unmatched.Contains(token.Value)) && LooksLikeOption(token.Value)) return token.Value;
        }
        return null;
    }

    // "-5" or "-0.1" are numbers, "-" alone is a conventional stdin marker; "-x" and "--name" are options.
    static bool LooksLikeOption(string s) => s.Length > 1 && s[0] == '-' && (char.IsLetter(s[1]) || (s[1] == '-' && s.Length > 2));

    static IEnumerable<string> OptionNames(CommandResult result)
    {
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent)
            foreach (var o in c.Command.Options)
                if (ReferenceEquals(c, result) || o.Recursive)
                    foreach (var name in o.Aliases.Prepend(o.Name)) yield return name;
    }

    /// <summary>The closest known option: within two edits (ignoring dashes), or one the unknown name abbreviates.</summary>
    internal static string? Suggest(string unknown, IEnumerable<string> known)
    {
        string u = unknown.TrimStart('-');
        return known.Where(k => k.StartsWith('-'))
            .Select(k => (Name: k, Distance: k.TrimStart('-').StartsWith(u, StringComparison.Ordinal) && u.Length >= 3 ? 1 : Sharpformer.Metrics.G2PScoring.EditDistance(u.ToCharArray(), k.TrimStart('-').ToCharArray())))
            .Where(x => x.Distance <= 2)
            .OrderBy(x => x.Distance).ThenBy(x => x.Name.Length)
            .Select(x => x.Name).FirstOrDefault();
    }

    static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent) names.Insert(0, c.Command.Name);
        return string.Join(' ', names);
    }
}

/// <summary>
/// The one <c>--threads</c> option of every verb that runs a model, and its one reading: the verb passes the result to the
/// model, pipeline or trainer it builds (nothing process-wide is set).
/// </summary>
internal static class ThreadsOption
{
    public static Option<int> Create() => new("--threads") { Description = $"Kernel threads (default: {Tensors.ExecutionOptions.ThreadsVariable}, else all cores)." };

    /// <summary>--threads when given, else SHARPFORMER_THREADS, else no preference (all cores).</summary>
    public static Tensors.ExecutionOptions Read(ParseResult r, Option<int> option)
    {
        int threads = r.GetValue(option);
        if (threads < 0) throw new ArgumentException($"--threads must be ≥ 0, not {threads}.");
        return Tensors.ExecutionOptions.FromEnvironment(threads);
    }
}
