using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>
/// Adapts a masked-LM model (<see cref="BertForMaskedLM"/> or any <see cref="EncoderWithHead"/> with a
/// <see cref="HeadKind.MaskedLM"/> head) to the <see cref="Trainer{TBatch}"/>: the mean cross-entropy over the labelled
/// (masked) positions, with the head run only there (<see cref="EncoderWithHead.RunMaskedLM"/>).
/// </summary>
/// <remarks>
/// Batches are <see cref="CollatedBatch"/> with labels [batch·seq], −100 where nothing is predicted (as
/// <see cref="MaskedLanguageModeling"/> makes them). The decoder weight is the word-embedding matrix, so its gradient is
/// the sum of the embedding lookup's and the output projection's. Evaluation reports, per example, the argmax id and the
/// label of each labelled position (accuracy = held-out MLM accuracy) and the loss weighted by the labelled count
/// (exp of the mean = perplexity over the masked tokens).
/// </remarks>
public sealed class MaskedLMTrainable : ITrainableModel<CollatedBatch>
{
    readonly EncoderWithHead _model;
    readonly string? _tokenizerDirectory;
    Random? _rngInUse;

    /// <param name="model">The model to train.</param>
    /// <param name="tokenizerDirectory">Whose tokenizer files <see cref="SaveModel"/> writes along (default: the model's source directory).</param>
    public MaskedLMTrainable(EncoderWithHead model, string? tokenizerDirectory = null)
    {
        _tokenizerDirectory = tokenizerDirectory;
        ArgumentNullException.ThrowIfNull(model);
        if (model.Head.Kind != HeadKind.MaskedLM) throw new NotSupportedException($"{model.Architecture} has no masked-LM head; pretrain a BertForMaskedLM.");
        _model = model;
    }

    /// <summary>The wrapped model.</summary>
    public EncoderWithHead Model => _model;
    public Module Module => _model;
    public bool Training { get => _model.Training; set => _model.Train(value); }
    public int BatchSize(CollatedBatch batch) => batch.Batch;

    /// <summary>The masked (labelled) positions: the loss is their mean.</summary>
    public int LossWeight(CollatedBatch batch) => batch.LabelledCount;

    bool TypeIds => _model.BaseModel.Embeddings.TokenTypeEmbeddings != null;

    public float TrainStep(CollatedBatch batch, TrainingRandom rng, float gradScale)
    {
        var labels = batch.Labels ?? throw new TrainingConfigurationException("A masked-LM batch has no labels.");
        if (!ReferenceEquals(rng, _rngInUse)) { _model.UseRandom(rng); _rngInUse = rng; }
        var (loss, _, _) = _model.RunMaskedLM(batch.ToEncoderInput(TypeIds), labels);
        float value = loss.Item();
        if (float.IsNaN(value) && !labels.Any(l => l != PaddingCollator.IgnoreIndex)) return 0f;   // nothing masked: no gradient, no loss
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
        return value;
    }

    public EvalBatch Evaluate(CollatedBatch batch)
    {
        var labels = batch.Labels ?? throw new TrainingConfigurationException("A masked-LM evaluation batch has no labels.");
        using var _ = Autograd.NoGrad();
        var (loss, logits, positions) = _model.RunMaskedLM(batch.ToEncoderInput(TypeIds), labels);
        var predicted = positions.Length == 0 ? [] : logits.ArgMax(-1);
        var p = new List<int>[batch.Batch]; var l = new List<int>[batch.Batch];
        for (int b = 0; b < batch.Batch; b++) { p[b] = []; l[b] = []; }
        for (int i = 0; i < positions.Length; i++)
        {
            int b = positions[i] / batch.Seq;
            p[b].Add(predicted[i]); l[b].Add(labels[positions[i]]);
        }
        return new EvalBatch(positions.Length == 0 ? 0 : loss.Item(), positions.Length, p.Select(x => x.ToArray()).ToArray(), l.Select(x => x.ToArray()).ToArray());
    }

