namespace Sharpformer.Tokenization;

/// <summary>
/// Settings of a BERT WordPiece tokenizer built from a bare <c>vocab.txt</c> — the keys of HF
/// <c>tokenizer_config.json</c> for <c>BertTokenizer</c>/<c>BertTokenizerFast</c>.
/// </summary>
public sealed record BertTokenizerOptions
{
    /// <summary>HF <c>do_lower_case</c>.</summary>
    public bool LowerCase { get; init; } = true;
    /// <summary>HF <c>strip_accents</c>; null = strip exactly when <see cref="LowerCase"/> (NFD, then drop Mn marks).</summary>
    public bool? StripAccents { get; init; }
    /// <summary>HF <c>tokenize_chinese_chars</c>: put spaces around CJK ideographs.</summary>
    public bool TokenizeChineseChars { get; init; } = true;
    /// <summary>Drop control/format/unassigned characters and map whitespace to spaces.</summary>
    public bool CleanText { get; init; } = true;
    public string UnkToken { get; init; } = "[UNK]";
    public string SepToken { get; init; } = "[SEP]";
    public string PadToken { get; init; } = "[PAD]";
    public string ClsToken { get; init; } = "[CLS]";
    public string MaskToken { get; init; } = "[MASK]";
    /// <summary>HF <c>model_max_length</c>: the default max_length for truncation and max-length padding; null = none.</summary>
    public int? ModelMaxLength { get; init; }
    /// <summary>Words with more characters (code points) than this become one unknown token.</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;
    public string ContinuingSubwordPrefix { get; init; } = "##";
    /// <summary>
    /// HF <c>additional_special_tokens</c> (and non-standard entries of <c>added_tokens_decoder</c>): matched in the raw
    /// text like [MASK]; a token missing from the vocabulary gets the next free id.
    /// </summary>
    public IReadOnlyList<string> AdditionalSpecialTokens { get; init; } = [];
}
