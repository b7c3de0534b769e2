namespace Sharpformer.Training;

/// <summary>Where a run stands; handed to callbacks and saved in checkpoints.</summary>
public sealed class TrainerState
{
    /// <summary>Optimizer updates done.</summary>
    public long GlobalStep { get; set; }
    /// <summary>Total optimizer updates planned.</summary>
    public long MaxSteps { get; set; }
    /// <summary>Fractional epoch (completed epochs + fraction of the current one).</summary>
    public double Epoch { get; set; }
    /// <summary>Best value of the chosen metric so far (null before the first evaluation).</summary>
    public double? BestMetric { get; set; }
    /// <summary>Checkpoint directory holding the best model so far.</summary>
    public string? BestModelCheckpoint { get; set; }
    /// <summary>The last evaluation's metrics.</summary>
    public IReadOnlyDictionary<string, double>? LastMetrics { get; set; }
    /// <summary>Early stopping's best value of its metric (null before the first evaluation); saved in run checkpoints.</summary>
    public double? EarlyStoppingBest { get; set; }
    /// <summary>Evaluations since early stopping's metric last improved; saved in run checkpoints so a resumed run keeps counting.</summary>
    public int EarlyStoppingPatienceCounter { get; set; }
}

/// <summary>Lets callbacks steer the loop.</summary>
public sealed class TrainerControl
{
    /// <summary>Set to end training after the current step (a checkpoint is still written if saving is on).</summary>
    public bool ShouldStop { get; set; }
    /// <summary>Set in <see cref="ITrainerCallback.OnStepEnd"/> to evaluate after this step even off the interval (as HF's <c>should_evaluate</c>); reset after.</summary>
    public bool ShouldEvaluate { get; set; }
    /// <summary>Set to write a run checkpoint after the current step (whatever the save strategy); the trainer clears it (HF's <c>should_save</c>).</summary>
    public bool ShouldSave { get; set; }
}

/// <summary>Hooks into the training loop; every method has an empty default.</summary>
public interface ITrainerCallback
{
    void OnTrainBegin(TrainerState state, TrainerControl control) { }
    /// <summary>After each optimizer update.</summary>
    void OnStepEnd(TrainerState state, TrainerControl control, StepLog log) { }
    void OnEvaluate(TrainerState state, TrainerControl control, IReadOnlyDictionary<string, double> metrics) { }
    void OnSave(TrainerState state, TrainerControl control, string checkpointDirectory) { }
    void OnTrainEnd(TrainerState state, TrainerControl control) { }
}

/// <summary>What one optimizer update did.</summary>
/// <param name="Step">Global step after the update (1-based).</param>
/// <param name="Loss">Mean training loss of the update's batches.</param>
/// <param name="LearningRate">Rate used by the update.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Samples">Examples in the update.</param>
public sealed record StepLog(long Step, double Loss, double LearningRate, double GradNorm, int Samples);

/// <summary>
/// Stops training when the chosen metric has not improved for <paramref name="patience"/> evaluations
/// (Hugging Face EarlyStoppingCallback semantics).
/// </summary>
/// <remarks>Improvement: greater-is-better → m &gt; best + threshold, otherwise m &lt; best − threshold.</remarks>
public sealed class EarlyStoppingCallback(int patience, double threshold = 0) : ITrainerCallback
{
    // The counter and best value live in TrainerState (not in fields here) so run checkpoints carry them across a resume.
    TrainerState? _state;

    /// <summary>Evaluations without improvement so far.</summary>
    public int EvaluationsWithoutImprovement => _state?.EarlyStoppingPatienceCounter ?? 0;

    /// <summary>Set by the trainer: which metric and which direction.</summary>
    internal string MetricKey { get; set; } = "eval_loss";
    internal bool GreaterIsBetter { get; set; }

    public void OnEvaluate(TrainerState state, TrainerControl control, IReadOnlyDictionary<string, double> metrics)
    {
        if (!metrics.TryGetValue(MetricKey, out var m))
            throw new TrainingConfigurationException($"Early stopping watches '{MetricKey}', which the evaluation did not produce (it gave: {string.Join(", ", metrics.Keys)}).");
        _state = state;
        var best = state.EarlyStoppingBest;
        bool improved = best is null || (GreaterIsBetter ? m > best + threshold : m < best - threshold);
        if (improved) { state.EarlyStoppingBest = m; state.EarlyStoppingPatienceCounter = 0; }
        else if (++state.EarlyStoppingPatienceCounter >= patience) control.ShouldStop = true;
    }
}

/// <summary>
/// Asks the trainer to stop once a time budget is spent (the step in progress still finishes). The budget is wall-clock
/// time, or with <paramref name="processorTime"/> the CPU time of the process (all threads): the fair measure on a machine
/// shared with other work, where wall time says little. With <paramref name="evaluateOnStop"/> that last step is evaluated
/// (so its updates can still win the best-checkpoint choice); with <paramref name="saveOnStop"/> it gets a run checkpoint,
/// so a later run can resume from it.
/// </summary>
/// <remarks>The budget counts from the start of this <c>Train</c> call: a resumed run gets the whole budget again.</remarks>
public sealed class TimeBudgetCallback(TimeSpan budget, bool processorTime = false, bool saveOnStop = false, bool evaluateOnStop = false) : ITrainerCallback
{
    readonly System.Diagnostics.Stopwatch _clock = new();
    TimeSpan _cpuAtStart;

    /// <summary>True once the budget stopped the run.</summary>
    public bool Expired { get; private set; }

    /// <summary>Time spent since training began, by the budget's measure.</summary>
    public TimeSpan Spent => processorTime ? System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - _cpuAtStart : _clock.Elapsed;

    public void OnTrainBegin(TrainerState state, TrainerControl control)
    {
        _clock.Restart();
        _cpuAtStart = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
    }

    public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log)
    {
        if (Spent < budget || state.GlobalStep >= state.MaxSteps) return;
        Expired = true;
        control.ShouldStop = true;
        if (saveOnStop) control.ShouldSave = true;
        if (evaluateOnStop) control.ShouldEvaluate = true;
    }
}

/// <summary>
/// Asks for a run checkpoint whenever the given interval of wall-clock time has passed since the last save (or the
/// start): checkpoints every N minutes whatever the step rate. Which steps get saved depends on the clock, but resuming
/// from any of them continues bit-exactly (the data order, masks and dropout are functions of the step, not of time).
/// </summary>
public sealed class TimedCheckpointCallback : ITrainerCallback
{
    readonly TimeSpan _interval;
    readonly System.Diagnostics.Stopwatch _clock = new();

    public TimedCheckpointCallback(TimeSpan interval)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), interval, "The checkpoint interval must be positive.");
        _interval = interval;
    }

    public void OnTrainBegin(TrainerState state, TrainerControl control) => _clock.Restart();
    public void OnStepEnd(TrainerState state, TrainerControl control, StepLog log) { if (_clock.Elapsed >= _interval) control.ShouldSave = true; }
    public void OnSave(TrainerState state, TrainerControl control, string checkpointDirectory) => _clock.Restart();
}
