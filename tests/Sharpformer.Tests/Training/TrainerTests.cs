using System.Text.Json.Nodes;
using Sharpformer.Models;
using Sharpformer.Training;

namespace Sharpformer.Tests.Training;

public sealed class TrainerTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    static readonly SeedTransformerConfig Cfg = new(VocabSize: 30, SequenceLength: 8, EmbedDim: 8, NumHeads: 2, KeyDim: 4,
        FfDim: 8, DenseDim: 6, NumLabels: 3, Dropout: 0.1f, MaskedAttention: true, MaskedPooling: true);

    // Synthetic task: the label is which of three marker tokens (3, 4, 5) occurs in the row.
    static List<(int[] Ids, int Label)> Rows(int n, int seed)
    {
        var rng = new TrainingRandom(seed);
        var rows = new List<(int[], int)>();
        for (int i = 0; i < n; i++)
        {
            int len = 2 + rng.Next(7);
            var ids = new int[8];
            for (int t = 0; t < len; t++) ids[t] = 6 + rng.Next(24);
            int label = rng.Next(3);
            ids[rng.Next(len)] = 3 + label;
            rows.Add((ids, label));
        }
        return rows;
    }

    static ListTrainingData<(int[] Ids, int Label), SeedBatch> Data(List<(int[] Ids, int Label)> rows) =>
        new(rows, r => SeedTransformerTrainable.Collate(r, 8));

    static IReadOnlyDictionary<string, double> Accuracy(EvalPredictions p)
    {
        int ok = 0;
        for (int i = 0; i < p.Predicted.Count; i++) if (p.Predicted[i][0] == p.Labels[i][0]) ok++;
        return new Dictionary<string, double> { ["accuracy"] = (double)ok / p.Predicted.Count };
    }

    TrainingArguments Args(string name) => new()
    {
        OutputDir = Path.Combine(_root, name), MaxSteps = 12, LearningRate = 3e-3, PerDeviceTrainBatchSize = 8,
        PerDeviceEvalBatchSize = 16, GradientAccumulationSteps = 2, WeightDecay = 0.01, WarmupSteps = 3,
        SaveStrategy = IntervalStrategy.Steps, SaveSteps = 5, Seed = 11, DisableProgressBar = true,
    };

    /// <summary>The model's parameter values by name, in module order (copies).</summary>
    internal static IReadOnlyList<(string Name, float[] Value)> Weights(SeedTransformerTrainable m) =>
        m.Model.NamedParameters().Select(p => (p.Name, p.Parameter.Value.ToArray())).ToList();

    static SeedTransformerTrainable NewModel(int initSeed = 5) => new(new SeedTransformer(Cfg, new TrainingRandom(initSeed)));

    sealed class StopAtSave(long step) : ITrainerCallback
    {
        public void OnSave(TrainerState state, TrainerControl control, string dir)
        {
            if (state.GlobalStep == step) control.ShouldStop = true;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // mixed precision: bf16 GEMMs, fp32 master weights and optimizer state in the checkpoint
    public void ResumedRunEndsWithBitIdenticalWeights(bool bf16)
    {
        TrainingArguments Args(string name) => this.Args(name) with { Bf16 = bf16 };
        var train = Data(Rows(70, 1));   // 9 micro-batches per epoch with accumulation 2 → 5 updates per epoch
        var full = NewModel();
        var t1 = new Trainer<SeedBatch>(full, Args("full"), train);
        Assert.Equal(5, t1.StepsPerEpoch);
        var r1 = t1.Train();
        Assert.Equal(12, r1.GlobalStep);

        // "Killed" right after the checkpoint at step 5, then resumed in a fresh process-like setting
        // (a model initialised differently: everything must come from the checkpoint).
        var killed = new Trainer<SeedBatch>(NewModel(), Args("resumed"), train, callbacks: [new StopAtSave(5)]);
        var rk = killed.Train();
        Assert.True(rk.Stopped);
        Assert.Equal(5, rk.GlobalStep);
        var resumedModel = NewModel(initSeed: 99);
        var resumed = new Trainer<SeedBatch>(resumedModel, Args("resumed"), train);
        string ckpt = Path.Combine(_root, "resumed", "checkpoint-5");
        Assert.Equal(ckpt, resumed.LatestCheckpoint());
        var r2 = resumed.Train(ckpt);
        Assert.Equal(12, r2.GlobalStep);

        for (int i = 0; i < TrainerTests.Weights(full).Count; i++)
        {
            var a = TrainerTests.Weights(full)[i].Value; var b = TrainerTests.Weights(resumedModel)[i].Value;
            for (int j = 0; j < a.Length; j++)
                Assert.True(BitConverter.SingleToInt32Bits(a[j]) == BitConverter.SingleToInt32Bits(b[j]),
                    $"{TrainerTests.Weights(full)[i].Name}[{j}]: {a[j]:R} vs {b[j]:R}");
        }
        // The parameters moved at all (lr > 0 after warmup): compare against a fresh init.
        Assert.NotEqual(TrainerTests.Weights(NewModel())[0].Value, TrainerTests.Weights(full)[0].Value);
        if (!bf16) return;
        // and bf16 really ran: the same run in fp32 ends elsewhere
        var fp32 = NewModel();
        new Trainer<SeedBatch>(fp32, this.Args("fp32"), train).Train();
        Assert.NotEqual(TrainerTests.Weights(fp32)[0].Value, TrainerTests.Weights(full)[0].Value);
    }

    // Hands out the training batches and cancels the token when micro-batch number `cancelAt` (1-based) is collated.
    sealed class CancelAtMicroBatch(ITrainingData<SeedBatch> inner, int cancelAt, CancellationTokenSource cts) : ITrainingData<SeedBatch>
    {
        int _calls;
        public int Count => inner.Count;
        public SeedBatch Collate(ReadOnlySpan<int> indices)
        {
            if (++_calls == cancelAt) cts.Cancel();
            return inner.Collate(indices);
        }
    }

    // Timing fields differ between any two runs, and train_end's train_loss is the mean over the last Train call only
    // (TrainResult.TrainingLoss); everything else in metrics.jsonl must match exactly.
    static readonly string[] TimingKeys = ["samples_per_s", "eval_samples_per_s", "train_seconds"];

    static List<string> LogWithoutTimings(string outputDir) => File.ReadAllLines(Path.Combine(outputDir, "metrics.jsonl")).Select(l =>
    {
        var o = JsonNode.Parse(l)!.AsObject();
        foreach (var k in TimingKeys) o.Remove(k);
        if (o["kind"]!.GetValue<string>() == "train_end") o.Remove("train_loss");
        return o.ToJsonString();
    }).ToList();

    static void AssertBitIdentical(SeedTransformerTrainable expected, SeedTransformerTrainable actual)
    {
        for (int i = 0; i < TrainerTests.Weights(expected).Count; i++)
        {
            var a = TrainerTests.Weights(expected)[i].Value; var b = TrainerTests.Weights(actual)[i].Value;
            for (int j = 0; j < a.Length; j++)
                Assert.True(BitConverter.SingleToInt32Bits(a[j]) == BitConverter.SingleToInt32Bits(b[j]),
                    $"{TrainerTests.Weights(expected)[i].Name}[{j}]: {a[j]:R} vs {b[j]:R}");
        }
    }

    [Fact]
    public void Cancellation_FinishesTheStepSavesACheckpoint_AndTheResumedRunMatchesAnUninterruptedOneBitExactly()
    {
        var train = Data(Rows(70, 1));   // 9 micro-batches per epoch, accumulation 2 → steps 6, 7 use micro-batches 10-11, 12-13
        var args = Args("x") with
        {
            SaveStrategy = IntervalStrategy.No, LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = 1,
            EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = 3,
        };
        var eval = Data(Rows(20, 2));
        var full = NewModel();
        new Trainer<SeedBatch>(full, args with { OutputDir = Path.Combine(_root, "full") }, train, eval, Accuracy).Train();

        // Cancelled while collating the first micro-batch of step 7: step 7 is finished, then the run stops.
        using var cts = new CancellationTokenSource();
        var stopped = new Trainer<SeedBatch>(NewModel(), args with { OutputDir = Path.Combine(_root, "stopped") },
            new CancelAtMicroBatch(train, 12, cts), eval, Accuracy);
        var e = Assert.Throws<TrainingCancelledException>(() => stopped.Train(cancellationToken: cts.Token));
        Assert.Equal(7, e.Step);
        Assert.Equal(Path.Combine(_root, "stopped", "checkpoint-7"), e.CheckpointDirectory);
        Assert.Contains("checkpoint-7", e.Message);
        var pos = RunCheckpoint.ReadPosition(e.CheckpointDirectory);
        Assert.Equal((7L, 1, 4, 7L), (pos.GlobalStep, pos.EpochIndex, pos.BatchInEpoch, pos.OptimizerSteps));

        var resumedModel = NewModel(initSeed: 99);
        var r = new Trainer<SeedBatch>(resumedModel, args with { OutputDir = Path.Combine(_root, "stopped") }, train, eval, Accuracy)
            .Train(e.CheckpointDirectory);
        Assert.Equal(12, r.GlobalStep);
        AssertBitIdentical(full, resumedModel);
        // Losses, learning rates, gradient norms and evaluations (whose train_loss spans the stop) are the uninterrupted run's.
        Assert.Equal(LogWithoutTimings(Path.Combine(_root, "full")), LogWithoutTimings(Path.Combine(_root, "stopped")));
    }

    [Fact]
    public void ResumeFromAnEarlierCheckpoint_LogsEveryStepOnce_AndTheLogEqualsTheUninterruptedRun()
    {
        var train = Data(Rows(70, 1));
        var args = Args("x") with { LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = 1 };   // checkpoints at 5 and 10
        string fullDir = Path.Combine(_root, "full"), againDir = Path.Combine(_root, "again");
        new Trainer<SeedBatch>(NewModel(), args with { OutputDir = fullDir }, train).Train();
        // Run to the end, then resume the same directory from step 5: steps 6..12 run a second time.
        new Trainer<SeedBatch>(NewModel(), args with { OutputDir = againDir }, train).Train();
        new Trainer<SeedBatch>(NewModel(), args with { OutputDir = againDir }, train).Train(Path.Combine(againDir, "checkpoint-5"));

        var records = File.ReadAllLines(Path.Combine(againDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var logSteps = records.Where(o => o["kind"]!.GetValue<string>() == "log").Select(o => o["step"]!.GetValue<long>()).ToArray();
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), logSteps);
        Assert.Single(records, o => o["kind"]!.GetValue<string>() == "train_end");
        Assert.Equal(LogWithoutTimings(fullDir), LogWithoutTimings(againDir));
    }

    [Fact]
    public void NextRunRemovesAbandonedTempCheckpointsAndLeavesRealOnesUntouched()
    {
        var args = Args("tmp") with { MaxSteps = 5 };
        new Trainer<SeedBatch>(NewModel(), args, Data(Rows(70, 1))).Train();
        string real = Path.Combine(args.OutputDir, "checkpoint-5");
        var before = Directory.GetFiles(real).Order().Select(f => (f, File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f))).ToList();
        string abandoned = Path.Combine(args.OutputDir, ".tmp-checkpoint-3-0123456789abcdef");
        Directory.CreateDirectory(abandoned);
        File.WriteAllText(Path.Combine(abandoned, RunCheckpoint.ModelFile), "half-written");

        new Trainer<SeedBatch>(NewModel(), args with { SaveStrategy = IntervalStrategy.No }, Data(Rows(70, 1))).Train();

        Assert.False(Directory.Exists(abandoned));
        var after = Directory.GetFiles(real).Order().Select(f => (f, File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f))).ToList();
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Item1, after[i].Item1);
            Assert.Equal(before[i].Item2, after[i].Item2);
            Assert.Equal(before[i].Item3, after[i].Item3);
        }
        Assert.Equal([real], RunCheckpoint.List(args.OutputDir));
    }

    [Fact]
    public void CheckpointLayoutAndRotation()
    {
        var args = Args("rotation") with { SaveTotalLimit = 2, MaxSteps = 15 };
        var trainer = new Trainer<SeedBatch>(NewModel(), args, Data(Rows(70, 1)));
        trainer.Train();
        var dirs = RunCheckpoint.List(args.OutputDir).Select(d => Path.GetFileName(d)!).ToArray();
        Assert.Equal(new[] { "checkpoint-10", "checkpoint-15" }, dirs);
        var ck = Path.Combine(args.OutputDir, "checkpoint-15");
        Assert.True(File.Exists(Path.Combine(ck, RunCheckpoint.ModelFile)));
        Assert.True(File.Exists(Path.Combine(ck, RunCheckpoint.OptimizerFile)));
        var pos = RunCheckpoint.ReadPosition(ck);
        // 15 updates = 3 whole epochs of 5 updates: the next batch is epoch 3, batch 0.
        Assert.Equal((15L, 3, 0, 15L), (pos.GlobalStep, pos.EpochIndex, pos.BatchInEpoch, pos.OptimizerSteps));
        Assert.Empty(Directory.GetDirectories(args.OutputDir, ".tmp-*"));
        // metrics.jsonl: logging every 50 steps by default → no "log" rows, one train_end row.
        var lines = File.ReadAllLines(Path.Combine(args.OutputDir, "metrics.jsonl"));
        Assert.Single(lines);
        Assert.Equal("train_end", JsonNode.Parse(lines[0])!["kind"]!.GetValue<string>());
    }

    [Fact]
    public void SameSeedSameLossesDifferentSeedDifferent()
    {
        var losses = new List<double>[3];
        int[] seeds = [11, 11, 12];
        for (int k = 0; k < 3; k++)
        {
            var l = losses[k] = [];
            var args = Args("seed" + k) with { Seed = seeds[k], SaveStrategy = IntervalStrategy.No };
            var trainer = new Trainer<SeedBatch>(NewModel(), args, Data(Rows(70, 1)), callbacks: [new Recorder(l)]);
            trainer.Train();
        }
        Assert.Equal(12, losses[0].Count);
        Assert.Equal(losses[0], losses[1]);
        Assert.NotEqual(losses[0], losses[2]);
    }

    sealed class Recorder(List<double> losses) : ITrainerCallback
    {
        public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log) => losses.Add(log.Loss);
    }

    [Fact]
    public void EvaluationEarlyStoppingAndBestModel()
    {
        var args = Args("eval") with
        {
            MaxSteps = -1, NumTrainEpochs = 30, GradientAccumulationSteps = 1, LearningRate = 1e-2,
            EvaluationStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.Epoch, LoggingStrategy = IntervalStrategy.Epoch,
            LoadBestModelAtEnd = true, MetricForBestModel = "accuracy", SaveTotalLimit = 1,
        };
        var model = NewModel();
        var stopper = new EarlyStoppingCallback(patience: 2);
        var evals = new List<EvaluationLog>();
        var trainer = new Trainer<SeedBatch>(model, args, Data(Rows(70, 1)), Data(Rows(40, 2)), Accuracy, [stopper]);
        trainer.Logged += r => { if (r is EvaluationLog e) evals.Add(e); };
        var result = trainer.Train();
        Assert.True(result.Stopped, "early stopping should end the run before 30 epochs");
        Assert.True(trainer.State.BestMetric > 0.8, $"best accuracy {trainer.State.BestMetric}");
        double[] acc = evals.Select(e => e.Metrics["eval_accuracy"]).ToArray();
        int bestIndex = Array.IndexOf(acc, acc.Max());
        // Stopped exactly `patience` evaluations after the last improvement.
        double best = double.NegativeInfinity; int bad = 0, stopAt = -1;
        for (int i = 0; i < acc.Length && stopAt < 0; i++)
        {
            if (acc[i] > best) { best = acc[i]; bad = 0; } else if (++bad == 2) stopAt = i;
        }
        Assert.Equal(acc.Length - 1, stopAt);
        Assert.Equal($"checkpoint-{(bestIndex + 1) * 9}", trainer.State.BestModelCheckpoint);
        // With SaveTotalLimit 1 the best checkpoint survives next to the newest.
        Assert.Contains(Path.Combine(args.OutputDir, trainer.State.BestModelCheckpoint!), RunCheckpoint.List(args.OutputDir));
        // The model now holds the best weights: re-evaluating gives the best accuracy.
        var again = trainer.Evaluate();
        Assert.Equal(acc.Max(), again["eval_accuracy"]);
        Assert.All(evals, e => Assert.True(e.TrainLoss is not null && e.SamplesPerSecond > 0 && e.Metrics.ContainsKey("eval_loss")));
    }

    [Fact]
    public void EarlyStoppingCounterSurvivesAResume()
    {
        var args = Args("es-resume") with
        {
            MaxSteps = -1, NumTrainEpochs = 30, GradientAccumulationSteps = 1, LearningRate = 1e-2,
            EvaluationStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.Epoch, LoggingStrategy = IntervalStrategy.Epoch,
            MetricForBestModel = "accuracy", SaveTotalLimit = 0,
        };
        var straight = new Trainer<SeedBatch>(NewModel(), args, Data(Rows(70, 1)), Data(Rows(40, 2)), Accuracy, [new EarlyStoppingCallback(patience: 2)]);
        var full = straight.Train();
        Assert.True(full.Stopped);

        // The checkpoint written at the first of the final two evaluations without improvement carries counter 1.
        var mid = RunCheckpoint.List(args.OutputDir).Where(d => RunCheckpoint.ReadPosition(d).EarlyStoppingPatienceCounter == 1)
            .MaxBy(d => RunCheckpoint.ReadPosition(d).GlobalStep)!;
        Assert.NotNull(RunCheckpoint.ReadPosition(mid).EarlyStoppingBest);

        var stopper = new EarlyStoppingCallback(patience: 2);
        var resumed = new Trainer<SeedBatch>(NewModel(), args with { OutputDir = args.OutputDir }, Data(Rows(70, 1)), Data(Rows(40, 2)), Accuracy, [stopper]);
        var again = resumed.Train(mid);
        // Resumed at counter 1, the next non-improving evaluation stops it: the same final step as the uninterrupted run.
        Assert.True(again.Stopped);
        Assert.Equal(straight.State.GlobalStep, resumed.State.GlobalStep);
        Assert.Equal(2, stopper.EvaluationsWithoutImprovement);
    }

    /// <summary>Stops at <paramref name="step"/> and asks for an evaluation and a checkpoint there, as a time budget does.</summary>
    sealed class StopAndKeep(long step) : ITrainerCallback
    {
        public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log)
        {
            if (state.GlobalStep == step) { control.ShouldStop = true; control.ShouldEvaluate = true; control.ShouldSave = true; }
        }
    }

    [Fact]
    public void ACallbackAskingForEvaluationAndSave_GetsBothOffTheInterval_AndTheStepCanBecomeTheBestModel()
    {
        var args = Args("askeval") with
        {
            MaxSteps = 40, GradientAccumulationSteps = 1, LearningRate = 1e-2, EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = 10,
            SaveSteps = 10, LoadBestModelAtEnd = true, MetricForBestModel = "accuracy",
        };
        var trainer = new Trainer<SeedBatch>(NewModel(), args, Data(Rows(70, 1)), Data(Rows(40, 2)), Accuracy, [new StopAndKeep(17)]);
        var evals = new List<EvaluationLog>();
        trainer.Logged += r => { if (r is EvaluationLog e) evals.Add(e); };
        var result = trainer.Train();
        Assert.True(result.Stopped);
        Assert.Equal(17, trainer.State.GlobalStep);
        Assert.Equal([10L, 17L], evals.Select(e => e.Step));
        Assert.Contains(Path.Combine(args.OutputDir, "checkpoint-17"), RunCheckpoint.List(args.OutputDir));
        // The step-17 evaluation competes for the best model like any other.
        var best = evals.MaxBy(e => e.Metrics["eval_accuracy"])!;
        Assert.Equal($"checkpoint-{best.Step}", trainer.State.BestModelCheckpoint);
    }

    [Fact]
    public void AProcessorTimeBudget_StopsOnceTheProcessHasUsedIt_AndKeepsTheLastStep()
    {
        var args = Args("cpubudget") with { MaxSteps = 1000, GradientAccumulationSteps = 1, EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = 500, SaveSteps = 500 };
        // A zero budget is spent after the first update: the run stops there, evaluated and saved.
        var trainer = new Trainer<SeedBatch>(NewModel(), args, Data(Rows(70, 1)), Data(Rows(40, 2)), Accuracy, [new TimeBudgetCallback(TimeSpan.Zero, processorTime: true, saveOnStop: true, evaluateOnStop: true)]);
        var evals = new List<EvaluationLog>();
        trainer.Logged += r => { if (r is EvaluationLog e) evals.Add(e); };
        Assert.True(trainer.Train().Stopped);
        Assert.Equal(1, trainer.State.GlobalStep);
        Assert.Equal([1L], evals.Select(e => e.Step));
        Assert.Contains(Path.Combine(args.OutputDir, "checkpoint-1"), RunCheckpoint.List(args.OutputDir));
    }

    [Fact]
    public void InvalidArgumentsAreRejectedWithTheSettingNamed()
    {
        var e = Assert.Throws<TrainingConfigurationException>(() =>
            new Trainer<SeedBatch>(NewModel(), Args("bad") with { LoadBestModelAtEnd = true }, Data(Rows(10, 1))));
        Assert.Contains("LoadBestModelAtEnd", e.Message);
        var e2 = Assert.Throws<CheckpointFormatException>(() =>
            new Trainer<SeedBatch>(NewModel(), Args("bad2"), Data(Rows(10, 1))).Train(Path.Combine(_root, "nowhere")));
        Assert.Contains("trainer_state.json", e2.Message);
    }

    [Fact]
    public void LinearWarmupScheduleMatchesHuggingFace()
    {
        var s = TrainingOptimizer.Schedule(new Sharpformer.Optim.Sgd([new Sharpformer.Nn.Parameter(Sharpformer.Tensors.Tensor.Zeros(1))], 0.1f), SchedulerType.Linear, 2, 5);
        Assert.Equal([0.0, 0.5, 1.0, 2.0 / 3, 1.0 / 3], Enumerable.Range(0, 5).Select(i => s.Multiplier(i)).ToArray());
    }

    [Fact]
    public void EpochOrderIsASeededPermutation()
    {
        var a = Trainer<SeedBatch>.EpochOrder(100, 3, 0);
        Assert.Equal(Enumerable.Range(0, 100), a.Order());
        Assert.Equal(a, Trainer<SeedBatch>.EpochOrder(100, 3, 0));
        Assert.NotEqual(a, Trainer<SeedBatch>.EpochOrder(100, 3, 1));
    }
}
