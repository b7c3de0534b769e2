namespace Sharpformer.Training;

/// <summary>When something (evaluation, logging, saving) happens during training.</summary>
public enum IntervalStrategy
{
    /// <summary>Never.</summary>
    No,
    /// <summary>Every N optimizer steps.</summary>
    Steps,
    /// <summary>At the end of every epoch.</summary>
    Epoch,
}

/// <summary>Learning-rate schedule shapes (names as Hugging Face's <c>SchedulerType</c>).</summary>
public enum SchedulerType
{
    /// <summary>Linear warmup from 0, then linear decay to 0 at the last step.</summary>
    Linear,
    /// <summary>Linear warmup from 0, then half a cosine down to 0.</summary>
    Cosine,
    /// <summary>The base rate throughout.</summary>
    Constant,
    /// <summary>Linear warmup from 0, then the base rate.</summary>
    ConstantWithWarmup,
}

/// <summary>Which update rule the trainer uses.</summary>
public enum OptimizerKind
{
    /// <summary>PyTorch <c>torch.optim.AdamW</c> (decoupled weight decay, ε inside the bias-corrected denominator).</summary>
    AdamW,
    /// <summary>Keras <c>Adam</c>: ε added outside the bias correction, no weight decay.</summary>
    KerasAdam,
}

/// <summary>
/// Everything that shapes a training run, with Hugging Face <c>TrainingArguments</c> names and defaults
/// where they exist.
/// </summary>
/// <remarks>
/// Optimizer steps per epoch = ⌊batches per epoch / GradientAccumulationSteps⌋ (at least 1; a final
/// incomplete accumulation still steps). Total steps = MaxSteps when &gt; 0, else ⌈NumTrainEpochs · steps per epoch⌉.
/// Warmup steps = WarmupSteps when &gt; 0, else ⌈WarmupRatio · total steps⌉.
/// </remarks>
public sealed record TrainingArguments
{
    /// <summary>Where checkpoints, metrics.jsonl and the final model go.</summary>
    public required string OutputDir { get; init; }
    public double NumTrainEpochs { get; init; } = 3;
    /// <summary>When &gt; 0, overrides <see cref="NumTrainEpochs"/>.</summary>
    public int MaxSteps { get; init; } = -1;
    public double LearningRate { get; init; } = 5e-5;
    public int PerDeviceTrainBatchSize { get; init; } = 8;
    public int PerDeviceEvalBatchSize { get; init; } = 8;
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Decoupled weight decay, applied to weights outside LayerNorms whose name has no "bias" (HF grouping).</summary>
    public double WeightDecay { get; init; }
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEpsilon { get; init; } = 1e-8;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    public SchedulerType LrSchedulerType { get; init; } = SchedulerType.Linear;
    public int WarmupSteps { get; init; }
    public double WarmupRatio { get; init; }
    /// <summary>Global gradient L2-norm clip; ≤ 0 disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public IntervalStrategy EvaluationStrategy { get; init; } = IntervalStrategy.No;
    public int EvalSteps { get; init; } = 500;
    public IntervalStrategy LoggingStrategy { get; init; } = IntervalStrategy.Steps;
    public int LoggingSteps { get; init; } = 50;
    public IntervalStrategy SaveStrategy { get; init; } = IntervalStrategy.No;
    public int SaveSteps { get; init; } = 500;
    /// <summary>Keep at most this many checkpoints (oldest deleted first, the best one kept); ≤ 0 keeps all.</summary>
    public int SaveTotalLimit { get; init; }
    /// <summary>Restore the best checkpoint's weights at the end (requires saving at every evaluation).</summary>
    public bool LoadBestModelAtEnd { get; init; }
    /// <summary>Metric deciding "best", e.g. "eval_loss" or "eval_accuracy" (an "eval_" prefix is added when missing).</summary>
    public string MetricForBestModel { get; init; } = "eval_loss";
    /// <summary>Null: true unless the metric is a loss.</summary>
    public bool? GreaterIsBetter { get; init; }
    /// <summary>Seeds shuffling and dropout (and model init when the caller derives it from here).</summary>
    public int Seed { get; init; } = 42;
    /// <summary>Hide the progress line even on a terminal.</summary>
    public bool DisableProgressBar { get; init; }
    /// <summary>Kernel threads of training and evaluation steps (no preference: the caller's scope, else all cores). A resumed run
    /// repeats the uninterrupted one bit for bit only with the same thread count.</summary>
    public Tensors.ExecutionOptions Execution { get; init; } = Tensors.ExecutionOptions.Default;
    /// <summary>
    /// Mixed precision, as HF's <c>bf16</c>: the linear layers' GEMMs of training and evaluation steps (forward, and dX, dW in
    /// the backward) multiply bfloat16 operands with fp32 sums; master weights, gradients, optimizer state, layer norm, softmax,
    /// attention and losses stay fp32 (<see cref="Tensors.ExecutionOptions.Bf16"/>). No loss scaling: bf16 has fp32's exponent
    /// range (fp16's 5-bit exponent is what makes scaling necessary). Checkpoints hold fp32 weights either way.
    /// </summary>
    public bool Bf16 { get; init; }

