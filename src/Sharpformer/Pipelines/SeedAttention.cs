using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>
/// Attention maps of the from-scratch seed model (<see cref="SeedTransformer"/>, the Keras tutorial transformer) for one
/// text, in the same <see cref="AttentionMaps"/> form as the BERT models so the same renderers draw it.
/// </summary>
/// <remarks>
/// Runs through <see cref="AttentionPipeline"/> with the seed pipeline adapters (<see cref="SeedPipelineModel"/>).
/// The seed model reads a fixed-length id sequence padded with 0. Only the text's own tokens are kept on both axes;
/// when the model does not mask padding (the tutorial's default) the rows keep the probability they give to padding
/// keys, so a row then sums to less than 1.
/// </remarks>
public static class SeedAttention
{
    /// <summary>True when <paramref name="directory"/> holds a saved seed model.</summary>
    public static bool IsSeedModel(string directory) => Directory.Exists(directory) && SeedTransformer.IsSeedTransformerDirectory(directory);

    /// <summary>Loads the seed model and its text vectorizer from <paramref name="directory"/> and runs <paramref name="text"/>.</summary>
    public static AttentionMaps Run(string directory, string text)
        => AttentionPipeline.FromPretrained(directory).Run(text);

    /// <summary>Runs <paramref name="text"/> through <paramref name="model"/> in inference mode and returns its attention.</summary>
    public static AttentionMaps Run(SeedTransformer model, TextVectorizer vectorizer, string text)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(vectorizer);
        bool training = model.Training;
        try { return new AttentionPipeline(vectorizer, new SeedPipelineModel(model)).Run(text); }
        finally { model.Train(training); }
    }
}