    /// <summary>Writes the model (HF <c>BertForMaskedLM</c> layout) with the tokenizer files.</summary>
    public void SaveModel(string directory) => _model.SavePretrained(directory, _tokenizerDirectory);
}

/// <summary>
/// Adapts <see cref="Gpt2LMHeadModel"/> to the <see cref="Trainer{TBatch}"/>: the mean next-token cross-entropy over each
/// block (labels = the input ids, shifted inside the model as transformers does; −100 ignored).
/// </summary>
/// <remarks>
/// Batches are <see cref="CollatedBatch"/>; the attention mask is passed only when the batch has padding (packed blocks
/// have none). Evaluation reports per example the argmax next token and the target of every predicted position
/// (accuracy = next-token accuracy), the loss weighted by the number of targets (exp of the mean = perplexity).
/// </remarks>
/// <param name="model">The model to train.</param>
/// <param name="tokenizerDirectory">Whose tokenizer files <see cref="SaveModel"/> writes along (default: the model's source directory).</param>
public sealed class CausalLMTrainable(Gpt2LMHeadModel model, string? tokenizerDirectory = null) : ITrainableModel<CollatedBatch>
{
    Random? _rngInUse;

    /// <summary>The wrapped model.</summary>
    public Gpt2LMHeadModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));
    public Module Module => Model;
    public bool Training { get => Model.Training; set => Model.Train(value); }
    public int BatchSize(CollatedBatch batch) => batch.Batch;

    /// <summary>The predicted positions (a label at t ≥ 1 that is not −100): the loss is their mean.</summary>
    public int LossWeight(CollatedBatch batch)
    {
        var labels = batch.Labels ?? [];
        int count = 0;
        for (int i = 0; i < labels.Length; i++) if (i % batch.Seq != 0 && labels[i] != PaddingCollator.IgnoreIndex) count++;
        return count;
    }

    static CausalLMInput Input(CollatedBatch b) =>
        new(b.InputIds, b.Batch, b.Seq, b.AttentionMask.Contains(0) ? b.AttentionMask : null);

    public float TrainStep(CollatedBatch batch, TrainingRandom rng, float gradScale)
    {
        var labels = batch.Labels ?? throw new TrainingConfigurationException("A causal-LM batch has no labels.");
        if (!ReferenceEquals(rng, _rngInUse)) { Model.UseRandom(rng); _rngInUse = rng; }
        var loss = Model.Forward(Input(batch), labels: labels).Loss!;
        float value = loss.Item();
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
        return value;
    }

    public EvalBatch Evaluate(CollatedBatch batch)
    {
        var labels = batch.Labels ?? throw new TrainingConfigurationException("A causal-LM evaluation batch has no labels.");
        using var _ = Autograd.NoGrad();
        var o = Model.Forward(Input(batch), labels: labels);
        var arg = o.Logits.ArgMax(-1);   // [B·T]: the prediction at t is for token t + 1
        int t = batch.Seq, targets = 0;
        var p = new int[batch.Batch][]; var l = new int[batch.Batch][];
        for (int b = 0; b < batch.Batch; b++)
        {
            var pr = new List<int>(); var lr = new List<int>();
            for (int s = 0; s + 1 < t; s++)
            {
                int y = labels[b * t + s + 1];
                if (y == PaddingCollator.IgnoreIndex) continue;
                pr.Add(arg[b * t + s]); lr.Add(y);
            }
            p[b] = [.. pr]; l[b] = [.. lr]; targets += lr.Count;
        }
        return new EvalBatch(targets == 0 ? 0 : o.Loss!.Item(), targets, p, l);
    }

    /// <summary>Writes the model (HF <c>GPT2LMHeadModel</c> layout) with the tokenizer files.</summary>
    public void SaveModel(string directory) => Model.SavePretrained(directory, tokenizerDirectory);
}
