namespace Sharpformer.Tokenization;

/// <summary>How a too-long input is cut to <see cref="EncodeOptions.MaxLength"/> (HF <c>truncation=</c>).</summary>
public enum TruncationStrategy
{
    /// <summary>No truncation.</summary>
    None,
    /// <summary>
    /// HF <c>longest_first</c> as the Rust tokenizers compute it. For a pair with content budget
    /// B = max_length − specials and lengths n₁, n₂ (n₁+n₂ &gt; B): the shorter sequence (the first on a tie)
    /// keeps min(n, ⌊B/2⌋) tokens and the longer keeps the rest of the budget.
    /// </summary>
    LongestFirst,
    /// <summary>
    /// <c>longest_first</c> as transformers' slow (Python) tokenizers do it: remove one token at a time from the
    /// longer sequence, from the second when both are equally long. (10,10) → (7,6) where Rust gives (6,7).
    /// Overflowing windows are not produced (as the slow tokenizers do not return them for pairs).
    /// </summary>
    LongestFirstPython,
    /// <summary>Only the first sequence is cut (HF <c>only_first</c>).</summary>
    OnlyFirst,
    /// <summary>Only the second sequence of a pair is cut (HF <c>only_second</c>).</summary>
    OnlySecond,
}

/// <summary>Padding of encodings (HF <c>padding=</c>).</summary>
public enum PaddingStrategy
{
    /// <summary>No padding.</summary>
    None,
    /// <summary>Pad to the longest encoding of the batch (HF <c>padding=True</c> / <c>"longest"</c>).</summary>
    Longest,
    /// <summary>Pad to <see cref="EncodeOptions.MaxLength"/> (HF <c>padding="max_length"</c>).</summary>
    MaxLength,
}

/// <summary>Which end padding tokens are added to.</summary>
public enum PaddingSide { Right, Left }

/// <summary>Where decode's clean_up_tokenization_spaces rules apply.</summary>
public enum DecodeCleanup
{
    /// <summary>To each token, as the Rust tokenizers WordPiece decoder (the fixtures' <c>decoded</c>).</summary>
    PerToken,
    /// <summary>To the joined text as well, as transformers 4.30 <c>tokenizer.decode</c> ("isn ' t" → "isn't").</summary>
    WholeText,
}

/// <summary>Which end truncation removes tokens from (HF <c>truncation_side</c>).</summary>
public enum TruncationSide { Right, Left }

/// <summary>
/// Per-call encoding options, the HF tokenizer-call keyword arguments as a record.
/// <c>MaxLength = null</c> with truncation or max-length padding means the tokenizer's <c>model_max_length</c>.
/// </summary>
public sealed record EncodeOptions
{
    /// <summary>Add [CLS]/[SEP] (the post-processor template).</summary>
    public bool AddSpecialTokens { get; init; } = true;
    public TruncationStrategy Truncation { get; init; } = TruncationStrategy.None;
    public int? MaxLength { get; init; }
    /// <summary>Overlap (in tokens) between consecutive overflowing windows (HF <c>stride</c>).</summary>
    public int Stride { get; init; }
    public TruncationSide TruncationSide { get; init; } = TruncationSide.Right;
    public PaddingStrategy Padding { get; init; } = PaddingStrategy.None;
    public int? PadToMultipleOf { get; init; }
    public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;
    /// <summary>Threads for batch calls; 0 = all processors.</summary>
    public int Threads { get; init; }

    /// <summary>No truncation, no padding, special tokens added.</summary>
    public static EncodeOptions Default { get; } = new();
}

/// <summary>A token's <c>[Start, End)</c> span in UTF-16 code units of the original input string.</summary>
public readonly record struct TokenOffset(int Start, int End)
{
    public int Length => End - Start;
    public override string ToString() => $"[{Start}, {End})";
}

/// <summary>A tokenizer file or directory is malformed or inconsistent; the message names the file and key.</summary>
public sealed class TokenizerFormatException : SharpformerException
{
    public TokenizerFormatException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Encoding arguments that cannot be honoured (e.g. max_length smaller than the special tokens).</summary>
public sealed class TokenizationException : SharpformerException
{
    public TokenizationException(string message) : base(message) { }
}
