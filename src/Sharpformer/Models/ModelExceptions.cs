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

/// <summary>
/// A forward pass produced NaN or infinity: the weights are corrupt (or overflowed in training). Raised instead of handing
/// such numbers on, where they would print as scores or fail JSON serialisation with a .NET message.
/// </summary>
public sealed class NonFiniteOutputException(string output, float value, int index)
    : SharpformerException($"model produced {(float.IsNaN(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity")} in {output} (element {index}); the checkpoint may be corrupt. Check the weights, or retrain the model.")
{
    public string Output { get; } = output;

    /// <summary>Throws when <paramref name="values"/> holds a NaN or an infinity.</summary>
    public static void ThrowIfNotFinite(ReadOnlySpan<float> values, string output)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) throw new NonFiniteOutputException(output, values[i], i);
    }
}
