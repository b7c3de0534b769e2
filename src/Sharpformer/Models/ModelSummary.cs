using Sharpformer.Nn;

namespace Sharpformer.Models;

/// <summary>Keras-style summaries of pretrained models.</summary>
public static class ModelSummary
{
    /// <summary>
    /// Runs one probe batch [1, <paramref name="sequenceLength"/>] of [CLS]-like ids through the module path (eval mode, so no
    /// dropout) while forward hooks note every layer's output shape, then tabulates layers to <paramref name="maxDepth"/>.
    /// </summary>
    public static ModuleSummary Of(PretrainedModel model, int maxDepth = 3, int sequenceLength = 8)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (sequenceLength < 1) throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength, "The probe sequence length must be at least 1.");
        var input = new EncoderInput(Enumerable.Range(0, sequenceLength).Select(i => i % model.VocabSize).ToArray(), 1, sequenceLength);
        bool wasTraining = model.Training;
        model.Eval();
        // Recording stays on: the module path calls every layer's forward; the fast path (no-grad inference) would bypass them.
        try { return model.Summary(() => model.Run(input), maxDepth); }
        finally { model.Train(wasTraining); }
    }

    /// <summary>
    /// Runs one probe row [1, sequence_length] of padding ids through the seed transformer (eval mode, no graph) so every layer
    /// records its output shape, then tabulates layers to <paramref name="maxDepth"/>.
    /// </summary>
    public static ModuleSummary Of(SeedTransformer model, int maxDepth = 3)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            return model.Summary(() =>
            {
                using var _ = Tensors.Autograd.NoGrad();
                model.Forward(new int[model.Config.SequenceLength], 1);
            }, maxDepth);
        }
        finally { model.Train(wasTraining); }
    }
}
