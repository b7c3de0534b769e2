using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines;

/// <summary>
/// <see cref="IPipelineModel"/> over a Sharpformer.Models model (BERT / DistilBERT, bare or with a head): runs it in eval
/// mode without autograd (the kernel fast path) and hands back plain arrays.
/// </summary>
/// <remarks>Not thread-safe: a model reuses its activation buffers, so one forward runs at a time per model.</remarks>
public sealed class ModelPipelineAdapter : IPipelineModel
{
    readonly PretrainedModel _model;
    readonly bool _hasPooler;

    public ModelPipelineAdapter(PretrainedModel model, ModelConfig config)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        ArgumentNullException.ThrowIfNull(config);
        model.Eval();
        var (maxPos, layers, heads, usesTypes) = config switch
        {
            BertConfig b => (b.MaxPositionEmbeddings, b.NumHiddenLayers, b.NumAttentionHeads, true),
            DistilBertConfig d => (d.MaxPositionEmbeddings, d.NLayers, d.NHeads, false),
            _ => throw new NotSupportedException($"pipelines support model types bert and distilbert, not '{config.ModelType}'."),
        };
        // id2label only means something for heads that predict labels.
        IReadOnlyList<string> labels = model.Head?.Kind is HeadKind.SequenceClassification or HeadKind.TokenClassification ? config.Labels : [];
        Info = new PipelineModelInfo(config.ModelType, maxPos, labels, config.ProblemType, usesTypes, layers, heads);
        // A pooler the checkpoint did not contain is random: report it as absent rather than return noise.
        _hasPooler = model is BertModel { Pooler: not null }
            && !(model.LoadReport?.Missing.Any(k => k.Contains("pooler", StringComparison.Ordinal)) ?? false);
    }

    public PretrainedModel Model => _model;
    public PipelineModelInfo Info { get; }

    public PipelineModelOutput Forward(CollatedBatch batch, ForwardRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var input = batch.ToEncoderInput(Info.UsesTokenTypeIds);
        var options = new ForwardOptions(OutputHiddenStates: false, OutputAttentions: request.Attentions);
        using var _ = Autograd.NoGrad();
        var (logits, _, encoder) = _model.Run(input, options);
        var hidden = encoder.LastHiddenState;
        var logitsArray = logits?.ToArray();
        var hiddenArray = request.HiddenStates || logits is null ? hidden.ToArray() : null;
        // The pipelines turn these into scores and vectors; NaN there would print as a score or break JSON output.
        if (logitsArray is not null) NonFiniteOutputException.ThrowIfNotFinite(logitsArray, "logits");
        if (hiddenArray is not null) NonFiniteOutputException.ThrowIfNotFinite(hiddenArray, "last_hidden_state");
        return new PipelineModelOutput(
            logitsArray, logits is null ? [] : logits.Shape.ToArray(),
            hiddenArray, hidden.Dim(-1),
            _hasPooler && encoder.PoolerOutput is { } p ? p.ToArray() : null,
            request.Attentions ? encoder.Attentions?.Select(a => a.ToArray()).ToList() : null);
    }
}
