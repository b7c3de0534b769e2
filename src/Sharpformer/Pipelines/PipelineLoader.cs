namespace Sharpformer.Pipelines;

/// <summary>Which head a pipeline needs from a checkpoint.</summary>
public enum PipelineTask { TextClassification, TokenClassification, FillMask, FeatureExtraction }

/// <summary>Loads a tokenizer and a model from a checkpoint directory for a pipeline task.</summary>
public static class PipelineLoader
{
    /// <summary>Loads <paramref name="modelDirOrId"/> for <paramref name="task"/>.</summary>
    public static (IPipelineTokenizer Tokenizer, IPipelineModel Model) Load(string modelDirOrId, PipelineTask task)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirOrId);
        throw new NotSupportedException($"loading '{modelDirOrId}' for {task} needs Sharpformer.Models, which this build does not have yet.");
    }
}
