using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>
/// Adapts a BERT-family classifier (a <see cref="HeadKind.SequenceClassification"/> or
/// <see cref="HeadKind.TokenClassification"/> head) to the <see cref="Trainer{TBatch}"/>: its trainable parameters
/// become flat buffers shared with the tensors (the optimizer updates the model in place), and each
/// step's autograd gradients are added into the flat gradient buffers.
/// </summary>
/// <remarks>
/// Frozen parameters (<see cref="Parameter.Trainable"/> = false, e.g. the encoder for head-only
/// fine-tuning) are not exposed, so the optimizer never touches them. Dropout draws from the
/// trainer's checkpointed generator (<see cref="Module.UseRandom"/>).
/// Batches are <see cref="CollatedBatch"/>: labels [batch] (sequence) or [batch·seq] with −100 ignored (token).
/// </remarks>
public sealed class EncoderClassifierTrainable : ITrainableModel<CollatedBatch>
{
    readonly PretrainedModel _model;
    readonly List<FlatParameter> _flat = [];
    readonly List<Parameter> _params = [];
    readonly HashSet<string> _layerNorm = new(StringComparer.Ordinal);
    readonly bool _token;
    TrainingRandom? _rngInUse;

    public EncoderClassifierTrainable(PretrainedModel model)
    {
        _model = model;
        _token = model.Head?.Kind switch
        {
            HeadKind.TokenClassification => true,
            HeadKind.SequenceClassification => false,
            _ => throw new NotSupportedException($"{model.Architecture} is neither a sequence nor a token classifier; only those can be trained here."),
        };
        foreach (var (prefix, module) in model.NamedModules())
            if (module is LayerNorm)
                foreach (var (leaf, _) in module.OwnParameters()) _layerNorm.Add(prefix.Length == 0 ? leaf : prefix + "." + leaf);
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!p.Trainable) continue;
            var t = p.Value;
            if (t.Offset != 0 || t.Data.Length != t.Size || !t.IsContiguous)
                throw new NotSupportedException($"Parameter '{name}' does not own a contiguous buffer; it cannot be trained through flat buffers.");
            var flat = new FlatParameter(name, t.ShapeArray, t.Data, new float[t.Size]);
            // Autograd accumulates into an existing leaf gradient in place, so the flat buffer is the gradient: no copy, no second copy in memory.
            t.Grad = Tensor.FromArray(flat.Grad, t.ShapeArray);
            _flat.Add(flat);
            _params.Add(p);
        }
        if (_flat.Count == 0) throw new TrainingConfigurationException($"{model.Architecture} has no trainable parameters (everything is frozen).");
    }

    /// <summary>
    /// Whether each <see cref="TrainStep"/> ends with a full non-compacting garbage collection (default true).
    /// </summary>
    /// <remarks>
    /// After the backward the step's activations and gradient buffers (BERT-base at 8×128: ≈ 0.8 GiB forward, 0.5 GiB
    /// backward, all large-object-heap arrays) are garbage. With the parameters, gradients and optimizer moments live
    /// (≈ 1.6 GiB), the GC's large-object budget lets a second step's worth pile up before it collects, adding ≈ 0.7 GiB
    /// to the peak working set. The collection costs ≈ 5 ms (the heap is a few thousand big arrays; nothing is compacted)
    /// against a step of ≈ 2 s. Set false to leave the timing of collections to the runtime.
    /// </remarks>
    public bool CollectAfterBackward { get; set; } = true;

    /// <summary>The wrapped model.</summary>
    public PretrainedModel Model => _model;

    /// <summary>True for token classification (labels per token).</summary>
    public bool IsTokenClassifier => _token;

    public IReadOnlyList<FlatParameter> Parameters => _flat;
    public bool IsLayerNormParameter(string name) => _layerNorm.Contains(name);

    public bool Training
    {
        get => _model.Training;
        set => _model.Train(value);
    }

    public int BatchSize(CollatedBatch batch) => batch.Batch;

    static EncoderInput Input(CollatedBatch b) => b.ToEncoderInput();

    public float TrainStep(CollatedBatch batch, TrainingRandom rng, float gradScale)
    {
        if (batch.Labels == null) throw new TrainingConfigurationException("A training batch has no labels.");
        if (!ReferenceEquals(rng, _rngInUse)) { _model.UseRandom(rng); _rngInUse = rng; }
        var loss = Loss(batch);
        float value = loss.Item();
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
        if (CollectAfterBackward) GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
        for (int i = 0; i < _params.Count; i++)
        {
            var g = _params[i].Grad;
            var flat = _flat[i].Grad;
            if (g != null && ReferenceEquals(g.Data, flat)) continue;
            // Someone replaced or dropped the gradient tensor (e.g. Module.ZeroGrad): fold it in and re-attach the flat buffer.
            if (g != null)
            {
                var src = g.IsContiguous ? g.Data.AsSpan(g.Offset, g.Size) : g.ToArray();
                System.Numerics.Tensors.TensorPrimitives.Add(flat, src, flat);
            }
            _params[i].Value.Grad = Tensor.FromArray(flat, _flat[i].Shape);
        }
        return value;
    }

    Tensor Loss(CollatedBatch batch)
    {
        return _model.Run(Input(batch), labels: SequenceLabels.FromIds(batch.Labels!)).Loss!;
    }

    public EvalBatch Evaluate(CollatedBatch batch)
    {
        if (batch.Labels == null) throw new TrainingConfigurationException("An evaluation batch has no labels.");
        using var _ = Autograd.NoGrad();
        var o = _model.Run(Input(batch), labels: SequenceLabels.FromIds(batch.Labels));
        if (!_token)
        {
            var arg = o.Logits!.ArgMax(-1);
            var p = new int[batch.Batch][]; var l = new int[batch.Batch][];
            for (int i = 0; i < batch.Batch; i++) { p[i] = [arg[i]]; l[i] = [batch.Labels[i]]; }
            return new EvalBatch(o.Loss!.Item(), batch.Batch, p, l);
        }
        else
        {
            var arg = o.Logits!.ArgMax(-1);   // [batch·seq]
            var p = new int[batch.Batch][]; var l = new int[batch.Batch][];
            int labelled = 0;
            for (int b = 0; b < batch.Batch; b++)
            {
                var pr = new List<int>(); var lr = new List<int>();
                for (int s = 0; s < batch.Seq; s++)
                {
                    int y = batch.Labels[b * batch.Seq + s];
                    if (y == PaddingCollator.IgnoreIndex) continue;
                    pr.Add(arg[b * batch.Seq + s]); lr.Add(y);
                }
                p[b] = [.. pr]; l[b] = [.. lr]; labelled += lr.Count;
            }
            return new EvalBatch(o.Loss!.Item(), labelled, p, l);
        }
    }

    public void SaveModel(string directory) => _model.SavePretrained(directory, _model.SourceDirectory);
}
