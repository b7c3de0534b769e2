using System.Diagnostics;
using Sharpformer.Nn;
using Sharpformer.Optim;
using Sharpformer.Tensors;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Training;

/// <summary>Outcome of <see cref="Trainer{TBatch}.Train"/>.</summary>
/// <param name="GlobalStep">Updates done in total (including those before a resume).</param>
/// <param name="TrainingLoss">Mean loss over the updates this call ran.</param>
/// <param name="Stopped">True when a callback stopped the run early.</param>
/// <param name="SamplesPerSecond">Training throughput of this call (examples through forward + backward per second).</param>
public sealed record TrainResult(long GlobalStep, double TrainingLoss, bool Stopped, double SamplesPerSecond);

/// <summary>
/// A compact training loop in the spirit of Hugging Face's Trainer: seeded shuffling, gradient
/// accumulation, clipping, warmup schedules, periodic evaluation / logging / checkpointing, best-model
/// tracking, callbacks, and bit-exact resume.
/// </summary>
/// <remarks>
/// Reproducibility: the order of epoch e is a Fisher–Yates shuffle drawn from
/// <c>TrainingRandom(seed·1000003 + e)</c>, and dropout draws from one <see cref="TrainingRandom"/>
/// seeded from the seed whose state is checkpointed — so a run resumed from a checkpoint replays
/// exactly the batches and masks of the uninterrupted run (same thread count ⇒ same float sums).
/// <para>
/// Data parallelism (<see cref="IProcessGroup"/>, e.g. N processes under <c>mpirun</c>): a micro-batch is N·B examples of the
/// same epoch order, rank r taking the r-th slice of B; each rank's loss is scaled by its share of what the micro-batch's mean is
/// over (<see cref="ITrainableModel{TBatch}.LossWeight"/>: examples, or labelled tokens; the counts are summed before backward);
/// the gradients are summed over the ranks in buckets started during backward (<see cref="GradientBuckets"/>), so every rank
/// applies the same update to the same weights (rank 0's are broadcast at the start) and keeps the same optimizer state.
/// Dropout masks are keyed by the example's place in the global micro-batch (<see cref="TrainingRandom.ExampleSlice"/>) and
/// drawn from the one checkpointed generator, so N ranks × batch B follow one process with batch N·B up to float summation
/// order, with dropout on, when the per-example shapes do not depend on the slice. Rank 0 alone writes checkpoints,
/// metrics.jsonl, the progress line and the model; evaluation is sharded over the ranks and combined exactly (the metrics
/// of one process), so decisions that depend on metrics (best model, early stopping) agree. A checkpoint resumes on any number
/// of ranks: the data position is carried over in examples (a global batch left half done is redone), and an epoch-planned run
/// recounts its steps for the new global batch (the learning-rate schedule keeps its own update count).
/// </para>
/// </remarks>
public sealed class Trainer<TBatch>
{
    readonly ITrainableModel<TBatch> _model;
    readonly ITrainingData<TBatch> _train;
    readonly ITrainingData<TBatch>? _eval;
    readonly Func<EvalPredictions, IReadOnlyDictionary<string, double>>? _computeMetrics;
    readonly List<ITrainerCallback> _callbacks;
    readonly IReadOnlyList<(string Name, Parameter Parameter)> _named;
    readonly IReadOnlyList<Parameter> _parameters;
    readonly Optimizer _optimizer;
    readonly TensorPool _stepBuffers = new();
    readonly IProcessGroup _group;
    TrainingRandom _dropoutRng;
    MetricsLog? _log;

