using Sharpformer.Models;

namespace Sharpformer.Training;

/// <summary>A batch for the seed transformer: ids [Count, SequenceLength] (0 = padding) and one label per row.</summary>
public sealed record SeedBatch(int[] Ids, int[] Labels, int Count);

/// <summary>Adapts <see cref="SeedTransformer"/> to the <see cref="Trainer{TBatch}"/>.</summary>
public sealed class SeedTransformerTrainable(SeedTransformer model, Action<SeedTransformer, string>? save = null) : ITrainableModel<SeedBatch>
{
    public SeedTransformer Model { get; } = model;
    public IReadOnlyList<FlatParameter> Parameters => Model.Parameters;
    public bool IsLayerNormParameter(string name) => name.Contains("_norm.", StringComparison.Ordinal);
    public bool Training { get => Model.Training; set => Model.Training = value; }
    public int BatchSize(SeedBatch batch) => batch.Count;

    public float TrainStep(SeedBatch batch, TrainingRandom rng, float gradScale)
    {
        Model.Forward(batch.Ids, batch.Count, rng);
        float loss = Model.CrossEntropyLoss(batch.Labels, gradScale);
        Model.Backward();
        return loss;
    }

    public EvalBatch Evaluate(SeedBatch batch)
    {
        var output = Model.Forward(batch.Ids, batch.Count);
        float loss = Model.CrossEntropyLoss(batch.Labels);
        var preds = output.Predictions();
        var p = new int[batch.Count][]; var l = new int[batch.Count][];
        for (int i = 0; i < batch.Count; i++) { p[i] = [preds[i]]; l[i] = [batch.Labels[i]]; }
        return new EvalBatch(loss, batch.Count, p, l);
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
