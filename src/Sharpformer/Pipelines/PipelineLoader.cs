using Sharpformer.Models;

namespace Sharpformer.Pipelines;

/// <summary>Which head a pipeline needs from a checkpoint.</summary>
public enum PipelineTask { TextClassification, TokenClassification, FillMask, FeatureExtraction }

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
    /// </summary>
    public static (IPipelineTokenizer Tokenizer, IPipelineModel Model) Load(string modelDirOrId, PipelineTask task)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirOrId);
        var dir = AutoModel.ResolveDirectory(modelDirOrId);
        if (!File.Exists(Path.Combine(dir, "vocab.txt")) && !File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new PipelineLoadException($"{dir} has no tokenizer (vocab.txt or tokenizer.json); copy the tokenizer files of the model into it.");
        var tokenizer = BertPipelineTokenizer.FromDirectory(dir);
        var config = ModelConfigLoader.Load(dir);
        var options = task == PipelineTask.FeatureExtraction
            ? new ModelLoadOptions { Architecture = config.ModelType == "distilbert" ? "DistilBertModel" : "BertModel" }
            : new ModelLoadOptions();
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
        if (task != PipelineTask.FeatureExtraction && model.LoadReport is { Missing.Count: > 0 } report)
            throw new PipelineLoadException($"{dir}: the checkpoint lacks {string.Join(", ", report.Missing.Take(5))}{(report.Missing.Count > 5 ? ", …" : "")}; the head would be random. Train or fine-tune the model first.");
        return (tokenizer, new ModelPipelineAdapter(model, config));
    }
}
