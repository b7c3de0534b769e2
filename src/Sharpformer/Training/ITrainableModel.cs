using Sharpformer.Nn;

namespace Sharpformer.Training;

/// <summary>
/// What the <see cref="Trainer{TBatch}"/> needs from a model: the <see cref="Module"/> whose trainable parameters it updates,
/// a forward + loss + backward step (autograd accumulates into each parameter's gradient), an evaluation step, and a
/// way to save itself as a model directory.
/// </summary>
/// <typeparam name="TBatch">The collated batch type.</typeparam>
public interface ITrainableModel<TBatch>
{
    /// <summary>The model; its parameters with <see cref="Parameter.Trainable"/> set are optimised, in <see cref="Module.NamedParameters"/> order.</summary>
    Module Module { get; }

    /// <summary>Switches dropout on (training) or off.</summary>
    bool Training { get; set; }

    /// <summary>Rows in the batch (examples, for throughput and loss weighting).</summary>
    int BatchSize(TBatch batch);

    /// <summary>
    /// How many items the mean loss of <see cref="TrainStep"/> is over: the examples (the default) for a per-example mean, the
    /// labelled tokens for a per-token mean (masked and causal LM). Data-parallel training weights each rank's loss by its
    /// share of this count in the whole micro-batch, so N ranks × batch B follow one process with batch N·B.
    /// </summary>
    int LossWeight(TBatch batch) => BatchSize(batch);

    /// <summary>
    /// Forward, mean loss and backward; adds ∂(gradScale·loss)/∂θ to every gradient. Dropout draws from <paramref name="rng"/>.
    /// </summary>
    /// <remarks>
    /// The trainer calls it inside a <see cref="Tensors.TensorScope"/>: tensors created during the step are released and their
    /// buffers reused when it returns, so keep no tensor from it (parameter gradients are kept; see the scope's rules).
    /// </remarks>
    /// <returns>The (unscaled) mean loss of the batch.</returns>
    float TrainStep(TBatch batch, TrainingRandom rng, float gradScale);

    /// <summary>Eval-mode forward: mean loss and the predictions and labels of every example.</summary>
    EvalBatch Evaluate(TBatch batch);

    /// <summary>Writes a loadable model directory (config.json, model.safetensors, vocabulary…).</summary>
    void SaveModel(string directory);
}

/// <summary>Predictions of one evaluation batch.</summary>
/// <param name="Loss">Mean loss over the batch's labelled items.</param>
/// <param name="LossWeight">How many labelled items that mean is over (to average over batches).</param>
/// <param name="Predicted">Per example: predicted class ids (one for sequence classification, one per labelled token otherwise).</param>
/// <param name="Labels">Per example: gold class ids aligned with <paramref name="Predicted"/>.</param>
public sealed record EvalBatch(double Loss, int LossWeight, IReadOnlyList<int[]> Predicted, IReadOnlyList<int[]> Labels);

/// <summary>Everything an evaluation produced, handed to the metric function.</summary>
public sealed record EvalPredictions(IReadOnlyList<int[]> Predicted, IReadOnlyList<int[]> Labels);

/// <summary>Training examples addressed by index, collated into batches on demand.</summary>
public interface ITrainingData<TBatch>
{
    /// <summary>Number of examples.</summary>
    int Count { get; }

    /// <summary>Builds the batch holding the given examples, in that order.</summary>
    TBatch Collate(ReadOnlySpan<int> indices);

    /// <summary>
    /// Builds a training batch of epoch <paramref name="epoch"/> (0-based). Data whose examples change between epochs
    /// (dynamic masking) overrides it; by default the epoch is ignored. The trainer calls this for training batches and
    /// <see cref="Collate(ReadOnlySpan{int})"/> for evaluation, so an evaluation set is the same every time.
    /// </summary>
    /// <remarks>The batch must depend only on the indices and the epoch (not on call order), or a resumed run would differ.</remarks>
    TBatch Collate(ReadOnlySpan<int> indices, int epoch) => Collate(indices);
}

/// <summary>An <see cref="ITrainingData{TBatch}"/> over a list and a collate function.</summary>
public sealed class ListTrainingData<TExample, TBatch>(IReadOnlyList<TExample> examples, Func<IReadOnlyList<TExample>, TBatch> collate)
    : ITrainingData<TBatch>
{
    public int Count => examples.Count;

    public TBatch Collate(ReadOnlySpan<int> indices)
    {
        var items = new TExample[indices.Length];
        for (int i = 0; i < indices.Length; i++) items[i] = examples[indices[i]];
        return collate(items);
    }
}

/// <summary>
/// Examples grouped into batches of similar length, each batch one item of this data set: give the trainer a per-device
/// batch size of 1 and it shuffles whole batches every epoch. Sequence models pay for the longest row of a batch, so
/// grouping by length removes most of the padding (fairseq and tensor2tensor batch the same way).
/// </summary>
/// <remarks>
/// The grouping is drawn once: examples are sorted by length, ties broken by a seeded permutation, and cut into
/// consecutive batches of <c>batchSize</c> (the last may be smaller). Only the order of the batches changes between epochs.
/// </remarks>
public sealed class LengthBucketedData<TExample, TBatch> : ITrainingData<TBatch>
{
    readonly TExample[][] _batches;
    readonly Func<IReadOnlyList<TExample>, TBatch> _collate;

    public LengthBucketedData(IReadOnlyList<TExample> examples, Func<TExample, int> length, int batchSize, int seed,
        Func<IReadOnlyList<TExample>, TBatch> collate)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var order = Trainer<TBatch>.EpochOrder(examples.Count, seed, -1);
        // A stable sort of a random permutation: equal lengths stay in random order, so batches differ between seeds.
        var sorted = order.OrderBy(i => length(examples[i])).ToArray();
        _batches = sorted.Chunk(batchSize).Select(c => c.Select(i => examples[i]).ToArray()).ToArray();
        _collate = collate;
    }

    /// <summary>Number of batches.</summary>
    public int Count => _batches.Length;

    /// <summary>Examples in every batch together.</summary>
    public int ExampleCount => _batches.Sum(b => b.Length);

    /// <summary>The batches at <paramref name="indices"/> joined into one (with a per-device batch size of 1: one batch).</summary>
    public TBatch Collate(ReadOnlySpan<int> indices)
    {
        if (indices.Length == 1) return _collate(_batches[indices[0]]);
        var items = new List<TExample>();
        foreach (int i in indices) items.AddRange(_batches[i]);
        return _collate(items);
    }
}
