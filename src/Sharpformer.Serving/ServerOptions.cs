namespace Sharpformer.Serving;

/// <summary>Batching and limits of a <see cref="SharpformerServer"/>.</summary>
public sealed record ServerOptions
{
    /// <summary>Most texts run in one forward pass.</summary>
    public int MaxBatchSize { get; init; } = 32;
    /// <summary>Longest a queued text waits for companions before its batch runs.</summary>
    public int MaxWaitMs { get; init; } = 5;
    /// <summary>Texts that may wait in the queue; beyond it requests get 429.</summary>
    public int QueueCapacity { get; init; } = 1024;
    /// <summary>
    /// Tokens (specials included, counted by the tokenizer before queueing) that may be queued or running at once; a request
    /// that would go beyond it gets 429, one larger than all of it 413. Bounds how long a small request can wait behind
    /// big ones: texts count by their cost, not one each.
    /// </summary>
    public long MaxQueuedTokens { get; init; } = 65_536;
    /// <summary>Largest accepted request body; larger ones get 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>Longest accepted text in UTF-16 chars; longer ones get 400.</summary>
    public int MaxTextLength { get; init; } = 20_000;
    /// <summary>Most texts in one request.</summary>
    public int MaxInputsPerRequest { get; init; } = 256;
    /// <summary>How long shutdown waits for in-flight requests.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