    public Trainer(ITrainableModel<TBatch> model, TrainingArguments args, ITrainingData<TBatch> train,
        ITrainingData<TBatch>? eval = null,
        Func<EvalPredictions, IReadOnlyDictionary<string, double>>? computeMetrics = null,
        IEnumerable<ITrainerCallback>? callbacks = null, IProcessGroup? processGroup = null)
    {
        args.Validate();
        // Launched by mpirun: the MPI world; otherwise this process alone. So every verb built on the trainer is data-parallel
        // under mpirun without asking for it.
        _group = processGroup ?? ProcessGroups.FromEnvironment();
        if (train.Count == 0) throw new TrainingConfigurationException("The training set is empty.");
        if (args.EvaluationStrategy != IntervalStrategy.No && eval == null)
            throw new TrainingConfigurationException($"EvaluationStrategy is {args.EvaluationStrategy} but no evaluation set was given.");
        _model = model; Args = args; _train = train; _eval = eval; _computeMetrics = computeMetrics;
        _callbacks = callbacks?.ToList() ?? [];
        foreach (var es in _callbacks.OfType<EarlyStoppingCallback>())
        {
            if (args.EvaluationStrategy == IntervalStrategy.No) throw new TrainingConfigurationException("Early stopping needs an evaluation strategy.");
            es.MetricKey = args.BestMetricKey; es.GreaterIsBetter = args.BestIsGreater;
        }
        _named = TrainingOptimizer.TrainableParameters(model.Module);
        if (_named.Count == 0) throw new TrainingConfigurationException($"{model.Module.GetType().Name} has no trainable parameters (everything is frozen).");
        _parameters = _named.Select(p => p.Parameter).ToList();
        _optimizer = TrainingOptimizer.Create(model.Module, args);
        _dropoutRng = new TrainingRandom(DropoutSeed(args.Seed));
        int batches = MicroBatchesPerEpoch;
        StepsPerEpoch = Math.Max(1, batches / args.GradientAccumulationSteps) + (batches % args.GradientAccumulationSteps != 0 && batches > args.GradientAccumulationSteps ? 1 : 0);
        MaxSteps = args.MaxSteps > 0 ? args.MaxSteps : (long)Math.Ceiling(args.NumTrainEpochs * StepsPerEpoch);
        int warmup = args.WarmupSteps > 0 ? args.WarmupSteps : (int)Math.Ceiling(args.WarmupRatio * MaxSteps);
        Scheduler = TrainingOptimizer.Schedule(_optimizer, args.LrSchedulerType, warmup, MaxSteps);
        State.MaxSteps = MaxSteps;
    }

    static long DropoutSeed(int seed) => seed * 7919L + 0x5EED;

    /// <summary>
    /// Points the dropout generator at this rank's slice of the micro-batch. Every rank (and a single process with the whole
    /// micro-batch) draws the same mask seeds from the same checkpointed generator; the masks number their entries by the
    /// example's place in the global micro-batch (<see cref="TrainingRandom.ExampleSlice"/>), so the mask of an example does
    /// not depend on how the micro-batch is split.
    /// </summary>
    TrainingRandom DropoutFor(int first, int count)
    {
        _dropoutRng.ExampleSlice = (first, count);
        return _dropoutRng;
    }

    /// <summary>
    /// After a micro-batch that left a rank without examples (it drew no mask seeds), every rank takes rank 0's generator
    /// state (rank 0 always has examples), so the streams stay identical on all ranks and in the checkpoint.
    /// </summary>
    void SyncDropoutRng()
    {
        Span<ulong> state = stackalloc ulong[4];
        _dropoutRng.GetState().CopyTo(state);
        _group.Broadcast(System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, float>(state), root: 0);
        _dropoutRng.SetState(state.ToArray());
    }

    TrainingDivergedException Diverged(double loss, int epoch, int mb) =>
        new($"The training loss became {loss} at step {State.GlobalStep + 1} (epoch {epoch}, batch {mb}); lower the learning rate or check the data.");

