using System.Text;
using Sharpformer.Nn;

namespace Sharpformer.Optim;

/// <summary>An optimizer was misused or its saved state does not fit (wrong type, group count, parameter shapes, corrupt stream).</summary>
public sealed class OptimizerException(string message) : SharpformerException(message);

/// <summary>Parameters sharing hyper-parameters. <see cref="LearningRate"/> is what schedulers change.</summary>
public sealed class ParamGroup
{
    public ParamGroup(IEnumerable<Parameter> parameters, float? learningRate = null, float? weightDecay = null)
    {
        Parameters = parameters.ToList();
        LearningRateOverride = learningRate; WeightDecayOverride = weightDecay;
    }

    public IReadOnlyList<Parameter> Parameters { get; }
    internal float? LearningRateOverride { get; }
    internal float? WeightDecayOverride { get; }
    /// <summary>Current learning rate (set by schedulers), rounded to float.</summary>
    public float LearningRate { get => (float)LearningRateExact; set => LearningRateExact = value; }
    /// <summary>The learning rate the group started with (schedules multiply this, as torch's initial_lr), rounded to float.</summary>
    public float InitialLearningRate { get => (float)InitialLearningRateExact; internal set => InitialLearningRateExact = value; }
    /// <summary>
    /// The current learning rate in double precision: update scalars (lr/(1−β₁ᵗ), 1 − lr·λ) are formed from it in double
    /// and rounded once, as torch does with Python-float hyper-parameters.
    /// </summary>
    public double LearningRateExact { get; set; }
    /// <summary>The starting learning rate in double precision.</summary>
    public double InitialLearningRateExact { get; internal set; }
    public float WeightDecay { get; set; }
}

/// <summary>Per-parameter optimizer state: step count and moment buffers.</summary>
internal sealed class SlotState
{
    public long Step;
    public float[]?[] Slots = [];
}

/// <summary>
/// Base of optimizers: parameter groups, <see cref="Step"/> over trainable parameters that have gradients, and state save/restore.
/// </summary>
public abstract class Optimizer
{
    readonly Dictionary<Parameter, SlotState> _state = new(ReferenceEqualityComparer.Instance);
    readonly List<ParamGroup> _groups;

