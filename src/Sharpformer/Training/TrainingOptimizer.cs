using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Optim;

namespace Sharpformer.Training;

/// <summary>Builds the nn layer's optimizer, schedule and weight-decay groups over a trainable model's flat buffers.</summary>
/// <remarks>
/// The trainer's models compute gradients into flat arrays; <see cref="Parameter.FromBuffers"/> exposes each (value, gradient)
/// pair as a <see cref="Parameter"/> without copying, so <see cref="AdamW"/>, <see cref="Adam"/>, <see cref="GradClip"/> and
/// <see cref="LrScheduler"/> update the model's own memory.
/// </remarks>
public static class TrainingOptimizer
{
    /// <summary>One <see cref="Parameter"/> per flat parameter, sharing its value and gradient arrays, in the same order.</summary>
    public static IReadOnlyList<Parameter> AsParameters(IReadOnlyList<FlatParameter> parameters)
        => parameters.Select(p => Parameter.FromBuffers(p.Name, p.Value, p.Grad, p.Shape)).ToList();

    /// <summary>
    /// HF Trainer's weight-decay groups ([decay, no decay]) over <paramref name="parameters"/>, which must be
    /// <see cref="AsParameters"/> of the model's flat parameters (same order).
    /// </summary>
    public static IReadOnlyList<ParamGroup> HuggingFaceWeightDecay<TBatch>(ITrainableModel<TBatch> model, IReadOnlyList<Parameter> parameters, double weightDecay)
    {
        var flat = model.Parameters;
        if (flat.Count != parameters.Count) throw new ArgumentException($"Expected one parameter per flat parameter ({flat.Count}); got {parameters.Count}.", nameof(parameters));
        return ParameterGroups.HuggingFaceWeightDecay(flat.Select((f, i) => (f.Name, parameters[i], model.IsLayerNormParameter(f.Name))), (float)weightDecay);
    }

    /// <summary>The optimizer <paramref name="args"/> asks for over the model's parameters (as <see cref="AsParameters"/>).</summary>
    public static Optimizer Create<TBatch>(ITrainableModel<TBatch> model, IReadOnlyList<Parameter> parameters, TrainingArguments args) => args.Optimizer switch
    {
        OptimizerKind.AdamW => new AdamW(HuggingFaceWeightDecay(model, parameters, args.WeightDecay), args.LearningRate,
            args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, (float)args.WeightDecay),
        OptimizerKind.KerasAdam => new Adam(parameters, args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, flavor: AdamFlavor.Keras),
        _ => throw new NotSupportedException($"Optimizer {args.Optimizer} is not supported."),
    };

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
