namespace Sharpformer.Models;

/// <summary>An input batch does not fit the model: a token id outside the vocabulary, a sequence longer than the position table, wrong label count.</summary>
public sealed class ModelInputException(string message) : SharpformerException(message);

/// <summary>config.json names an architecture or model type this library does not implement.</summary>
public sealed class UnsupportedArchitectureException(string architecture, string configFile)
    : SharpformerException($"'{configFile}' asks for architecture '{architecture}', which Sharpformer does not implement. Supported: {string.Join(", ", AutoModel.SupportedArchitectures)}.")
{
    public string Architecture { get; } = architecture;
    public string ConfigFile { get; } = configFile;
}

/// <summary>The vocabulary file and config.json's vocab_size disagree, so token ids would index the wrong embedding rows.</summary>
public sealed class VocabularyMismatchException(string vocabFile, int vocabLines, int vocabSize)
    : SharpformerException($"'{vocabFile}' has {vocabLines} tokens but config.json says vocab_size = {vocabSize}; the tokenizer and the model do not belong together. Use the vocab.txt saved with this model.")
{
    public string VocabFile { get; } = vocabFile;
    public int VocabLines { get; } = vocabLines;
    public int VocabSize { get; } = vocabSize;
}
