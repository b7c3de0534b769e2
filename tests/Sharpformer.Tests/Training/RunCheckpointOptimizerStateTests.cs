using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

/// <summary>Run checkpoints store the nn layer's optimizer and scheduler state; damaged or foreign state is refused by name.</summary>
public sealed class RunCheckpointOptimizerStateTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-ckstate-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    static readonly SeedTransformerConfig Cfg = new(VocabSize: 30, SequenceLength: 8, EmbedDim: 8, NumHeads: 2, KeyDim: 4,
        FfDim: 8, DenseDim: 6, NumLabels: 3, Dropout: 0.1f, MaskedAttention: true, MaskedPooling: true);

    static ListTrainingData<int, SeedBatch> Data(int n) => new(Enumerable.Range(0, n).ToList(), rows =>
    {
        var ids = new int[rows.Count * 8]; var labels = new int[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            labels[r] = rows[r] % 3;
            for (int t = 0; t < 3 + rows[r] % 5; t++) ids[r * 8 + t] = t == 0 ? 3 + labels[r] : 6 + (rows[r] * 7 + t * 3) % 24;
        }
        return new SeedBatch(ids, labels, rows.Count);
    });

    TrainingArguments Args(string name, OptimizerKind kind = OptimizerKind.AdamW) => new()
    {
        OutputDir = Path.Combine(_root, name), MaxSteps = 6, LearningRate = 3e-3, PerDeviceTrainBatchSize = 8, WarmupSteps = 2,
        WeightDecay = kind == OptimizerKind.AdamW ? 0.01 : 0, Optimizer = kind, SaveStrategy = IntervalStrategy.Steps, SaveSteps = 3,
        Seed = 4, DisableProgressBar = true,
    };

    static SeedTransformerTrainable NewModel() => new(new SeedTransformer(Cfg, new TrainingRandom(5)));

    [Theory]
    [InlineData(OptimizerKind.AdamW)]
    [InlineData(OptimizerKind.KerasAdam)]
    public void CheckpointHoldsOptimizerAndSchedulerStateAndResumesBitExactly(OptimizerKind kind)
    {
        var full = NewModel();
        var t1 = new Trainer<SeedBatch>(full, Args("full" + kind, kind), Data(40));
        t1.Train();
        string ck = Path.Combine(_root, "full" + kind, "checkpoint-3");
        Assert.True(File.Exists(Path.Combine(ck, RunCheckpoint.OptimizerFile)));
        Assert.True(File.Exists(Path.Combine(ck, RunCheckpoint.SchedulerFile)));
        Assert.Equal(6, t1.Optimizer.StepCount);
        Assert.Equal(6, t1.Scheduler.CurrentStep);

        var resumedModel = NewModel();
        var t2 = new Trainer<SeedBatch>(resumedModel, Args("full" + kind, kind), Data(40));
        t2.Train(ck);
        for (int i = 0; i < TrainerTests.Weights(full).Count; i++) Assert.Equal(TrainerTests.Weights(full)[i].Value, TrainerTests.Weights(resumedModel)[i].Value);
        Assert.Equal(t1.Optimizer.Groups[0].LearningRateExact, t2.Optimizer.Groups[0].LearningRateExact);
    }

    [Fact]
    public void DamagedOrForeignOptimizerStateIsRefusedNamingTheFile()
    {
        var args = Args("a");
        new Trainer<SeedBatch>(NewModel(), args, Data(40)).Train();
        string ck = Path.Combine(args.OutputDir, "checkpoint-3"), file = Path.Combine(ck, RunCheckpoint.OptimizerFile);

        // Saved by AdamW, loaded into the Keras Adam of a run with otherwise equal position.
        var keras = new Trainer<SeedBatch>(NewModel(), Args("a", OptimizerKind.KerasAdam), Data(40));
        var e = Assert.Throws<CheckpointFormatException>(() => keras.Train(ck));
        Assert.Contains(RunCheckpoint.OptimizerFile, e.Message);
        Assert.Contains("AdamW", e.Message);

        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
        var e2 = Assert.Throws<CheckpointFormatException>(() => new Trainer<SeedBatch>(NewModel(), args, Data(40)).Train(ck));
        Assert.Contains(file, e2.Message);
        Assert.Contains("ended early", e2.Message);

        File.Delete(file);
        var e3 = Assert.Throws<CheckpointFormatException>(() => new Trainer<SeedBatch>(NewModel(), args, Data(40)).Train(ck));
        Assert.Contains("does not exist", e3.Message);
    }
}
