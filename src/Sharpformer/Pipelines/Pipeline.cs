using Sharpformer.Data;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>Options shared by every pipeline.</summary>
public sealed record PipelineOptions
{
    /// <summary>Inputs (or token-classification windows) per forward pass.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Longest sequence fed to the model, specials included; null = the model's max_position_embeddings.</summary>
    public int? MaxLength { get; init; }
    /// <summary>Longest accepted text in UTF-16 chars; longer texts are rejected with <see cref="PipelineInputException"/>.</summary>
    public int MaxTextLength { get; init; } = 100_000;
    /// <summary>How the loaded model runs (kernel threads); <c>FromPretrained</c> gives it to the model it loads.</summary>
    public Tensors.ExecutionOptions Execution { get; init; } = Tensors.ExecutionOptions.Default;
}

/// <summary>One input: a text, or a text pair (HF <c>{"text", "text_pair"}</c>).</summary>
public sealed record TextInput(string Text, string? TextPair = null)
{
    public static implicit operator TextInput(string text) => new(text);
}

/// <summary>
/// The preprocess → forward → postprocess skeleton shared by the pipelines: validation, encoding under the tokenizer's own
/// rules (special tokens, truncation that reports itself), and batches from the one collator (<see cref="PaddingCollator"/>).
/// </summary>
public abstract class Pipeline
{
    static readonly EncodeOptions NoSpecials = new() { AddSpecialTokens = false };
    readonly PaddingCollator _collator;

    protected Pipeline(ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Options = options ?? new PipelineOptions();
        if (Options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.BatchSize, "BatchSize must be ≥ 1.");
        if (Options.MaxTextLength < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.MaxTextLength, "MaxTextLength must be ≥ 1.");
        MaxLength = Math.Min(Options.MaxLength ?? model.Info.MaxPositions, model.Info.MaxPositions);
        if (MaxLength < 4) throw new ArgumentOutOfRangeException(nameof(options), MaxLength, "MaxLength must be ≥ 4 (two special tokens plus content).");
        // transformers' pipelines call the tokenizer with truncation=True: the slow tokenizers' longest_first
        // (one token at a time from the longer sequence of a pair), and no overflowing windows.
        TruncationOptions = new EncodeOptions { Truncation = TruncationStrategy.LongestFirstPython, MaxLength = MaxLength };
        _collator = new PaddingCollator(tokenizer.PadTokenId
            ?? throw new PipelineInputException("the tokenizer has no padding token ([PAD]); pipelines pad their batches with it."));
    }

    public ITokenizer Tokenizer { get; }
    public IPipelineModel Model { get; }
    public PipelineOptions Options { get; }
    /// <summary>Longest model input in tokens, specials included.</summary>
    public int MaxLength { get; }
    /// <summary>How every input is encoded: the tokenizer's special tokens, truncated to <see cref="MaxLength"/>.</summary>
    protected EncodeOptions TruncationOptions { get; }

    /// <summary>Raised (synchronously, on the calling thread) for every input cut to <see cref="MaxLength"/>.</summary>
    public event Action<TruncationWarning>? Truncated;

    protected void OnTruncated(TruncationWarning warning) => Truncated?.Invoke(warning);

    /// <summary>
    /// Checks one text as <c>Run</c> would, without running the model, and returns its length in tokens (specials included,
    /// before truncation), so a server can reject bad input before it joins a batch and budget its work by tokens.
    /// Throws <see cref="PipelineInputException"/> naming input <paramref name="index"/>.
    /// </summary>
    public virtual int CheckInput(string text, int index = 0)
    {
        Validate(text, index);
        return CountTokens(text);
    }

    /// <summary>Tokens of <paramref name="text"/> before truncation, with the tokenizer's special tokens or without them.</summary>
    public int CountTokens(string text, bool addSpecialTokens = true) =>
        Tokenizer.Encode(text, null, addSpecialTokens ? EncodeOptions.Default : NoSpecials).Length;

    /// <summary>Rejects empty, whitespace-only, oversized or malformed (lone surrogate) text, naming the input.</summary>
    protected void Validate(string? text, int index, string field = "text")
    {
        if (text is null) throw new PipelineInputException($"input {index}: {field} is missing (null).");
        if (text.Length > Options.MaxTextLength)
            throw new PipelineInputException($"input {index}: {field} has {text.Length} characters; the limit is {Options.MaxTextLength} (PipelineOptions.MaxTextLength). Split the text.");
        if (string.IsNullOrWhiteSpace(text)) throw new PipelineInputException($"input {index}: {field} is empty or only whitespace.");
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) throw new PipelineInputException($"input {index}: {field} has an unpaired UTF-16 surrogate at index {i}; it is not valid Unicode text.");
        }
    }

    /// <summary>
    /// Input <paramref name="index"/> encoded by the tokenizer with its special tokens and truncation to <see cref="MaxLength"/>;
    /// a cut is reported through <see cref="Truncated"/>.
    /// </summary>
    protected Encoding Encode(string text, string? textPair, int index)
    {
        var e = Tokenizer.Encode(text, textPair, TruncationOptions);
        if (e.NumTruncatedTokens > 0) OnTruncated(new TruncationWarning(index, e.Length + e.NumTruncatedTokens, MaxLength));
        return e;
    }

    /// <summary>Pads encodings into one model batch.</summary>
    protected CollatedBatch Collate(IReadOnlyList<Encoding> rows) => _collator.Collate(rows);

    /// <summary>Runs <paramref name="body"/> over consecutive chunks of at most <see cref="PipelineOptions.BatchSize"/> items.</summary>
    protected void ForEachChunk(int count, Action<int, int> body, CancellationToken cancellationToken)
    {
        for (int start = 0; start < count; start += Options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            body(start, Math.Min(Options.BatchSize, count - start));
        }
    }

    internal static string Describe(string text) => text.Length <= 40 ? text : new System.Text.StringBuilder(text, 0, 37, 40).Append("...").ToString();
}
