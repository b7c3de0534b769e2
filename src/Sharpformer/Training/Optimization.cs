using System.Numerics.Tensors;
using Sharpformer.Models;

namespace Sharpformer.Training;

/// <summary>An update rule over flat parameters whose state can be checkpointed.</summary>
public interface IFlatOptimizer
{
    /// <summary>Updates completed so far (the bias-correction step count).</summary>
    long StepCount { get; }

    /// <summary>One update with the given learning rate from the parameters' current gradients.</summary>
    void Step(double learningRate);

    /// <summary>Per-parameter state tensors, keyed "&lt;slot&gt;.&lt;parameter name&gt;" (e.g. "exp_avg.classifier.weight").</summary>
    IReadOnlyDictionary<string, float[]> StateTensors();

    /// <summary>Restores state saved by <see cref="StateTensors"/> and <see cref="StepCount"/>.</summary>
    void LoadState(IReadOnlyDictionary<string, float[]> tensors, long stepCount);
}

/// <summary>Adam with the two moment slots shared by <see cref="AdamWFlat"/> and <see cref="KerasAdamFlat"/>.</summary>
public abstract class AdamFlatBase : IFlatOptimizer
{
    protected readonly IReadOnlyList<FlatParameter> Params;
    protected readonly float[][] M, V;
    protected readonly double Beta1, Beta2, Eps;

    protected AdamFlatBase(IReadOnlyList<FlatParameter> parameters, double beta1, double beta2, double eps)
    {
        Params = parameters; Beta1 = beta1; Beta2 = beta2; Eps = eps;
        M = parameters.Select(p => new float[p.Size]).ToArray();
        V = parameters.Select(p => new float[p.Size]).ToArray();
    }

    public long StepCount { get; protected set; }

    public abstract void Step(double learningRate);

    public IReadOnlyDictionary<string, float[]> StateTensors()
    {
        var d = new Dictionary<string, float[]>();
        for (int i = 0; i < Params.Count; i++) { d["exp_avg." + Params[i].Name] = M[i]; d["exp_avg_sq." + Params[i].Name] = V[i]; }
        return d;
    }

    public void LoadState(IReadOnlyDictionary<string, float[]> tensors, long stepCount)
    {
        for (int i = 0; i < Params.Count; i++)
        {
            Copy("exp_avg." + Params[i].Name, M[i]);
            Copy("exp_avg_sq." + Params[i].Name, V[i]);
        }
        StepCount = stepCount;

        void Copy(string key, float[] dst)
        {
            if (!tensors.TryGetValue(key, out var src)) throw new CheckpointFormatException($"Optimizer state has no tensor '{key}'; the checkpoint does not belong to this model.");
            if (src.Length != dst.Length) throw new CheckpointFormatException($"Optimizer state '{key}' holds {src.Length} values; the parameter has {dst.Length}.");
            src.CopyTo(dst, 0);
        }
    }
}

/// <summary>PyTorch 1.13 <c>torch.optim.AdamW</c> (single-tensor path), with HF's weight-decay grouping.</summary>
/// <remarks>
/// For each parameter θ with gradient g at step t (1-based):
/// θ ← θ·(1 − lr·λ) (λ = weight decay for its group);
/// m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
/// θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε).
/// Scalars are computed in double and applied in float32, as torch does for float tensors.
/// </remarks>
public sealed class AdamWFlat : AdamFlatBase
{
    readonly float[] _decay;

    /// <param name="parameters">Parameters in a fixed order.</param>
    /// <param name="decays">Per parameter: whether weight decay applies (see <see cref="WeightDecayGrouping"/>).</param>
    /// <param name="beta1">First-moment decay β₁.</param>
    /// <param name="beta2">Second-moment decay β₂.</param>
    /// <param name="eps">ε added to the denominator.</param>
    /// <param name="weightDecay">Decoupled weight decay λ for the decaying group.</param>
    public AdamWFlat(IReadOnlyList<FlatParameter> parameters, IReadOnlyList<bool> decays, double beta1, double beta2, double eps, double weightDecay)
        : base(parameters, beta1, beta2, eps)
    {
        if (decays.Count != parameters.Count) throw new ArgumentException("One decay flag per parameter is needed.", nameof(decays));
        _decay = decays.Select(d => d ? (float)weightDecay : 0f).ToArray();
        WeightDecay = weightDecay;
    }

    public double WeightDecay { get; }

