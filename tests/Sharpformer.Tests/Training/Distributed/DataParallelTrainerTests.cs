using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Training;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Tests.Training.Distributed;

/// <summary>
/// The trainer's data parallelism with N ranks as N threads (<see cref="ThreadWorld"/>); the same trainer code runs over
/// MPI in <see cref="MpirunTests"/>. Dropout is off except where a test says otherwise (its masks are keyed by the example's
/// place in the global micro-batch, so a run with dropout is still a function of the data order and the seed).
/// </summary>
public sealed class DataParallelTrainerTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-ddp-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly SeedTransformerConfig Config = new(VocabSize: 30, SequenceLength: 6, EmbedDim: 8, NumHeads: 2, KeyDim: 4, FfDim: 8,
        DenseDim: 6, NumLabels: 3, Dropout: 0f);

    // 38 examples: with a global batch of 8 the epoch ends on 6, which leaves rank 1 of 2 × 4 two examples, and of 4 × 2 none.
    static readonly ListTrainingData<(int[] Ids, int Label), SeedBatch> Data = new(Enumerable.Range(0, 38).Select(i =>
    {
        var r = new Random(i);
        return (Enumerable.Range(0, 6).Select(_ => 1 + r.Next(29)).ToArray(), i % 3);
    }).ToList(), rows => SeedTransformerTrainable.Collate(rows, 6));

    sealed record Run(IReadOnlyList<double> Losses, float[] Weights, TrainResult Result, Trainer<SeedBatch> Trainer);

    Run Train(IProcessGroup group, int batch, string output, int epochs = 3, string? resume = null, bool save = false, ITrainerCallback? callback = null,
        SeedTransformerConfig? config = null)
    {
        var model = new SeedTransformer(config ?? Config, new TrainingRandom(group.Rank == 0 ? 7 : 100 + group.Rank));   // replicas start apart: rank 0's weights are broadcast
        var trainable = new SeedTransformerTrainable(model, (m, dir) => m.Save(dir));
        var args = new TrainingArguments
        {
            OutputDir = output, NumTrainEpochs = epochs, PerDeviceTrainBatchSize = batch, LearningRate = 3e-3, Seed = 5,
            LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = 1, SaveStrategy = save ? IntervalStrategy.Epoch : IntervalStrategy.No,
            DisableProgressBar = true, Execution = new Sharpformer.Tensors.ExecutionOptions(1), MaxGradNorm = 0.5,
        };
        var trainer = new Trainer<SeedBatch>(trainable, args, Data, callbacks: callback == null ? null : [callback], processGroup: group);
        var losses = new List<double>();
        trainer.Logged += log => { if (log is TrainingProgressLog p) losses.Add(p.TrainLoss); };
        var result = trainer.Train(resume);
        var weights = TrainingOptimizer.TrainableParameters(model).SelectMany(p => p.Parameter.Value.ToArray()).ToArray();
        return new Run(losses, weights, result, trainer);
    }

    static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double tolerance)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"item {i}: {expected[i]} vs {actual[i]}");
    }

    static void AssertClose(float[] expected, float[] actual, float tolerance) =>
        AssertClose(expected.Select(v => (double)v).ToList(), actual.Select(v => (double)v).ToList(), tolerance);

    [Theory]
    [InlineData(2, 4)]
    [InlineData(4, 2)]
    public void NRanksOfBatchB_FollowOneProcessOfBatchNB_LossCurveAndWeights(int ranks, int batch)
    {
        var one = Train(SingleProcessGroup.Instance, ranks * batch, Path.Combine(_dir, "one"));
        var world = new ThreadWorld(ranks);
        var many = world.Run(g => Train(g, batch, Path.Combine(_dir, $"rank{g.Rank}")));

        Assert.Equal(one.Result.GlobalStep, many[0].Result.GlobalStep);
        Assert.Equal(15, one.Losses.Count);   // ⌈38 / 8⌉ = 5 steps × 3 epochs
        // Tolerance: the same sums in another order (per-rank means, then the all-reduce) over 15 Adam steps.
        AssertClose(one.Losses, many[0].Losses, 2e-5);
        AssertClose(one.Weights, many[0].Weights, 2e-5f);
        // Every rank holds bit-identical weights: the same summed gradients through the same optimizer state.
        for (int r = 1; r < ranks; r++) Assert.Equal(many[0].Weights, many[r].Weights);
        for (int r = 1; r < ranks; r++) Assert.Equal(many[0].Losses, many[r].Losses);
    }

    [Theory]
    [InlineData(2, 4, false)]
    [InlineData(4, 2, false)]
    [InlineData(2, 4, true)]
    public void WithDropout_NRanksOfBatchB_FollowOneProcessOfBatchNB_LossCurveAndWeights(int ranks, int batch, bool maskedTrim)
    {
        // maskedTrim: MaskedAttention && MaskedPooling, under which the model trims a batch's trailing padding columns. These rows
        // have no padding, so every slice keeps the whole batch's length and the per-example masks line up; with padding a
        // rank's slice may trim to another length than the whole batch, and then its masks (not their distribution) differ.
        var config = Config with { Dropout = 0.2f, MaskedAttention = maskedTrim, MaskedPooling = maskedTrim };
        var one = Train(SingleProcessGroup.Instance, ranks * batch, Path.Combine(_dir, "one"), config: config);
        var many = new ThreadWorld(ranks).Run(g => Train(g, batch, Path.Combine(_dir, $"rank{g.Rank}"), config: config));
        // Dropout is really on: the curve differs from the dropout-free one.
        var plain = Train(SingleProcessGroup.Instance, ranks * batch, Path.Combine(_dir, "plain"), config: config with { Dropout = 0f });
        Assert.True(Math.Abs(plain.Losses[5] - one.Losses[5]) > 1e-3, $"{plain.Losses[5]} vs {one.Losses[5]}");
        // Tolerance as without dropout: the masks are the same bits, only the summation order differs.
        AssertClose(one.Losses, many[0].Losses, 2e-5);
        AssertClose(one.Weights, many[0].Weights, 2e-5f);
        for (int r = 1; r < ranks; r++) Assert.Equal(many[0].Weights, many[r].Weights);
    }

    sealed class StopAt(long step) : ITrainerCallback
    {
        public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log) { if (state.GlobalStep == step) control.ShouldStop = true; }
    }

    [Fact]
    public void ACallbackStoppingOneRank_StopsEveryRankAfterTheSameStep()
    {
        var runs = new ThreadWorld(2).Run(g => Train(g, 4, Path.Combine(_dir, $"rank{g.Rank}"), callback: g.Rank == 1 ? new StopAt(3) : null));
        Assert.All(runs, r => Assert.Equal(3, r.Result.GlobalStep));
        Assert.All(runs, r => Assert.True(r.Result.Stopped));
    }

    sealed class SaveAt(long step) : ITrainerCallback
    {
        public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log) { if (state.GlobalStep == step) control.ShouldSave = true; }
    }

    [Fact]
    public void ACallbackAskingOneRankToSave_SavesOnceFromRankZero_AndEveryRankGoesOn()
    {
        // A timed checkpoint reads each rank's own clock: here only rank 1 asks, and rank 0 must write the checkpoint.
        var runs = new ThreadWorld(2).Run(g => Train(g, 4, Path.Combine(_dir, $"rank{g.Rank}"), callback: g.Rank == 1 ? new SaveAt(2) : null));
        Assert.Equal(["checkpoint-2"], Directory.GetDirectories(Path.Combine(_dir, "rank0"), "checkpoint-*").Select(d => Path.GetFileName(d)!).ToArray());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_dir, "rank1")));
        Assert.All(runs, r => Assert.Equal(15, r.Result.GlobalStep));
        Assert.Equal(runs[0].Weights, runs[1].Weights);
    }

    [Fact]
    public void OnlyRankZero_WritesCheckpointsMetricsAndTheModel()
    {
        var world = new ThreadWorld(2);
        world.Run(g =>
        {
            var run = Train(g, 4, Path.Combine(_dir, $"rank{g.Rank}"), epochs: 1, save: true);
            run.Trainer.SaveModel(Path.Combine(_dir, $"model{g.Rank}"));
            return 0;
        });
        Assert.True(File.Exists(Path.Combine(_dir, "rank0", "metrics.jsonl")));
        Assert.True(Directory.Exists(Path.Combine(_dir, "rank0", "checkpoint-5")));
        Assert.True(File.Exists(Path.Combine(_dir, "model0", "config.json")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_dir, "rank1")));
        Assert.False(Directory.Exists(Path.Combine(_dir, "model1")));
    }

    [Fact]
    public void CheckpointOfTwoRanks_ResumesOnOneProcess_AndOneProcessCheckpoint_ResumesOnFourRanks()
    {
        // The same global batch (8) throughout, so each resumed run must continue the uninterrupted one.
        var reference = Train(SingleProcessGroup.Instance, 8, Path.Combine(_dir, "reference"), save: true);

        string shared = Path.Combine(_dir, "two");
        new ThreadWorld(2).Run(g => Train(g, 4, shared, save: true));
        var onOne = Train(SingleProcessGroup.Instance, 8, Path.Combine(_dir, "resumed-one"), resume: Path.Combine(shared, "checkpoint-5"));
        Assert.Equal(15, onOne.Result.GlobalStep);
        AssertClose(reference.Losses.Skip(5).ToList(), onOne.Losses, 2e-5);
        AssertClose(reference.Weights, onOne.Weights, 2e-5f);

        var onFour = new ThreadWorld(4).Run(g => Train(g, 2, Path.Combine(_dir, $"resumed-four-{g.Rank}"), resume: Path.Combine(reference.Trainer.Args.OutputDir, "checkpoint-10")));
        Assert.True(onFour.All(r => r.Result.GlobalStep == 15));
        AssertClose(reference.Losses.Skip(10).ToList(), onFour[0].Losses, 2e-5);
        AssertClose(reference.Weights, onFour[0].Weights, 2e-5f);
    }

    [Fact]
    public void Buckets_StartDuringBackward_InIndexOrder_AndHoldTheSumOfTheRanksGradients()
    {
        const int ranks = 2;
        var model = new SeedTransformer(Config, new TrainingRandom(3));
        var parameters = TrainingOptimizer.TrainableParameters(model).Select(p => p.Parameter).ToList();
        SeedBatch BatchOf(int rank) => Data.Collate([4 * rank, 4 * rank + 1, 4 * rank + 2, 4 * rank + 3]);
        // Reference: each rank's gradient computed alone, added in rank order.
        var expected = new float[parameters.Sum(p => p.Size)];
        for (int r = 0; r < ranks; r++)
        {
            TrainingOptimizer.ZeroGradients(parameters);
            new SeedTransformerTrainable(model).TrainStep(BatchOf(r), new TrainingRandom(0), 1f);
            var g = parameters.SelectMany(p => p.Grad!.ToArray()).ToArray();
            for (int i = 0; i < g.Length; i++) expected[i] += g[i];
        }

        var world = new ThreadWorld(ranks);
        int startedInBackward = -1;
        var results = world.Run(g =>
        {
            var replica = new SeedTransformer(Config, new TrainingRandom(3));
            var ps = TrainingOptimizer.TrainableParameters(replica).Select(p => p.Parameter).ToList();
            using var buckets = new GradientBuckets(ps, g, bucketBytes: 256 * sizeof(float));
            buckets.Arm();
            new SeedTransformerTrainable(replica).TrainStep(BatchOf(g.Rank), new TrainingRandom(0), 1f);
            if (g.Rank == 0) startedInBackward = world.Started.Count;
            buckets.Finish();
            return (Grads: ps.SelectMany(p => p.Grad!.ToArray()).ToArray(), Sizes: buckets.BucketSizes);
        });
        Assert.True(results[0].Sizes.Count >= 4, $"{results[0].Sizes.Count} buckets");
        Assert.Equal(results[0].Sizes, world.Started);   // started in index order, each once
        // Every bucket was started by the hooks, inside backward, not by Finish.
        Assert.Equal(results[0].Sizes.Count, startedInBackward);
        Assert.Equal(expected, results[0].Grads);
        Assert.Equal(expected, results[1].Grads);
    }
}
