using Sharpformer.Nn;
using Sharpformer.Optim;

namespace Sharpformer.Training;

/// <summary>Builds the nn layer's optimizer and schedule over a model's trainable parameters, and clears their gradients between steps.</summary>
public static class TrainingOptimizer
{
    /// <summary>The parameters an optimizer updates: every <see cref="Parameter.Trainable"/> one with its dotted name, in module order.</summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters(Module model) =>
        model.NamedParameters().Where(p => p.Parameter.Trainable).ToList();

    /// <summary>The optimizer <paramref name="args"/> asks for over <paramref name="model"/>'s trainable parameters (AdamW with HF's weight-decay groups, or Keras Adam).</summary>
    public static Optimizer Create(Module model, TrainingArguments args) => args.Optimizer switch
    {
        OptimizerKind.AdamW => new AdamW(ParameterGroups.HuggingFaceWeightDecay(model, (float)args.WeightDecay), args.LearningRate,
            args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, (float)args.WeightDecay),
        OptimizerKind.KerasAdam => new Adam(TrainableParameters(model).Select(p => p.Parameter), args.LearningRate, args.AdamBeta1, args.AdamBeta2,
            args.AdamEpsilon, flavor: AdamFlavor.Keras),
        _ => throw new NotSupportedException($"Optimizer {args.Optimizer} is not supported."),
    };

    /// <summary>
    /// Zeroes every gradient in place: the next backward accumulates into the same buffers instead of allocating new ones
    /// (<see cref="Parameter.ZeroGrad"/> drops them instead).
    /// </summary>
    public static void ZeroGradients(IEnumerable<Parameter> parameters)
    {
        foreach (var p in parameters)
        {
            if (p.Grad is not { } g) continue;
            if (g.IsContiguous) g.AsSpan().Clear(); else p.ZeroGrad();
        }
    }

    /// <summary>The learning-rate schedule of <paramref name="type"/> over <paramref name="totalSteps"/> updates with <paramref name="warmupSteps"/> of linear warmup.</summary>
    /// <remarks>Constant with warmup &gt; 0 warms up like <see cref="SchedulerType.ConstantWithWarmup"/>.</remarks>
    public static LrScheduler Schedule(Optimizer optimizer, SchedulerType type, int warmupSteps, long totalSteps) => type switch
    {
        SchedulerType.Linear => LrScheduler.LinearWithWarmup(optimizer, warmupSteps, totalSteps),
        SchedulerType.Cosine => LrScheduler.CosineWithWarmup(optimizer, warmupSteps, totalSteps),
        SchedulerType.Constant when warmupSteps == 0 => LrScheduler.Constant(optimizer),
        SchedulerType.Constant or SchedulerType.ConstantWithWarmup => LrScheduler.ConstantWithWarmup(optimizer, warmupSteps),
        _ => throw new NotSupportedException($"Scheduler {type} is not supported."),
    };
}