    public TrainingArguments Args { get; }
    public TrainerState State { get; } = new();
    /// <summary>The update rule (the nn layer's <see cref="Optim.AdamW"/> or Keras-flavoured <see cref="Adam"/>) over the model's trainable parameters.</summary>
    /// <remarks>The trainer zeroes the gradients in place after each update, so their buffers are reused step after step.</remarks>
    public Optimizer Optimizer => _optimizer;
    /// <summary>The learning-rate schedule; its step is the number of updates done.</summary>
    public LrScheduler Scheduler { get; }
    /// <summary>Optimizer updates per epoch (a trailing incomplete accumulation counts as one).</summary>
    public int StepsPerEpoch { get; }
    /// <summary>Total planned updates.</summary>
    public long MaxSteps { get; }
    /// <summary>The processes training together (one, unless launched data-parallel).</summary>
    public IProcessGroup ProcessGroup => _group;
    /// <summary>True on the process that writes checkpoints, logs and the model (rank 0; always true in a single process).</summary>
    public bool IsWorldProcessZero => _group.Rank == 0;
    /// <summary>Examples per micro-batch over all ranks: per-device batch × world size.</summary>
    int GlobalBatch => Args.PerDeviceTrainBatchSize * _group.Size;
    int MicroBatchesPerEpoch => (_train.Count + GlobalBatch - 1) / GlobalBatch;

    /// <summary>Raised with every record appended to metrics.jsonl: a <see cref="TrainingProgressLog"/>, <see cref="EvaluationLog"/> or <see cref="TrainEndLog"/>.</summary>
    public event Action<TrainerLog>? Logged;