    internal string BestMetricKey => MetricForBestModel.StartsWith("eval_", StringComparison.Ordinal) ? MetricForBestModel : "eval_" + MetricForBestModel;
    internal bool BestIsGreater => GreaterIsBetter ?? !BestMetricKey.EndsWith("loss", StringComparison.Ordinal);

    /// <summary>Throws <see cref="TrainingConfigurationException"/> naming the first inconsistent setting.</summary>
    public void Validate()
    {
        void Fail(string m) => throw new TrainingConfigurationException(m);
        if (string.IsNullOrWhiteSpace(OutputDir)) Fail("OutputDir must be set.");
        if (MaxSteps <= 0 && !(NumTrainEpochs > 0)) Fail($"NumTrainEpochs must be > 0 when MaxSteps is not set (got {NumTrainEpochs}).");
        if (!(LearningRate >= 0)) Fail($"LearningRate must be ≥ 0 (got {LearningRate}).");
        if (PerDeviceTrainBatchSize < 1 || PerDeviceEvalBatchSize < 1) Fail("Batch sizes must be ≥ 1.");
        if (GradientAccumulationSteps < 1) Fail($"GradientAccumulationSteps must be ≥ 1 (got {GradientAccumulationSteps}).");
        if (WeightDecay < 0) Fail($"WeightDecay must be ≥ 0 (got {WeightDecay}).");
        if (Optimizer == OptimizerKind.KerasAdam && WeightDecay != 0) Fail("KerasAdam has no weight decay; set WeightDecay to 0 or use AdamW.");
        if (WarmupSteps < 0 || WarmupRatio < 0 || WarmupRatio > 1) Fail("WarmupSteps must be ≥ 0 and WarmupRatio in [0, 1].");
        if (EvaluationStrategy == IntervalStrategy.Steps && EvalSteps < 1) Fail("EvalSteps must be ≥ 1 with the Steps evaluation strategy.");
        if (LoggingStrategy == IntervalStrategy.Steps && LoggingSteps < 1) Fail("LoggingSteps must be ≥ 1 with the Steps logging strategy.");
        if (SaveStrategy == IntervalStrategy.Steps && SaveSteps < 1) Fail("SaveSteps must be ≥ 1 with the Steps save strategy.");
        if (LoadBestModelAtEnd)
        {
            if (EvaluationStrategy == IntervalStrategy.No) Fail("LoadBestModelAtEnd needs an evaluation strategy.");
            if (SaveStrategy != EvaluationStrategy) Fail($"LoadBestModelAtEnd needs the save strategy ({SaveStrategy}) to equal the evaluation strategy ({EvaluationStrategy}).");
            if (SaveStrategy == IntervalStrategy.Steps && SaveSteps % EvalSteps != 0) Fail($"LoadBestModelAtEnd needs SaveSteps ({SaveSteps}) to be a multiple of EvalSteps ({EvalSteps}).");
        }
    }
}

/// <summary>Inconsistent training settings.</summary>
public sealed class TrainingConfigurationException(string message) : SharpformerException(message);
