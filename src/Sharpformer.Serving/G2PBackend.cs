using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Serving;

/// <summary>The answer for one word of <c>POST /v1/g2p</c>: the best pronunciation, the n-best and, when asked, the alignment.</summary>
public sealed record G2PServingResult(string Word, string Phonemes, IReadOnlyList<G2PServingHypothesis> NBest, G2PServingAlignment? Alignment);

/// <summary>One pronunciation hypothesis: space-separated phonemes and its length-normalised log-probability.</summary>
public sealed record G2PServingHypothesis(string Phonemes, double Score);

/// <summary>Attention weights[output step][letter] of the best pronunciation (Bahdanau et al.'s Figure 3).</summary>
public sealed record G2PServingAlignment(IReadOnlyList<string> Letters, IReadOnlyList<string> Outputs, float[][] Weights);

/// <summary>
/// <see cref="IPipeline"/> for a grapheme-to-phoneme model (<c>sharpformer train seq2seq</c> output): each item is one word,
/// pronounced by batched beam search of width <see cref="G2PTraining.BeamWidth"/>; <see cref="ServingItem.TopK"/> is the
/// number of pronunciations returned (n-best, default 1) and <see cref="ServingItem.Alignment"/> asks for the attention rows.
/// </summary>
public sealed class G2PBackend : IPipeline
{
    /// <summary>Longest word accepted, in characters (CMUdict's longest is 34).</summary>
    public const int MaxWordLength = 64;

    readonly object _gate = new();
    readonly ISeq2SeqModel _model;
    readonly G2PVocabulary _vocab;
    readonly HashSet<string> _letters;
    readonly Tensors.ExecutionOptions? _execution;

    /// <param name="model">The encoder–decoder.</param>
    /// <param name="vocab">Its letters and phonemes.</param>
    /// <param name="modelName">Name reported in responses.</param>
    /// <param name="execution">Threads for the model (null: the process default).</param>
    public G2PBackend(ISeq2SeqModel model, G2PVocabulary vocab, string modelName, Tensors.ExecutionOptions? execution = null)
    {
        _execution = execution;
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(vocab);
        _model = model; _vocab = vocab; ModelName = modelName;
        _letters = new HashSet<string>(vocab.Letters, StringComparer.Ordinal);
    }

    /// <summary>Loads a model directory written by <see cref="G2PTraining.Save"/>.</summary>
    public static G2PBackend Load(string directory, Tensors.ExecutionOptions? execution = null)
    {
        var (model, vocab) = G2PTraining.Load(directory);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(directory));
        return new G2PBackend(model, vocab, string.IsNullOrEmpty(name) ? directory : name, execution);
    }

    public ServingTask Task => ServingTask.G2P;
    public string ModelName { get; }

    public IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken)
    {
        for (int i = 0; i < items.Count; i++) Validate(items[i], i);
        int nBest = items.Max(i => i.TopK ?? 1);
        G2PPrediction[] predictions;
        using (Tensors.ExecutionScope.Enter(_execution))
        lock (_gate) predictions = G2PTraining.Predict(_model, _vocab, items.Select(i => i.Text).ToList(), G2PTraining.BeamWidth, G2PTraining.BeamAlpha, nBest);
        var results = new object[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            var p = predictions[i];
            foreach (var h in p.NBest)
                if (!double.IsFinite(h.Score)) throw new NonFiniteOutputException("the pronunciation scores", (float)h.Score, i);
            G2PServingAlignment? alignment = null;
            if (items[i].Alignment)
            {
                var a = p.Alignment();
                alignment = new G2PServingAlignment(a.Letters, a.Outputs,
                    Enumerable.Range(0, a.Outputs.Length).Select(t => Enumerable.Range(0, a.Letters.Length).Select(j => a.Weights[t, j]).ToArray()).ToArray());
            }
            results[i] = new G2PServingResult(p.Word, string.Join(' ', p.Best.Phonemes),
                p.NBest.Take(items[i].TopK ?? 1).Select(h => new G2PServingHypothesis(string.Join(' ', h.Phonemes), h.Score)).ToList(), alignment);
        }
        return results;
    }

    /// <summary>A word: no whitespace, at most <see cref="MaxWordLength"/> characters, only letters the model was trained on.</summary>
    public int Validate(ServingItem item, int index)
    {
        var word = item.Text;
        if (word.Length > MaxWordLength) throw new PipelineInputException($"inputs[{index}] has {word.Length} characters; a word may have at most {MaxWordLength}.");
        if (item.TopK is int k && (k < 1 || k > G2PTraining.BeamWidth))
            throw new PipelineInputException($"\"n_best\" must be between 1 and the beam width {G2PTraining.BeamWidth}, not {k}.");
        foreach (var c in word.ToLowerInvariant())
            if (!_letters.Contains(c.ToString()))
                throw new PipelineInputException(char.IsWhiteSpace(c)
                    ? $"inputs[{index}] \"{word}\" is not one word; send each word as its own input."
                    : $"inputs[{index}] \"{word}\" has '{c}', which the model never saw; it knows {string.Join("", _letters.Order(StringComparer.Ordinal))}.");
        return word.Length + 2;   // the letters, BOS and EOS
    }

    public int CountTokens(string text) => text.Length;

    public AttentionMaps Attention(string text, CancellationToken cancellationToken) =>
        throw new NotSupportedException("a G2P model has no self-attention maps; ask POST /v1/g2p with \"alignment\": true for the letters × phonemes alignment.");
}
