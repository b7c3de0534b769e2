using System.Text;

namespace Sharpformer.Optim;

/// <summary>
/// Sets every group's learning rate to InitialLearningRate · multiplier(step), as torch's LambdaLR: the constructor applies
/// step 0 and each <see cref="Step"/> advances by one. Factories reproduce HF transformers' schedules exactly.
/// </summary>
public sealed class LrScheduler
{
    readonly Optimizer _optimizer;
    readonly Func<long, double> _multiplier;

    public LrScheduler(Optimizer optimizer, Func<long, double> multiplier, string name = "lambda")
    {
        _optimizer = optimizer; _multiplier = multiplier; Name = name;
        Apply();
    }

    public string Name { get; }
    /// <summary>Scheduler steps taken (torch's last_epoch).</summary>
    public long CurrentStep { get; private set; }
    /// <summary>The learning rates set by the last step, per group.</summary>
    public IReadOnlyList<float> LastLearningRates => _optimizer.Groups.Select(g => g.LearningRate).ToList();
    /// <summary>The multiplier at a step.</summary>
    public double Multiplier(long step) => _multiplier(step);

    public void Step() { CurrentStep++; Apply(); }

    void Apply()
    {
        double f = _multiplier(CurrentStep);
        foreach (var g in _optimizer.Groups) g.LearningRateExact = g.InitialLearningRateExact * f;
    }

    /// <summary>lr multiplier 1.</summary>
    public static LrScheduler Constant(Optimizer o) => new(o, _ => 1.0, "constant");

    /// <summary>HF get_constant_schedule_with_warmup: s/max(1, warmup) during warmup, then 1.</summary>
    public static LrScheduler ConstantWithWarmup(Optimizer o, long warmupSteps) =>
        new(o, s => s < warmupSteps ? (double)s / Math.Max(1, warmupSteps) : 1.0, "constant_with_warmup");

    /// <summary>HF get_linear_schedule_with_warmup: s/max(1, warmup) during warmup, then max(0, (total − s)/max(1, total − warmup)).</summary>
    public static LrScheduler LinearWithWarmup(Optimizer o, long warmupSteps, long totalSteps) =>
        new(o, s => LinearMultiplier(s, warmupSteps, totalSteps), "linear");

    /// <summary>HF get_cosine_schedule_with_warmup: warmup, then max(0, ½(1 + cos(π·cycles·2·progress))).</summary>
    public static LrScheduler CosineWithWarmup(Optimizer o, long warmupSteps, long totalSteps, double cycles = 0.5) =>
        new(o, s => CosineMultiplier(s, warmupSteps, totalSteps, cycles), "cosine");

    public static double LinearMultiplier(long s, long warmup, long total) =>
        s < warmup ? (double)s / Math.Max(1, warmup) : Math.Max(0.0, (double)(total - s) / Math.Max(1, total - warmup));

    public static double CosineMultiplier(long s, long warmup, long total, double cycles = 0.5)
    {
        if (s < warmup) return (double)s / Math.Max(1, warmup);
        double progress = (double)(s - warmup) / Math.Max(1, total - warmup);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * cycles * 2.0 * progress)));
    }

    const string Magic = "SFSCHED";

    /// <summary>Writes the schedule name and step.</summary>
    public void SaveState(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic); w.Write(1); w.Write(Name); w.Write(CurrentStep);
    }

    /// <summary>Restores the step (and re-applies the learning rate); the schedule kind must match.</summary>
    public void LoadState(Stream stream)
    {
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            if (r.ReadString() != Magic) throw new OptimizerException("Not a Sharpformer scheduler state (bad magic).");
            int v = r.ReadInt32();
            if (v != 1) throw new OptimizerException($"Scheduler state version {v} is not supported (expected 1).");
            string name = r.ReadString();
            if (name != Name) throw new OptimizerException($"Scheduler state is for a '{name}' schedule; this one is '{Name}'.");
            CurrentStep = r.ReadInt64();
            Apply();
        }
        catch (EndOfStreamException)
        {
            throw new OptimizerException("Scheduler state stream ended early (truncated or corrupt file).");
        }
    }
}
