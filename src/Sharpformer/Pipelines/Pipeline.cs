using System.Text;

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
/// The preprocess → forward → postprocess skeleton shared by the pipelines: validation, BERT-style special tokens,
/// truncation that reports itself, padding into batches.
/// </summary>
public abstract class Pipeline
{
    protected Pipeline(IPipelineTokenizer tokenizer, IPipelineModel model, PipelineOptions? options)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Options = options ?? new PipelineOptions();
        if (Options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.BatchSize, "BatchSize must be ≥ 1.");
        if (Options.MaxTextLength < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.MaxTextLength, "MaxTextLength must be ≥ 1.");
        MaxLength = Math.Min(Options.MaxLength ?? model.Info.MaxPositions, model.Info.MaxPositions);
        if (MaxLength < 4) throw new ArgumentOutOfRangeException(nameof(options), MaxLength, "MaxLength must be ≥ 4 (two special tokens plus content).");
    }

    public IPipelineTokenizer Tokenizer { get; }
    public IPipelineModel Model { get; }
    public PipelineOptions Options { get; }
    /// <summary>Longest model input in tokens, specials included.</summary>
    public int MaxLength { get; }

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
        return Tokenizer.Tokenize(text).Count + 2;
    }

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
    /// [CLS] a [SEP] (b [SEP]) with HF's truncation: only_first for one text, longest_first for a pair. A tokenizer without
    /// [CLS]/[SEP] (id −1, the seed model's word vectorizer) gets none.
    /// </summary>
    protected (int[] Ids, int[] TypeIds, bool Truncated, int FullLength) BuildSequence(int[] a, int[]? b)
    {
        bool cls = Tokenizer.ClsId >= 0, sep = Tokenizer.SepId >= 0;
        int specials = (cls ? 1 : 0) + (sep ? (b is null ? 1 : 2) : 0);
        int full = a.Length + (b?.Length ?? 0) + specials;
        int budget = MaxLength - specials;
        int la = a.Length, lb = b?.Length ?? 0;
        if (la + lb > budget)
        {
            if (b is null) la = budget;
            else
            {
                // longest_first removes one token at a time from the longer side (the pair on ties).
                int remove = la + lb - budget;
                while (remove > 0)
                {
                    if (la > lb) { int d = Math.Min(remove, la - lb); la -= d; remove -= d; }
                    else if (lb > la) { int d = Math.Min(remove, lb - la); lb -= d; remove -= d; }
                    else { lb--; remove--; }
                }
            }
        }
        int n = la + lb + specials;
        var ids = new int[n];
        var types = new int[n];
        int p = 0;
        if (cls) ids[p++] = Tokenizer.ClsId;
        for (int i = 0; i < la; i++) ids[p++] = a[i];
        if (sep) ids[p++] = Tokenizer.SepId;
        if (b is not null)
        {
            for (int i = 0; i < lb; i++) { types[p] = 1; ids[p++] = b[i]; }
            if (sep) { types[p] = 1; ids[p++] = Tokenizer.SepId; }
        }
        return (ids, types, n < full, full);
    }

    /// <summary>Pads sequences to the longest one into an <see cref="EncodedBatch"/>.</summary>
    protected EncodedBatch Pad(IReadOnlyList<(int[] Ids, int[] TypeIds)> rows)
    {
        // At least one position: a text with no tokens (possible without special tokens) is all padding, as Keras feeds it.
        int seq = Math.Max(1, rows.Max(r => r.Ids.Length));
        var batch = new EncodedBatch(rows.Count, seq);
        bool types = Model.Info.UsesTokenTypeIds;
        for (int r = 0; r < rows.Count; r++)
        {
            var (ids, tt) = rows[r];
            int o = r * seq;
            for (int j = 0; j < seq; j++)
            {
                bool real = j < ids.Length;
                batch.InputIds[o + j] = real ? ids[j] : Tokenizer.PadId;
                batch.TokenTypeIds[o + j] = real && types ? tt[j] : 0;
                batch.AttentionMask[o + j] = real ? 1 : 0;
            }
        }
        return batch;
    }

    /// <summary>Runs <paramref name="body"/> over consecutive chunks of at most <see cref="PipelineOptions.BatchSize"/> items.</summary>
    protected void ForEachChunk(int count, Action<int, int> body, CancellationToken cancellationToken)
    {
        for (int start = 0; start < count; start += Options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            body(start, Math.Min(Options.BatchSize, count - start));
        }
    }

    internal static string Describe(string text) => text.Length <= 40 ? text : new StringBuilder(text, 0, 37, 40).Append("...").ToString();
}
