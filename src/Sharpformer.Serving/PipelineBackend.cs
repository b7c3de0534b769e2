using Sharpformer.Pipelines;
using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Serving;

/// <summary><see cref="IPipeline"/> over Sharpformer's pipelines for one model and task.</summary>
/// <remarks>Model calls are serialized by a lock: the batching worker and attention requests share one model.</remarks>
public sealed class PipelineBackend : IPipeline
{
    readonly object _gate = new();
    readonly TextClassificationPipeline? _classify;
    readonly TokenClassificationPipeline? _ner;
    readonly FeatureExtractionPipeline? _embed;
    readonly FillMaskPipeline? _fillMask;
    readonly AttentionPipeline _attention;
    readonly Pipeline _active;

    public PipelineBackend(ServingTask task, string modelName, ITokenizer tokenizer, IPipelineModel model, PipelineOptions? options = null,
        Pooling pooling = Pooling.MaskedMean, bool normalize = true)
    {
        Task = task;
        ModelName = modelName;
        switch (task)
        {
            case ServingTask.Classify: _classify = new TextClassificationPipeline(tokenizer, model, options); break;
            case ServingTask.Ner: _ner = new TokenClassificationPipeline(tokenizer, model, options); break;
            case ServingTask.Embed: _embed = new FeatureExtractionPipeline(tokenizer, model, options, pooling, normalize); break;
            case ServingTask.FillMask: _fillMask = new FillMaskPipeline(tokenizer, model, options); break;
            default: throw new ArgumentOutOfRangeException(nameof(task), task, "unknown task");
        }
        _attention = new AttentionPipeline(tokenizer, model, options);
        _active = (Pipeline?)_classify ?? (Pipeline?)_ner ?? (Pipeline?)_embed ?? _fillMask!;
    }

    /// <summary>Loads the checkpoint in <paramref name="modelDirOrId"/> with the head <paramref name="task"/> needs.</summary>
    public static PipelineBackend Load(string modelDirOrId, ServingTask task, PipelineOptions? options = null)
    {
        var (tokenizer, model) = PipelineLoader.Load(modelDirOrId, task switch
        {
            ServingTask.Classify => PipelineTask.TextClassification,
            ServingTask.Ner => PipelineTask.TokenClassification,
            ServingTask.FillMask => PipelineTask.FillMask,
            _ => PipelineTask.FeatureExtraction,
        }, options?.Execution);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDirOrId));
        return new PipelineBackend(task, string.IsNullOrEmpty(name) ? modelDirOrId : name, tokenizer, model, options);
    }

    public ServingTask Task { get; }
    public string ModelName { get; }

    public IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken)
    {
        var texts = items.Select(i => i.Text).ToList();
        lock (_gate)
        {
            switch (Task)
            {
                case ServingTask.Classify:
                {
                    var logits = _classify!.Logits(texts.Select(t => new TextInput(t)).ToList(), cancellationToken);
                    foreach (var row in logits) RequireFinite(row);
                    return items.Select((item, i) => (object)_classify.Postprocess(logits[i], ClassificationFunction.Default, item.TopK ?? 1)).ToList();
                }
                case ServingTask.Ner:
                {
                    var pre = _ner!.PreEntities(texts, cancellationToken);
                    foreach (var entity in pre.SelectMany(p => p)) RequireFinite(entity.Scores);
                    return items.Select((item, i) => (item.Aggregation ?? AggregationStrategy.Simple) is var s && s == AggregationStrategy.None
                        ? (object)TokenAggregation.Predictions(pre[i], _ner.Labels, _ner.IgnoreLabels)
                        : TokenAggregation.Entities(pre[i], s, _ner.Labels, _ner.IgnoreLabels)).ToList();
                }
                case ServingTask.Embed:
                {
                    var vectors = _embed!.Run(texts, cancellationToken);
                    foreach (var v in vectors) RequireFinite(v);
                    return vectors.Cast<object>().ToList();
                }
                default:
                {
                    int k = items.Max(i => i.TopK ?? 5);
                    var r = _fillMask!.Run(texts, k, null, cancellationToken);
                    RequireFinite(r.SelectMany(masks => masks.SelectMany(m => m.Select(c => c.Score))));
                    return items.Select((item, i) => (object)r[i].Select(m => (IReadOnlyList<FillMaskCandidate>)m.Take(item.TopK ?? 5).ToList()).ToList()).ToList();
                }
            }
        }
    }

    public int Validate(ServingItem item, int index) => _active.CheckInput(item.Text, index);

    public int CountTokens(string text) => _active.CountTokens(text, addSpecialTokens: false);

    public AttentionMaps Attention(string text, CancellationToken cancellationToken)
    {
        AttentionMaps maps;
        lock (_gate) maps = _attention.Run(text, null, cancellationToken);
        RequireFinite(maps.Data);
        return maps;
    }

    // NaN scores must not pass as results: NER would silently find no entities, and JSON cannot carry NaN at all.
    static void RequireFinite(IEnumerable<float> values)
    {
        int i = 0;
        foreach (var x in values)
        {
            if (!float.IsFinite(x)) throw new NonFiniteOutputException("the model's outputs", x, i);
            i++;
        }
    }
}
