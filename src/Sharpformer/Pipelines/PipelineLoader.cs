using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>Which head a pipeline needs from a checkpoint.</summary>
public enum PipelineTask
{
    TextClassification, TokenClassification, FillMask, FeatureExtraction,
    /// <summary>Attention maps: the bare encoder of a BERT/DistilBERT checkpoint, or a saved seed model.</summary>
    Attention,
}

/// <summary>The checkpoint does not fit the pipeline (wrong head, missing tokenizer files).</summary>
public sealed class PipelineLoadException : SharpformerException
{
    public PipelineLoadException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Loads a tokenizer and a model from a checkpoint directory (or a cached hub id) for a pipeline task.</summary>
public static class PipelineLoader
{
    /// <summary>
    /// Loads <paramref name="modelDirOrId"/> for <paramref name="task"/>: classification and fill-mask need the matching head
    /// (its config's <c>architectures</c>); feature extraction loads the bare encoder of any BERT/DistilBERT checkpoint.
    /// The model runs with <paramref name="execution"/> (kernel threads).
    /// </summary>
    public static (ITokenizer Tokenizer, IPipelineModel Model) Load(string modelDirOrId, PipelineTask task, ExecutionOptions? execution = null)
    {
        execution ??= ExecutionOptions.Default;
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirOrId);
        var dir = AutoModel.ResolveDirectory(modelDirOrId);
        if (SeedTransformer.IsSeedTransformerDirectory(dir)) return LoadSeed(dir, task, execution);
        if (!File.Exists(Path.Combine(dir, "vocab.txt")) && !File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new PipelineLoadException($"{dir} has no tokenizer (vocab.txt or tokenizer.json); copy the tokenizer files of the model into it.");
        var tokenizer = BertTokenizer.FromDirectory(dir);
        var config = ModelConfigLoader.Load(dir);
        bool bareEncoder = task is PipelineTask.FeatureExtraction or PipelineTask.Attention;
        var options = bareEncoder
            ? new ModelLoadOptions { Architecture = config.ModelType == "distilbert" ? "DistilBertModel" : "BertModel", Execution = execution }
            : new ModelLoadOptions { Execution = execution };
        var model = AutoModel.FromPretrained(dir, options);
        bool fits = model.Head?.Kind == task switch
        {
            PipelineTask.TextClassification => HeadKind.SequenceClassification,
            PipelineTask.TokenClassification => HeadKind.TokenClassification,
            PipelineTask.FillMask => HeadKind.MaskedLM,
            _ => (HeadKind?)null,
        };
        if (!fits)
        {
            string need = task switch
            {
                PipelineTask.TextClassification => "a *ForSequenceClassification", PipelineTask.TokenClassification => "a *ForTokenClassification",
                PipelineTask.FillMask => "a *ForMaskedLM", _ => "an encoder",
            };
            throw new PipelineLoadException($"{dir} holds a {model.Architecture} (config.json architectures); {task} needs {need} checkpoint.");
        }
        // One check for every task: a parameter the checkpoint lacks would be random. Only a bare encoder may lack the pooler,
        // which the adapter then reports as absent instead of returning noise.
        var missing = model.LoadReport?.Missing.Where(k => !(bareEncoder && k.Contains("pooler", StringComparison.Ordinal))).ToList() ?? [];
        if (missing.Count > 0)
            throw new PipelineLoadException($"{dir}: the checkpoint lacks {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? $", … ({missing.Count} in all)" : "")}; " +
                $"those weights would be random. Train or fine-tune the model first, or check that the checkpoint belongs to this config.json.");
        return (tokenizer, new ModelPipelineAdapter(model, config));
    }

    /// <summary>A model directory written by <c>sharpformer train seed-agnews</c> / <c>text-classifier --architecture seed-transformer</c>.</summary>
    static (ITokenizer, IPipelineModel) LoadSeed(string dir, PipelineTask task, ExecutionOptions execution)
    {
        if (task is not (PipelineTask.TextClassification or PipelineTask.Attention))
            throw new PipelineLoadException($"{dir} holds a seed transformer, which only classifies texts (classify, serve, attention, summary); {task} needs a BERT/DistilBERT checkpoint.");
        var model = SeedTransformer.Load(dir);
        model.Execution = execution;
        var vectorizer = TextVectorizer.Load(dir);
        if (vectorizer.VocabularySize > model.Config.VocabSize)
            throw new PipelineLoadException($"{dir}: the vocabulary has {vectorizer.VocabularySize} tokens but config.json vocab_size is {model.Config.VocabSize}; they do not belong together.");
        return (vectorizer, new SeedPipelineModel(model));
    }
}
