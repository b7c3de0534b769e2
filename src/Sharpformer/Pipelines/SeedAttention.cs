using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>
/// Attention maps of the from-scratch seed model (<see cref="SeedTransformer"/>, the Keras tutorial transformer) for one
/// text, in the same <see cref="AttentionMaps"/> form as the BERT models so the same renderers draw it.
/// </summary>
/// <remarks>
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
    {
        var model = SeedTransformer.Load(directory);
        var vectorizer = TextVectorizer.Load(directory);
        return Run(model, vectorizer, text);
    }

    /// <summary>Runs <paramref name="text"/> through <paramref name="model"/> in inference mode and returns its attention.</summary>
    public static AttentionMaps Run(SeedTransformer model, TextVectorizer vectorizer, string text)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(vectorizer);
        if (string.IsNullOrWhiteSpace(text)) throw new PipelineInputException("input 0: text is empty or only whitespace.");
        int t = model.Config.SequenceLength, h = model.Config.NumHeads;
        var raw = vectorizer.Vectorize(text);
        var ids = new int[t];
        Array.Copy(raw, ids, Math.Min(raw.Length, t));
        // The vectorizer pads with id 0, which no word maps to: the text's tokens end at the last non-zero id.
        int n = Array.FindLastIndex(ids, id => id != 0) + 1;
        if (n == 0) throw new PipelineInputException("input 0: the text has no tokens after standardization (lowercase, punctuation stripped).");
        bool training = model.Training;
        model.Training = false;
        try { model.Forward(ids, 1); }
        finally { model.Training = training; }
        var probs = model.LastAttentionProbabilities();   // [1, H, T, T]
        var data = new float[h * n * n];
        for (int head = 0; head < h; head++)
            for (int q = 0; q < n; q++)
                Array.Copy(probs, (head * t + q) * t, data, (head * n + q) * n, n);
        var vocabulary = vectorizer.Vocabulary;
        var tokens = ids.Take(n).Select(id => id < vocabulary.Count ? vocabulary[id] : "[UNK]").ToArray();
        return new AttentionMaps(tokens, 1, h, data);
    }
}
