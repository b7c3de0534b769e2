using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>A batch for the seed transformer: ids [Count, SequenceLength] (0 = padding) and one label per row.</summary>
public sealed record SeedBatch(int[] Ids, int[] Labels, int Count);

/// <summary>Adapts <see cref="SeedTransformer"/> to the <see cref="Trainer{TBatch}"/>: sparse categorical cross-entropy on its logits.</summary>
public sealed class SeedTransformerTrainable(SeedTransformer model, Action<SeedTransformer, string>? save = null) : ITrainableModel<SeedBatch>
{
    Random? _rngInUse;

    public SeedTransformer Model { get; } = model;
    public Module Module => Model;
    public bool Training { get => Model.Training; set => Model.Train(value); }
    public int BatchSize(SeedBatch batch) => batch.Count;

    public float TrainStep(SeedBatch batch, TrainingRandom rng, float gradScale)
    {
        if (!ReferenceEquals(rng, _rngInUse)) { Model.UseRandom(rng); _rngInUse = rng; }
        var loss = Losses.CrossEntropy(Model.Forward(batch.Ids, batch.Count).Logits, CheckedLabels(batch));
        float value = loss.Item();
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
        return value;
    }

    public EvalBatch Evaluate(SeedBatch batch)
    {
        using var _ = Autograd.NoGrad();
        var output = Model.Forward(batch.Ids, batch.Count);
        float loss = Losses.CrossEntropy(output.Logits, CheckedLabels(batch)).Item();
        var preds = output.Predictions();
        var p = new int[batch.Count][]; var l = new int[batch.Count][];
        for (int i = 0; i < batch.Count; i++) { p[i] = [preds[i]]; l[i] = [batch.Labels[i]]; }
        return new EvalBatch(loss, batch.Count, p, l);
    }

    int[] CheckedLabels(SeedBatch batch)
    {
        if (batch.Labels.Length != batch.Count) throw new SeedTransformerException($"{batch.Labels.Length} labels for a batch of {batch.Count}.");
        int c = Model.Config.NumLabels;
        for (int i = 0; i < batch.Count; i++)
            if ((uint)batch.Labels[i] >= (uint)c) throw new SeedTransformerException($"Label {batch.Labels[i]} at row {i} is outside [0, {c}).");
        return batch.Labels;
    }

    public void SaveModel(string directory)
    {
        if (save == null) throw new NotSupportedException("This seed-transformer trainable was created without a save function (it needs the vectorizer vocabulary).");
        save(Model, directory);
    }

    /// <summary>Collates pre-vectorised rows into a <see cref="SeedBatch"/>.</summary>
    public static SeedBatch Collate(IReadOnlyList<(int[] Ids, int Label)> rows, int sequenceLength)
    {
        var ids = new int[rows.Count * sequenceLength];
        var labels = new int[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].Ids.Length != sequenceLength) throw new SeedTransformerException($"Row {i} has {rows[i].Ids.Length} ids; the model takes exactly {sequenceLength}.");
            rows[i].Ids.CopyTo(ids, i * sequenceLength);
            labels[i] = rows[i].Label;
        }
        return new SeedBatch(ids, labels, rows.Count);
    }
}