    public override void Step(double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount), bc2 = 1 - Math.Pow(Beta2, StepCount);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2);
        float b1 = (float)Beta1, b2 = (float)Beta2, omb1 = (float)(1 - Beta1), omb2 = (float)(1 - Beta2), eps = (float)Eps;
        for (int i = 0; i < Params.Count; i++)
        {
            var p = Params[i].Value; var g = Params[i].Grad; var m = M[i]; var v = V[i];
            if (_decay[i] != 0f)
            {
                float keep = (float)(1 - lr * _decay[i]);
                TensorPrimitives.Multiply(p, keep, p);
            }
            for (int j = 0; j < p.Length; j++)
            {
                float gj = g[j];
                float mj = m[j] * b1 + omb1 * gj;
                float vj = v[j] * b2 + omb2 * gj * gj;
                m[j] = mj; v[j] = vj;
                float denom = MathF.Sqrt(vj) / bc2Sqrt + eps;
                p[j] += -stepSize * (mj / denom);
            }
        }
    }
}

/// <summary>Keras (TF ≥ 2.11 / Keras 3) <c>Adam</c>: ε outside the bias correction.</summary>
/// <remarks>
/// α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ); m ← m + (g − m)(1 − β₁); v ← v + (g² − v)(1 − β₂); θ ← θ − α·m/(√v + ε).
/// Sparse embedding gradients in Keras decay every row's moments too, which equals this dense update.
/// </remarks>
public sealed class KerasAdamFlat(IReadOnlyList<FlatParameter> parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-7)
    : AdamFlatBase(parameters, beta1, beta2, eps)
{
    public override void Step(double lr)
    {
        StepCount++;
        float alpha = (float)(lr * Math.Sqrt(1 - Math.Pow(Beta2, StepCount)) / (1 - Math.Pow(Beta1, StepCount)));
        float omb1 = (float)(1 - Beta1), omb2 = (float)(1 - Beta2), eps = (float)Eps;
        for (int i = 0; i < Params.Count; i++)
        {
            var p = Params[i].Value; var g = Params[i].Grad; var m = M[i]; var v = V[i];
            for (int j = 0; j < p.Length; j++)
            {
                float gj = g[j];
                float mj = m[j] + (gj - m[j]) * omb1;
                float vj = v[j] + (gj * gj - v[j]) * omb2;
                m[j] = mj; v[j] = vj;
                p[j] -= alpha * mj / (MathF.Sqrt(vj) + eps);
            }
        }
    }
}

/// <summary>Hugging Face Trainer's weight-decay grouping.</summary>
public static class WeightDecayGrouping
{
    /// <summary>Decay = not inside a LayerNorm module and no "bias" in the name.</summary>
    public static bool Decays(string name, bool inLayerNorm) => !inLayerNorm && !name.Contains("bias", StringComparison.Ordinal);
}

/// <summary>Learning-rate schedules as multipliers of the base rate, a pure function of the optimizer step.</summary>
/// <remarks>
/// Linear (HF get_linear_schedule_with_warmup): f(s) = s/w for s &lt; w, else max(0, (S − s)/(S − w)).
/// Cosine: after warmup, max(0, ½(1 + cos(π·(s − w)/(S − w)))). The rate used by update s (0-based) is base·f(s),
/// so update 0 runs at rate 0 when there is warmup.
/// </remarks>
public sealed record LearningRateSchedule(SchedulerType Type, int WarmupSteps, int TotalSteps)
{
    public double Multiplier(long step)
    {
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        switch (Type)
        {
            case SchedulerType.Constant: return 1;
            case SchedulerType.ConstantWithWarmup: return 1;
            case SchedulerType.Linear: return Math.Max(0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
            case SchedulerType.Cosine:
                double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
                return Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress)));
            default: throw new NotSupportedException($"Scheduler {Type} is not supported.");
        }
    }
}

/// <summary>Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ with the L2 norm).</summary>
public static class GradientClipping
{
    /// <summary>Scales all gradients by min(1, maxNorm/(‖g‖ + 1e-6)); returns ‖g‖ before clipping.</summary>
    /// <remarks>‖g‖ = √Σ_p ‖g_p‖², each ‖g_p‖ in float32 as torch computes per-tensor norms first.</remarks>
    public static double ClipByGlobalNorm(IReadOnlyList<FlatParameter> parameters, double maxNorm)
    {
        double total = 0;
        foreach (var p in parameters)
        {
            float n = TensorPrimitives.Norm(p.Grad);
            total += (double)n * n;
        }
        float totalNorm = MathF.Sqrt((float)total);
        if (maxNorm > 0)
        {
            float coef = (float)(maxNorm / (totalNorm + 1e-6));
            if (coef < 1f)
                foreach (var p in parameters) TensorPrimitives.Multiply(p.Grad, coef, p.Grad);
        }
        return totalNorm;
    }
}
