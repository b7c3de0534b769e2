using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Training;

/// <summary>
/// A batch for the encoder–decoder: src [Count, S] right-padded ids with lengths, decoder input [Count, T] (BOS …) and labels
/// [Count, T] (… EOS, PAD ignored); <paramref name="Keys"/> tells the metric which example each row is (e.g. the word index).
/// </summary>
public sealed record Seq2SeqBatch(int[] Src, int[] SrcLengths, int[] DecoderInput, int[] Labels, int[] Keys)
{
    public int Count => SrcLengths.Length;

    /// <summary>Pads sources with <paramref name="padId"/> and splits each target (BOS … EOS) into decoder input and labels.</summary>
    public static Seq2SeqBatch Collate(IReadOnlyList<(int[] Source, int[] Target, int Key)> rows, int padId)
    {
        int n = rows.Count;
        int S = Math.Max(1, rows.Max(r => r.Source.Length)), T = rows.Max(r => r.Target.Length) - 1;
        if (T < 1) throw new ArgumentException("Every target needs at least BOS and one more token.", nameof(rows));
        var src = new int[n * S]; var lengths = new int[n]; var input = new int[n * T]; var labels = new int[n * T]; var keys = new int[n];
        if (padId != 0) { Array.Fill(src, padId); Array.Fill(input, padId); Array.Fill(labels, padId); }
        for (int i = 0; i < n; i++)
        {
            var (s, t, k) = rows[i];
            s.CopyTo(src, i * S); lengths[i] = s.Length; keys[i] = k;
            t.AsSpan(0, t.Length - 1).CopyTo(input.AsSpan(i * T)); t.AsSpan(1).CopyTo(labels.AsSpan(i * T));
        }
        return new Seq2SeqBatch(src, lengths, input, labels, keys);
    }
}

/// <summary>
/// Adapts an encoder–decoder (<see cref="ISeq2SeqModel"/>: the Bahdanau RNN or the Transformer) to the <see cref="Trainer{TBatch}"/>: teacher-forced cross-entropy; evaluation reports the teacher-forced loss and greedy outputs cut at EOS,
/// with the batch's keys as labels, so the metric function can score against every reference of a word.
/// </summary>
public sealed class Seq2SeqTrainable(ISeq2SeqModel model, Action<ISeq2SeqModel, string> save, int extraDecodeSteps = 5, float labelSmoothing = 0f) : ITrainableModel<Seq2SeqBatch>
{
    Random? _rngInUse;

    public ISeq2SeqModel Model { get; } = model;
    /// <summary>Greedy decoding in evaluation runs for the longest label row plus this many steps.</summary>
    public int ExtraDecodeSteps { get; } = extraDecodeSteps;
    /// <summary>ε of the training loss (<see cref="Losses.CrossEntropy"/>); evaluation reports the plain cross-entropy, so eval_loss stays comparable across ε.</summary>
    public float LabelSmoothing { get; } = labelSmoothing;
    public Module Module => Model.Module;
    public bool Training { get => Model.Module.Training; set => Model.Module.Train(value); }
    public int BatchSize(Seq2SeqBatch batch) => batch.Count;

    public float TrainStep(Seq2SeqBatch batch, TrainingRandom rng, float gradScale)
    {
        // Dropout draws from the trainer's checkpointed generator: one stream for every dropout module (each module's own
        // Random(0) would give modules of the same shape the same masks) that a resumed run continues.
        if (!ReferenceEquals(rng, _rngInUse)) { Model.Module.UseRandom(rng); _rngInUse = rng; }
        var loss = Model.Loss(batch.Src, batch.SrcLengths, batch.DecoderInput, batch.Labels, LabelSmoothing);
        float value = loss.Item();
        (gradScale == 1f ? loss : loss.Mul(gradScale)).Backward();
        return value;
    }

    /// <summary>The target tokens that are not padding: the teacher-forced loss is their mean.</summary>
    public int LossWeight(Seq2SeqBatch batch) => batch.Labels.Count(l => l != Model.PadId);

    public EvalBatch Evaluate(Seq2SeqBatch batch)
    {
        using var _ = Autograd.NoGrad();
        var loss = Model.Loss(batch.Src, batch.SrcLengths, batch.DecoderInput, batch.Labels);
        int labelled = LossWeight(batch);
        int steps = batch.Labels.Length / batch.Count + ExtraDecodeSteps;
        var greedy = Model.Greedy(batch.Src, batch.SrcLengths, steps);
        var predicted = greedy.Tokens.Select(t => { int e = Array.IndexOf(t, Model.EosId); return e < 0 ? t : t[..e]; }).ToArray();
        return new EvalBatch(loss.Item(), labelled, predicted, batch.Keys.Select(k => new[] { k }).ToArray());
    }

    public void SaveModel(string directory) => save(Model, directory);
}