    protected Optimizer(IEnumerable<ParamGroup> groups, double learningRate, float weightDecay, int slotCount)
    {
        if (learningRate < 0 || double.IsNaN(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "Learning rate must be ≥ 0.");
        _groups = groups.ToList();
        SlotCount = slotCount;
        foreach (var g in _groups)
        {
            g.LearningRateExact = g.LearningRateOverride ?? learningRate;
            g.InitialLearningRateExact = g.LearningRateExact;
            g.WeightDecay = g.WeightDecayOverride ?? weightDecay;
        }
        var all = _groups.SelectMany(g => g.Parameters).ToList();
        if (all.Count == 0) throw new OptimizerException($"{GetType().Name} was given no parameters.");
        if (!all.Any(p => p.Trainable))
            throw new OptimizerException($"{GetType().Name} was given {all.Count} parameters but all are frozen (Trainable = false); unfreeze some before training.");
        if (all.Distinct(ReferenceEqualityComparer.Instance).Count() != all.Count)
            throw new OptimizerException("A parameter appears in more than one parameter group.");
    }

    protected static IEnumerable<ParamGroup> OneGroup(IEnumerable<Parameter> parameters) => [new ParamGroup(parameters)];

    public IReadOnlyList<ParamGroup> Groups => _groups;
    protected int SlotCount { get; }

    /// <summary>Number of <see cref="Step"/> calls so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>Updates every trainable parameter that has a gradient; frozen parameters and ones without gradient are skipped (as torch).</summary>
    public void Step()
    {
        StepCount++;
        foreach (var g in _groups)
            foreach (var p in g.Parameters)
            {
                if (!p.Trainable || p.Grad == null) continue;
                if (!_state.TryGetValue(p, out var st)) _state[p] = st = new SlotState { Slots = new float[]?[SlotCount] };
                st.Step++;
                if (!p.Grad.Shape.SequenceEqual(p.Value.Shape))
                    throw new OptimizerException($"Gradient of {p.Value.Name ?? "a parameter"} has shape {Sharpformer.Tensors.Tensor.FormatShape(p.Grad.Shape)}; the parameter is {Sharpformer.Tensors.Tensor.FormatShape(p.Value.Shape)}.");
                Update(g, new Chunked(p.Value), new Chunked(p.Grad.IsContiguous ? p.Grad : p.Grad.Detach().Contiguous()), st.Step, st.Slots);
            }
    }

    /// <summary>One parameter's update; slots are per-parameter buffers (null until first allocated by the optimizer).</summary>
    private protected abstract void Update(ParamGroup group, Chunked param, Chunked grad, long step, float[]?[] slots);

    /// <summary>A contiguous tensor's array and offset, so element-wise updates can be split across threads.</summary>
    private protected readonly struct Chunked(Sharpformer.Tensors.Tensor t)
    {
        public readonly float[] Data = t.Data;
        public readonly int Offset = t.Offset;
        public readonly int Length = t.Size;
        public Span<float> Slice(int start, int length) => Data.AsSpan(Offset + start, length);
    }

    /// <summary>Runs body(start, length) over [0, n) in chunks of 64K elements (updates are memory-bound) handed out to the threads dynamically.</summary>
    private protected static void ForChunks(int n, Action<int, int> body)
    {
        const int chunk = 1 << 16;
        if (Sharpformer.Kernels.Parallelism.WorkersFor(n, chunk, Sharpformer.Tensors.ExecutionScope.Threads) <= 1) { body(0, n); return; }
        Sharpformer.Kernels.Parallelism.ForChunks(n, chunk, Sharpformer.Tensors.ExecutionScope.Threads, (_, lo, hi) => body(lo, hi - lo));
    }

    protected static float[] Slot(float[]?[] slots, int i, int length) => slots[i] ??= new float[length];

    /// <summary>Drops the gradients of every parameter in every group.</summary>
    public void ZeroGrad()
    {
        foreach (var g in _groups) foreach (var p in g.Parameters) p.ZeroGrad();
    }

    const string Magic = "SFOPTIM";
    const int Version = 2;   // 2: learning rates stored as double

    /// <summary>Writes the step count, group hyper-parameters and per-parameter state in a versioned binary format.</summary>
    public void SaveState(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic); w.Write(Version); w.Write(GetType().Name); w.Write(SlotCount); w.Write(StepCount);
        w.Write(_groups.Count);
        foreach (var g in _groups)
        {
            w.Write(g.LearningRateExact); w.Write(g.InitialLearningRateExact); w.Write(g.WeightDecay);
            w.Write(g.Parameters.Count);
            foreach (var p in g.Parameters)
            {
                w.Write(p.Size);
                bool has = _state.TryGetValue(p, out var st);
                w.Write(has);
                if (!has) continue;
                w.Write(st!.Step);
                foreach (var slot in st.Slots)
                {
                    w.Write(slot != null);
                    if (slot == null) continue;
                    w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(slot.AsSpan()));
                }
            }
        }
    }

    /// <summary>Restores what <see cref="SaveState"/> wrote; throws <see cref="OptimizerException"/> naming the mismatch.</summary>
    public void LoadState(Stream stream)
    {
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            if (r.ReadString() != Magic) throw new OptimizerException("Not a Sharpformer optimizer state (bad magic).");
            int version = r.ReadInt32();
            if (version != Version && version != 1) throw new OptimizerException($"Optimizer state version {version} is not supported (expected {Version}).");
            string type = r.ReadString();
            if (type != GetType().Name) throw new OptimizerException($"Optimizer state was saved by {type}; cannot load it into {GetType().Name}.");
            int slots = r.ReadInt32();
            if (slots != SlotCount) throw new OptimizerException($"Optimizer state has {slots} slots per parameter; {GetType().Name} uses {SlotCount}.");
            long steps = r.ReadInt64();
            int groups = r.ReadInt32();
            if (groups != _groups.Count) throw new OptimizerException($"Optimizer state has {groups} parameter groups; this optimizer has {_groups.Count}.");
            var loaded = new List<(Parameter, SlotState?)>();
            var hyper = new List<(double, double, float)>();
            for (int gi = 0; gi < groups; gi++)
            {
                var g = _groups[gi];
                hyper.Add(version == 1 ? (r.ReadSingle(), r.ReadSingle(), r.ReadSingle()) : (r.ReadDouble(), r.ReadDouble(), r.ReadSingle()));
                int count = r.ReadInt32();
                if (count != g.Parameters.Count) throw new OptimizerException($"Optimizer state group {gi} has {count} parameters; this optimizer's group has {g.Parameters.Count}.");
                for (int pi = 0; pi < count; pi++)
                {
                    var p = g.Parameters[pi];
                    int size = r.ReadInt32();
                    if (size != p.Size) throw new OptimizerException($"Optimizer state group {gi} parameter {pi}{(p.Value.Name != null ? $" ('{p.Value.Name}')" : "")} has {size} elements; the parameter has {p.Size}.");
                    if (!r.ReadBoolean()) { loaded.Add((p, null)); continue; }
                    var st = new SlotState { Step = r.ReadInt64(), Slots = new float[]?[slots] };
                    for (int s = 0; s < slots; s++)
                    {
                        if (!r.ReadBoolean()) continue;
                        var a = new float[size];
                        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan());
                        for (int got = 0; got < bytes.Length;)
                        {
                            int n = r.Read(bytes[got..]);
                            if (n <= 0) throw new EndOfStreamException();
                            got += n;
                        }
                        st.Slots[s] = a;
                    }
                    loaded.Add((p, st));
                }
            }
            StepCount = steps;
            for (int gi = 0; gi < groups; gi++) (_groups[gi].LearningRateExact, _groups[gi].InitialLearningRateExact, _groups[gi].WeightDecay) = hyper[gi];
            _state.Clear();
            foreach (var (p, st) in loaded) if (st != null) _state[p] = st;
        }
        catch (EndOfStreamException e)
        {
            throw new OptimizerException("Optimizer state stream ended early (truncated or corrupt file).") { Source = e.Source };
        }
    }
}
