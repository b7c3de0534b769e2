using Sharpformer.Models;
using Sharpformer.Data;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines;

/// <summary>
/// <see cref="IPipelineModel"/> over the from-scratch <see cref="SeedTransformer"/>: a sequence classifier with one
/// encoder block. Rows are padded with 0 to the model's fixed sequence length, as the vectorizer did in training —
/// the tutorial model attends to and averages over padding, so a shorter input would change its predictions.
/// </summary>
/// <remarks>Forwards run without recording a graph; the model is put in eval mode.</remarks>
public sealed class SeedPipelineModel : IPipelineModel
{
    readonly SeedTransformer _model;

    public SeedPipelineModel(SeedTransformer model)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        var c = model.Config;
        _model.Eval();
        var labels = c.Labels ?? Enumerable.Range(0, c.NumLabels).Select(i => $"LABEL_{i}").ToList();
        Info = new PipelineModelInfo(SeedTransformerConfig.ModelType, c.SequenceLength, labels, "single_label_classification",
            UsesTokenTypeIds: false, Layers: 1, Heads: c.NumHeads);
    }

    public SeedTransformer Model => _model;
    public PipelineModelInfo Info { get; }

    public PipelineModelOutput Forward(CollatedBatch batch, ForwardRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        int b = batch.Batch, s = batch.Seq, t = _model.Config.SequenceLength, h = _model.Config.NumHeads;
        if (s > t) throw new ModelInputException($"seed model input has {s} tokens; the model reads at most {t}.");
        var ids = new int[b * t];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < s; j++)
                ids[r * t + j] = batch.AttentionMask[r * s + j] == 0 ? 0 : batch.InputIds[r * s + j];
        using var _ = Autograd.NoGrad();
        var output = _model.Forward(ids, b, returnAttentions: request.Attentions);
        var logits = output.Logits.ToArray();
        NonFiniteOutputException.ThrowIfNotFinite(logits, "logits");
        List<float[]>? attentions = null;
        if (output.Attentions is { } a)
        {
            // [B, H, T, T] cropped to the caller's [B, H, S, S]: padding beyond the batch's longest row is the model's own.
            var probs = a.ToArray();
            var cropped = new float[b * h * s * s];
            for (int bh = 0; bh < b * h; bh++)
                for (int q = 0; q < s; q++)
                    Array.Copy(probs, (bh * t + q) * t, cropped, (bh * s + q) * s, s);
            attentions = [cropped];
        }
        return new PipelineModelOutput(logits, [b, output.NumLabels], null, _model.Config.EmbedDim, null, attentions);
    }
}