    /// <summary>The training order of epoch <paramref name="epoch"/>: a seeded permutation of the example indices.</summary>
    public static int[] EpochOrder(int count, int seed, int epoch)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        new TrainingRandom(seed * 1000003L + epoch).FisherYates(order.AsSpan());
        return order;
    }

    /// <summary>
    /// Trains to <see cref="MaxSteps"/> (or until a callback stops it), optionally continuing from a
    /// checkpoint directory written by an earlier run with the same arguments.
    /// </summary>
    /// <remarks>
    /// Cancelling <paramref name="cancellationToken"/> stops at the next safe point: the optimizer step in progress
    /// (with its logging, evaluation and saving) is finished, a run checkpoint of that step is written, and
    /// <see cref="TrainingCancelledException"/> says where — resuming from it continues bit-exactly.
    /// Leftover <c>.tmp-checkpoint-*</c> directories of saves a killed process never finished are removed first, and a
    /// resumed run drops the <c>metrics.jsonl</c> records written after its checkpoint, so no step is logged twice.
    /// </remarks>
    public TrainResult Train(string? resumeFromCheckpoint = null, CancellationToken cancellationToken = default)
    {
        var args = Args;
        using var threads = Tensors.ExecutionScope.Enter(args.Execution.WithBf16(args.Bf16));
        bool main = IsWorldProcessZero;
        Directory.CreateDirectory(args.OutputDir);
        if (main) RunCheckpoint.RemoveAbandonedSaves(args.OutputDir);
        _log = main ? new MetricsLog(Path.Combine(args.OutputDir, "metrics.jsonl")) : null;
        var control = new TrainerControl();
        int epoch = 0, batchStart = 0;
        // Interval accumulators (since the last log / the last evaluation); checkpointed so a resumed run's records match.
        var acc = new LossAccumulators();
        if (resumeFromCheckpoint != null)
        {
            (epoch, batchStart, acc) = Resume(resumeFromCheckpoint);
            _log?.DropAfter(State.GlobalStep);
        }
        // Every rank starts from rank 0's weights, as DDP does: replicas stay identical even if they were initialised apart.
        if (_group.Size > 1) foreach (var p in _parameters) _group.Broadcast(p.Value.AsSpan(), root: 0);
        long firstStep = State.GlobalStep, savedStep = -1;
        foreach (var c in _callbacks) c.OnTrainBegin(State, control);

        int batchSize = args.PerDeviceTrainBatchSize, accum = args.GradientAccumulationSteps, microBatches = MicroBatchesPerEpoch;
        var clock = Stopwatch.StartNew();
        long samplesTotal = 0;
        double lossTotal = 0; long updatesThisCall = 0;
        long logSamples = 0, evalSamples = 0; double logStart = 0, evalStart = 0;
        _model.Training = true;
        TrainingOptimizer.ZeroGradients(_parameters);
        using var progress = new ProgressLine(args.DisableProgressBar || !main);
        using var buckets = _group.Size > 1 ? new GradientBuckets(_parameters, _group) : null;
        bool stopped = false, cancelAgreed = false;

        while (State.GlobalStep < MaxSteps && !control.ShouldStop)
        {
            var order = EpochOrder(_train.Count, args.Seed, epoch);
            double stepLoss = 0; int microInStep = 0, stepSamples = 0;
            for (int mb = batchStart; mb < microBatches && State.GlobalStep < MaxSteps; mb++)
            {
                if (microInStep == 0 && (_group.Size == 1 ? cancellationToken.IsCancellationRequested : cancelAgreed))
                {
                    progress.Clear();
                    string dir = savedStep == State.GlobalStep
                        ? Path.Combine(args.OutputDir, $"checkpoint-{State.GlobalStep}")
                        : SaveCheckpoint(epoch, mb, evaluatedNow: false, acc);
                    throw new TrainingCancelledException(State.GlobalStep, dir, cancellationToken);
                }
                // This rank's slice of the micro-batch (all of it in a single process); the epoch's last one may leave a rank none.
                int start = mb * GlobalBatch;
                int mine = start + _group.Rank * batchSize, len = Math.Clamp(_train.Count - mine, 0, batchSize);
                // The last, incomplete accumulation of an epoch is averaged over its own micro-batches.
                int groupStart = mb / accum * accum, groupSize = Math.Min(accum, microBatches - groupStart);
                bool lastOfGroup = microInStep + 1 == groupSize;
                if (lastOfGroup) buckets?.Arm();
                float loss = 0;
                var batch = len > 0 ? _train.Collate(order.AsSpan(mine, len), epoch) : default;
                // The share of the micro-batch's mean loss this slice carries: all of it in a single process; with several
                // ranks the slice's count of what the mean is over (examples, or labelled tokens for a per-token mean) over
                // the micro-batch's, summed over the ranks before backward, so the ranks' gradients add up to the gradient of
                // the whole micro-batch's mean loss.
                double share = 1;
                if (_group.Size > 1)
                {
                    Span<double> weight = [len > 0 ? _model.LossWeight(batch!) : 0];
                    double local = weight[0];
                    _group.AllReduceSum(weight);
                    share = weight[0] > 0 ? local / weight[0] : 0;
                }
                if (len > 0)
                {
                    float scale = (float)(share / groupSize);
                    var dropout = DropoutFor(mine - start, len);
                    // The step's activations and gradient buffers return to the pool when it ends and serve the next step
                    // (see TensorScope: nothing the step created is used after it; parameter gradients are kept).
                    using (_stepBuffers.Scope()) loss = _model.TrainStep(batch!, dropout, scale);
                    stepSamples += _model.BatchSize(batch!);   // examples, not data items (an item may be a whole batch); summed over ranks below
                }
                if (lastOfGroup) buckets?.Finish();
                if (_group.Size > 1 && _train.Count - (start + (_group.Size - 1) * batchSize) <= 0) SyncDropoutRng();
                if (!float.IsFinite(loss) && _group.Size == 1) throw Diverged(loss, epoch, mb);
                stepLoss += loss * share; microInStep++;
                if (microInStep < groupSize) continue;
                if (_group.Size > 1)
                {
                    // A non-finite loss on any rank makes the sum non-finite on all, so they stop together.
                    Span<double> sum = [stepLoss, stepSamples];
                    _group.AllReduceSum(sum);
                    stepLoss = sum[0]; stepSamples = (int)sum[1];
                    if (!double.IsFinite(stepLoss)) throw Diverged(stepLoss, epoch, mb);
                }

                double gradNorm = args.MaxGradNorm > 0 ? GradClip.ClipGradNorm(_parameters, args.MaxGradNorm) : GradClip.GlobalNorm(_parameters);
                double lr = _optimizer.Groups[0].LearningRateExact;
                _optimizer.Step();
                Scheduler.Step();
                TrainingOptimizer.ZeroGradients(_parameters);
                State.GlobalStep++;
                State.Epoch = epoch + (double)(mb + 1) / microBatches;
                double meanLoss = stepLoss / microInStep;
                lossTotal += meanLoss; updatesThisCall++; samplesTotal += stepSamples;
                acc.LogLoss += meanLoss; acc.LogUpdates++; logSamples += stepSamples;
                acc.EvalLoss += meanLoss; acc.EvalUpdates++; evalSamples += stepSamples;
                var stepLog = new StepLog(State.GlobalStep, meanLoss, lr, gradNorm, stepSamples);
                stepLoss = 0; microInStep = 0; stepSamples = 0;
                double now = clock.Elapsed.TotalSeconds;
                progress.Update(State.GlobalStep, MaxSteps, meanLoss, lr, samplesTotal / Math.Max(now, 1e-9), firstStep);
                foreach (var c in _callbacks) c.OnStepEnd(State, control, stepLog);
                if (_group.Size > 1)
                {
                    // Callbacks on a per-rank clock (timed checkpoints, a time budget) may ask one rank only to save, evaluate or
                    // stop: every rank acts if any asked, so all of them take part in the same collectives.
                    Span<double> asked = [control.ShouldSave ? 1 : 0, control.ShouldEvaluate ? 1 : 0, control.ShouldStop ? 1 : 0];
                    _group.AllReduceSum(asked);
                    control.ShouldSave = asked[0] > 0; control.ShouldEvaluate = asked[1] > 0; control.ShouldStop = asked[2] > 0;
                }

                bool endOfEpoch = mb == microBatches - 1;
                bool last = State.GlobalStep >= MaxSteps;
                if (args.LoggingStrategy == IntervalStrategy.Steps && State.GlobalStep % args.LoggingSteps == 0
                    || args.LoggingStrategy == IntervalStrategy.Epoch && endOfEpoch)
                {
                    progress.Clear();
                    Emit(new TrainingProgressLog(State.GlobalStep, Math.Round(State.Epoch, 4), acc.LogLoss / acc.LogUpdates, lr, gradNorm,
                        logSamples / Math.Max(now - logStart, 1e-9)));
                    acc.LogLoss = 0; acc.LogUpdates = 0; logSamples = 0; logStart = now;
                }
                bool evalNow = args.EvaluationStrategy == IntervalStrategy.Steps && State.GlobalStep % args.EvalSteps == 0
                    || args.EvaluationStrategy == IntervalStrategy.Epoch && endOfEpoch
                    || control.ShouldEvaluate && args.EvaluationStrategy != IntervalStrategy.No;
                control.ShouldEvaluate = false;
                if (evalNow)
                {
                    double trainSeconds = now - evalStart;
                    // Not cancellable: the evaluation belongs to the step just taken, and a checkpoint after a skipped
                    // evaluation would make the resumed run's log differ from an uninterrupted one.
                    var metrics = EvaluateCore(CancellationToken.None);
                    progress.Clear();
                    Emit(new EvaluationLog(State.GlobalStep, Math.Round(State.Epoch, 4), acc.EvalUpdates > 0 ? acc.EvalLoss / acc.EvalUpdates : null,
                        metrics, evalSamples / Math.Max(trainSeconds, 1e-9)));
                    acc.EvalLoss = 0; acc.EvalUpdates = 0; evalSamples = 0;
                    TrackBest(metrics);
                    foreach (var c in _callbacks) c.OnEvaluate(State, control, metrics);
                    evalStart = clock.Elapsed.TotalSeconds;   // evaluation time is not training time
                    logStart = evalStart;
                }
                bool saveNow = args.SaveStrategy == IntervalStrategy.Steps && State.GlobalStep % args.SaveSteps == 0
                    || args.SaveStrategy == IntervalStrategy.Epoch && endOfEpoch || control.ShouldSave;
                control.ShouldSave = false;
                if (saveNow)
                {
                    int nextEpoch = endOfEpoch ? epoch + 1 : epoch, nextBatch = endOfEpoch ? 0 : mb + 1;
                    string dir = SaveCheckpoint(nextEpoch, nextBatch, evalNow, acc);
                    savedStep = State.GlobalStep;
                    foreach (var c in _callbacks) c.OnSave(State, control, dir);
                }
                if (_group.Size > 1)
                {
                    // Stopping is collective: a callback on a per-rank clock (a time budget) or a token cancelled on one rank
                    // stops every rank after the same step, instead of leaving the others waiting in the next all-reduce.
                    Span<double> flags = [control.ShouldStop ? 1 : 0, cancellationToken.IsCancellationRequested ? 1 : 0];
                    _group.AllReduceSum(flags);
                    control.ShouldStop = flags[0] > 0;
                    cancelAgreed = flags[1] > 0;
                }
                if (control.ShouldStop) { stopped = !last; break; }
            }
            batchStart = 0;
            epoch++;
        }
        double seconds = clock.Elapsed.TotalSeconds;
        if (args.LoadBestModelAtEnd && State.BestModelCheckpoint != null)
            RunCheckpoint.LoadParameters(Path.Combine(args.OutputDir, State.BestModelCheckpoint), _named);
        foreach (var c in _callbacks) c.OnTrainEnd(State, control);
        var result = new TrainResult(State.GlobalStep, updatesThisCall > 0 ? lossTotal / updatesThisCall : double.NaN, stopped, samplesTotal / Math.Max(seconds, 1e-9));
        Emit(new TrainEndLog(State.GlobalStep, result.TrainingLoss, result.SamplesPerSecond, seconds, State.BestMetric, State.BestModelCheckpoint));
        return result;
    }

    /// <summary>Evaluates on the evaluation set: "eval_loss" plus the metric function's values with an "eval_" prefix.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(CancellationToken cancellationToken = default)
    {
        if (_eval == null) throw new TrainingConfigurationException("No evaluation set was given to the trainer.");
        return EvaluateCore(cancellationToken);
    }

    /// <summary>Runs <paramref name="data"/> through the model in eval mode and computes the metrics over it.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(ITrainingData<TBatch> data, CancellationToken cancellationToken = default)
        => EvaluateOn(data, cancellationToken);

    IReadOnlyDictionary<string, double> EvaluateCore(CancellationToken ct) => EvaluateOn(_eval!, ct);

    IReadOnlyDictionary<string, double> EvaluateOn(ITrainingData<TBatch> data, CancellationToken ct)
    {
        using var threads = Tensors.ExecutionScope.Enter(Args.Execution.WithBf16(Args.Bf16));
        bool wasTraining = _model.Training;
        _model.Training = false;
        try
        {
            var clock = Stopwatch.StartNew();
            // With several ranks each evaluates every Size-th batch; the per-batch sums and the predictions are then combined
            // in batch order (adding the other ranks' zeros is exact), so the metrics are those of one process.
            int bs = Args.PerDeviceEvalBatchSize, batches = (data.Count + bs - 1) / bs, ranks = _group.Size;
            var sums = new double[2 * batches];   // per batch: loss · weight, weight
            var perBatch = new EvalBatch?[batches];
            var idx = new int[Math.Min(bs, data.Count)];
            for (int b = _group.Rank; b < batches; b += ranks)
            {
                ct.ThrowIfCancellationRequested();
                int start = b * bs, len = Math.Min(bs, data.Count - start);
                for (int i = 0; i < len; i++) idx[i] = start + i;
                var r = _model.Evaluate(data.Collate(idx.AsSpan(0, len)));
                sums[2 * b] = r.Loss * r.LossWeight; sums[2 * b + 1] = r.LossWeight;
                perBatch[b] = r;
            }
            if (ranks > 1) _group.AllReduceSum(sums);
            double lossSum = 0; long weight = 0;
            for (int b = 0; b < batches; b++) { lossSum += sums[2 * b]; weight += (long)sums[2 * b + 1]; }
            var predicted = new List<int[]>(); var labels = new List<int[]>();
            if (_computeMetrics != null)
            {
                if (ranks > 1) perBatch = GatherPredictions(perBatch);
                foreach (var r in perBatch) { predicted.AddRange(r!.Predicted); labels.AddRange(r.Labels); }
            }
            var metrics = new Dictionary<string, double> { ["eval_loss"] = weight > 0 ? lossSum / weight : double.NaN };
            if (_computeMetrics != null)
                foreach (var (k, v) in _computeMetrics(new EvalPredictions(predicted, labels)))
                    metrics[k.StartsWith("eval_", StringComparison.Ordinal) ? k : "eval_" + k] = v;
            metrics["eval_samples_per_s"] = data.Count / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            State.LastMetrics = metrics;
            return metrics;
        }
        finally { _model.Training = wasTraining; }
    }

    // Every rank gets every batch's predictions and labels, in batch order: each batch flattened to
    // [examples, then per example: #predicted, predicted…, #labels, labels…] and gathered by index.
    EvalBatch?[] GatherPredictions(EvalBatch?[] mine)
    {
        var flat = new int[]?[mine.Length];
        for (int b = 0; b < mine.Length; b++)
        {
            if (mine[b] is not { } r) continue;
            var f = new List<int> { r.Predicted.Count };
            for (int i = 0; i < r.Predicted.Count; i++) { f.Add(r.Predicted[i].Length); f.AddRange(r.Predicted[i]); f.Add(r.Labels[i].Length); f.AddRange(r.Labels[i]); }
            flat[b] = [.. f];
        }
        var all = _group.AllGather(flat);
        var result = new EvalBatch?[mine.Length];
        for (int b = 0; b < all.Length; b++)
        {
            var f = all[b]; int at = 0, n = f[at++];
            var p = new int[n][]; var l = new int[n][];
            for (int i = 0; i < n; i++)
            {
                p[i] = f[(at + 1)..(at + 1 + f[at])]; at += 1 + f[at];
                l[i] = f[(at + 1)..(at + 1 + f[at])]; at += 1 + f[at];
            }
            result[b] = new EvalBatch(0, 0, p, l);
        }
        return result;
    }

    double? _pendingMetric;

    void TrackBest(IReadOnlyDictionary<string, double> metrics)
    {
        _pendingMetric = null;
        if (!metrics.TryGetValue(Args.BestMetricKey, out var m))
        {
            if (Args.LoadBestModelAtEnd)
                throw new TrainingConfigurationException($"MetricForBestModel '{Args.BestMetricKey}' is not among the evaluation metrics ({string.Join(", ", metrics.Keys)}).");
            return;
        }
        bool better = State.BestMetric is null || (Args.BestIsGreater ? m > State.BestMetric : m < State.BestMetric);
        if (better) { State.BestMetric = m; _pendingMetric = m; }
    }

    string SaveCheckpoint(int nextEpoch, int nextBatch, bool evaluatedNow, LossAccumulators acc)
    {
        string name = $"checkpoint-{State.GlobalStep}";
        if (evaluatedNow && _pendingMetric != null) State.BestModelCheckpoint = name;
        var position = new RunPosition(State.GlobalStep, nextEpoch, nextBatch, _optimizer.StepCount, _dropoutRng.GetState(), Args.Seed,
            State.BestMetric, State.BestModelCheckpoint, MaxSteps, State.EarlyStoppingBest, State.EarlyStoppingPatienceCounter,
            acc.LogLoss, acc.LogUpdates, acc.EvalLoss, acc.EvalUpdates, _group.Size, Args.PerDeviceTrainBatchSize);
        string dir = Path.Combine(Args.OutputDir, name);
        if (IsWorldProcessZero) dir = SaveOnRankZero(position);
        // The other ranks continue (and may read the checkpoint, e.g. to load the best model) only once it is complete.
        _group.Barrier();
        return dir;
    }

    string SaveOnRankZero(RunPosition position)
    {
        string dir = RunCheckpoint.Save(Args.OutputDir, _named, _optimizer, Scheduler, position);
        if (Args.SaveTotalLimit > 0)
        {
            var all = RunCheckpoint.List(Args.OutputDir).ToList();
            int excess = all.Count - Args.SaveTotalLimit;
            foreach (var old in all)
            {
                if (excess <= 0) break;
                if (Path.GetFileName(old) == State.BestModelCheckpoint || old == dir) continue;
                Directory.Delete(old, recursive: true);
                excess--;
            }
        }
        return dir;
    }

    (int Epoch, int Batch, LossAccumulators Acc) Resume(string checkpointDir)
    {
        var pos = RunCheckpoint.ReadPosition(checkpointDir);
        if (pos.Seed != Args.Seed) throw new CheckpointFormatException($"{checkpointDir} was written by a run with seed {pos.Seed}; this run uses seed {Args.Seed}. Resume with the same arguments.");
        if (pos.WorldSize == _group.Size && pos.MaxSteps != MaxSteps) throw new CheckpointFormatException($"{checkpointDir} was written by a run planned for {pos.MaxSteps} steps; this run plans {MaxSteps}. Resume with the same epochs/max steps and data.");
        int batchInEpoch = pos.BatchInEpoch;
        long globalStep = pos.GlobalStep;
        if (pos.WorldSize != _group.Size)
        {
            // Another number of ranks: the same examples of the epoch are done; a global batch left half done is redone.
            int writtenBatch = pos.PerDeviceBatchSize > 0 ? pos.PerDeviceBatchSize : Args.PerDeviceTrainBatchSize;
            long examplesDone = (long)pos.BatchInEpoch * writtenBatch * pos.WorldSize;
            batchInEpoch = (int)(examplesDone / GlobalBatch);
            if (Args.MaxSteps <= 0) globalStep = (long)pos.EpochIndex * StepsPerEpoch + batchInEpoch / Args.GradientAccumulationSteps;
        }
        RunCheckpoint.LoadParameters(checkpointDir, _named);
        RunCheckpoint.LoadOptimizer(checkpointDir, _optimizer, Scheduler, pos.OptimizerSteps);
        _dropoutRng = TrainingRandom.FromState(pos.DropoutRngState);
        State.GlobalStep = globalStep;
        State.BestMetric = pos.BestMetric;
        State.BestModelCheckpoint = pos.BestModelCheckpoint;
        State.EarlyStoppingBest = pos.EarlyStoppingBest;
        State.EarlyStoppingPatienceCounter = pos.EarlyStoppingPatienceCounter;
        State.Epoch = pos.EpochIndex + (double)batchInEpoch / MicroBatchesPerEpoch;
        return (pos.EpochIndex, batchInEpoch, new LossAccumulators
        {
            LogLoss = pos.LogLossSum, LogUpdates = pos.LogUpdates, EvalLoss = pos.EvalLossSum, EvalUpdates = pos.EvalUpdates,
        });
    }

    /// <summary>Writes the model directory (<see cref="ITrainableModel{TBatch}.SaveModel"/>) on rank 0 only; every rank returns once it is written.</summary>
    public void SaveModel(string directory)
    {
        if (IsWorldProcessZero) _model.SaveModel(directory);
        _group.Barrier();
    }

    /// <summary>The newest checkpoint under the output directory, or null.</summary>
    public string? LatestCheckpoint() => RunCheckpoint.List(Args.OutputDir).LastOrDefault();

    void Emit(TrainerLog record)
    {
        _log?.Append(record);
        Logged?.Invoke(record);
    }
}

/// <summary>Sums of step losses since the last "log" and the last "eval" record (their "train_loss" is the mean).</summary>
sealed class LossAccumulators
{
    public double LogLoss, EvalLoss;
    public int LogUpdates, EvalUpdates;
}

/// <summary>
/// Training was cancelled through its token and stopped at a safe point: after optimizer step <see cref="Step"/>,
/// whose run checkpoint is <see cref="CheckpointDirectory"/>. Pass that directory as the resume checkpoint (same
/// arguments) to continue exactly where it stopped.
/// </summary>
public sealed class TrainingCancelledException(long step, string checkpointDirectory, CancellationToken token)
    : OperationCanceledException($"Training stopped at step {step}; checkpoint saved to {checkpointDirectory}.", token)
{
    /// <summary>Optimizer updates done when the run stopped.</summary>
    public long Step { get; } = step;
    /// <summary>The run checkpoint written at <see cref="Step"/>.</summary>
    public string CheckpointDirectory { get; } = checkpointDirectory;
}

/// <summary>The loss became NaN or infinite.</summary>
public sealed class TrainingDivergedException(string message) : SharpformerException(message);
