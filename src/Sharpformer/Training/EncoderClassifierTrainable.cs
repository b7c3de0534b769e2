using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>
/// Adapts a BERT-family classifier (a <see cref="HeadKind.SequenceClassification"/> or
/// <see cref="HeadKind.TokenClassification"/> head) to the <see cref="Trainer{TBatch}"/>: the head's loss, back-propagated
/// by autograd into the model's own parameters.
/// </summary>
/// <remarks>
/// Frozen parameters (<see cref="Parameter.Trainable"/> = false, e.g. the encoder for head-only
/// fine-tuning) get no gradient, so the optimizer never touches them. Dropout draws from the
/// trainer's checkpointed generator (<see cref="Module.UseRandom"/>).
/// Batches are <see cref="CollatedBatch"/>: labels [batch] (sequence) or [batch·seq] with −100 ignored (token).
/// </remarks>
public sealed class EncoderClassifierTrainable : ITrainableModel<CollatedBatch>
{
    readonly PretrainedModel _model;
    readonly bool _token;
    Random? _rngInUse;

    public EncoderClassifierTrainable(PretrainedModel model)
    {
        _model = model;
        _token = model.Head?.Kind switch
        {
            HeadKind.TokenClassification => true,
            HeadKind.SequenceClassification => false,
            _ => throw new NotSupportedException($"{model.Architecture} is neither a sequence nor a token classifier; only those can be trained here (train a masked-LM head with MaskedLMTrainable)."),
        };
        if (!model.Parameters().Any(p => p.Trainable)) throw new TrainingConfigurationException($"{model.Architecture} has no trainable parameters (everything is frozen).");
    }

    /// <summary>The wrapped model.</summary>
    public PretrainedModel Model => _model;

    /// <summary>True for token classification (labels per token).</summary>
    public bool IsTokenClassifier => _token;

    public Module Module => _model;

    public bool Training
    {
        get => _model.Training;
        set => _model.Train(value);
    }

    public int BatchSize(CollatedBatch batch) => batch.Batch;

    /// <summary>Examples for sequence classification; labelled tokens for token classification (its loss is their mean).</summary>
    public int LossWeight(CollatedBatch batch) => _token ? batch.LabelledCount : batch.Batch;

    static EncoderInput Input(CollatedBatch b) => b.ToEncoderInput();

    public float TrainStep(CollatedBatch batch, TrainingRandom rng, float gradScale)
    {
        if (batch.Labels == null) throw new TrainingConfigurationException("A training batch has no labels.");
        if (!ReferenceEquals(rng, _rngInUse)) { _model.UseRandom(rng); _rngInUse = rng; }
        var loss = Loss(batch);
        float value = loss.Item();
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
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
        if (!_token) return SequenceEvaluation(o.Logits!, o.Loss!, batch);
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

    /// <summary>A sequence classifier's evaluation of one batch: argmax of logits [B, L] against the batch's labels, the loss weighted by B.</summary>
    internal static EvalBatch SequenceEvaluation(Tensor logits, Tensor loss, CollatedBatch batch)
    {
        var arg = logits.ArgMax(-1);
        var p = new int[batch.Batch][]; var l = new int[batch.Batch][];
        for (int i = 0; i < batch.Batch; i++) { p[i] = [arg[i]]; l[i] = [batch.Labels![i]]; }
        return new EvalBatch(loss.Item(), batch.Batch, p, l);
    }
}

/// <summary>
/// Adapts <see cref="Gpt2ForSequenceClassification"/> to the <see cref="Trainer{TBatch}"/>: right-padded batches (the pad id
/// is the model's pad_token_id, so each row's last token is found as transformers does), cross-entropy on the last token's logits.
/// </summary>
public sealed class Gpt2ClassifierTrainable : ITrainableModel<CollatedBatch>
{
    readonly Gpt2ForSequenceClassification _model;
    Random? _rngInUse;

    public Gpt2ClassifierTrainable(Gpt2ForSequenceClassification model)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        if (!model.Parameters().Any(p => p.Trainable)) throw new TrainingConfigurationException("GPT2ForSequenceClassification has no trainable parameters (everything is frozen).");
    }

    /// <summary>The wrapped model.</summary>
    public Gpt2ForSequenceClassification Model => _model;
    public Module Module => _model;

    public bool Training
    {
        get => _model.Training;
        set => _model.Train(value);
    }

    public int BatchSize(CollatedBatch batch) => batch.Batch;

    static CausalLMInput Input(CollatedBatch b) => new(b.InputIds, b.Batch, b.Seq, b.AttentionMask);

    public float TrainStep(CollatedBatch batch, TrainingRandom rng, float gradScale)
    {
        if (batch.Labels == null) throw new TrainingConfigurationException("A training batch has no labels.");
        if (!ReferenceEquals(rng, _rngInUse)) { _model.UseRandom(rng); _rngInUse = rng; }
        var loss = _model.Forward(Input(batch), SequenceLabels.FromIds(batch.Labels)).Loss!;
        float value = loss.Item();
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
        return value;
    }

    public EvalBatch Evaluate(CollatedBatch batch)
    {
        if (batch.Labels == null) throw new TrainingConfigurationException("An evaluation batch has no labels.");
        using var _ = Autograd.NoGrad();
        var (logits, loss) = _model.Forward(Input(batch), SequenceLabels.FromIds(batch.Labels));
        return EncoderClassifierTrainable.SequenceEvaluation(logits, loss!, batch);
    }

    public void SaveModel(string directory) => _model.SavePretrained(directory);
}
