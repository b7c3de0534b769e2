using System.CommandLine;
using System.Globalization;
using Sharpformer.Pipelines;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// The options every pipeline verb shares (<c>--model --batch-size --threads --file --json</c>, texts as arguments) and
/// reading texts from arguments, a file or standard input (one per line).
/// </summary>
internal sealed class PipelineVerbs
{
    PipelineVerbs(Hub.ShippedTask? task)
    {
        Task = task;
        Model = ModelOption.Create("Model directory (config.json, weights, vocab.txt) or Hub model id in the local cache.", task);
    }

    /// <summary>The task whose shipped model is the default of --model; null when the verb has none (--model required).</summary>
    public Hub.ShippedTask? Task { get; }
    public Option<string?> Model { get; }
    public Option<int> BatchSize { get; } = new("--batch-size") { Description = "Texts per forward pass.", DefaultValueFactory = _ => 8 };
    public Option<int> Threads { get; } = ThreadsOption.Create();
    public Option<string?> File { get; } = new("--file") { Description = "Read texts from this file, one per line (empty lines skipped)." };
    public Option<bool> Json { get; } = new("--json") { Description = "Print one JSON array per input text, with transformers' field names." };
    public Argument<string[]> Texts { get; } = new("texts") { Description = "Texts to process; none = read --file or standard input, one per line.", Arity = ArgumentArity.ZeroOrMore };

    public static PipelineVerbs AddTo(Command cmd, Hub.ShippedTask? defaultModel = null)
    {
        var v = new PipelineVerbs(defaultModel);
        cmd.Options.Add(v.Model); cmd.Options.Add(v.BatchSize); cmd.Options.Add(v.Threads); cmd.Options.Add(v.File); cmd.Options.Add(v.Json);
        cmd.Arguments.Add(v.Texts);
        return v;
    }

    /// <summary>--model, else the task's shipped model.</summary>
    public string ModelPath(ParseResult r) => ModelOption.Read(r, Model, Task);

    public PipelineOptions Options(ParseResult r)
    {
        var execution = ThreadsOption.Read(r, Threads);
        int batch = r.GetValue(BatchSize);
        if (batch < 1) throw new ArgumentException($"--batch-size must be ≥ 1, not {batch}.");
        return new PipelineOptions { BatchSize = batch, Execution = execution };
    }

    /// <summary>Texts from the arguments, else --file, else standard input.</summary>
    public IReadOnlyList<string> ReadTexts(ParseResult r)
    {
        var args = r.GetValue(Texts) ?? [];
        var file = r.GetValue(File);
        if (args.Length > 0 && file is not null) throw new ArgumentException("give texts as arguments or with --file, not both.");
        if (args.Length > 0) return args;
        List<string> texts = [];
        if (file is not null)
        {
            if (!System.IO.File.Exists(file)) throw new FileNotFoundException($"--file {file} does not exist.", file);
            foreach (var line in System.IO.File.ReadLines(file)) if (line.Length > 0) texts.Add(line);
            if (texts.Count == 0) throw new ArgumentException($"--file {file} has no text lines.");
            return texts;
        }
        var input = CliHost.Input;
        for (string? line; (line = input.ReadLine()) != null;) if (line.Length > 0) texts.Add(line);
        if (texts.Count == 0) throw new ArgumentException("no input texts: give them as arguments, with --file, or on standard input (one per line).");
        return texts;
    }

    /// <summary>Reports truncation on stderr (the pipelines raise it per input).</summary>
    public static void WarnOnTruncation(Pipeline pipeline, TextWriter error) =>
        pipeline.Truncated += w => error.WriteLine($"warning: input {w.InputIndex} has {w.TokenCount} tokens; only the first {w.MaxLength} were used.");

    public static string F(float v) => v.ToString("0.0000", CultureInfo.InvariantCulture);

    /// <summary>The <c>--pooling</c> of embed and features, both verbs' spellings: mean|maskedmean, cls, pooled|pooler.</summary>
    public static Option<string> PoolingOption(string defaultValue) => new("--pooling")
    {
        Description = "mean (masked mean of token states), cls ([CLS] state), pooled (BERT pooler output) or last (last non-pad token: GPT-2).",
        DefaultValueFactory = _ => defaultValue,
    };

    public static Pooling ParsePooling(string value) => value.ToLowerInvariant() switch
    {
        "mean" or "maskedmean" => Pooling.MaskedMean, "cls" => Pooling.Cls, "pooled" or "pooler" => Pooling.Pooled, "last" or "lasttoken" => Pooling.LastToken,
        var x => throw new ArgumentException($"--pooling {x} is unknown; use mean, cls, pooled or last."),
    };
}
