using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>A state dict did not fit a module under strict loading; the message lists the keys.</summary>
public sealed class StateDictException(string message, LoadReport report) : SharpformerException(message)
{
    public LoadReport Report { get; } = report;
}

/// <summary>Something that draws random numbers (dropout) and can be reseeded for reproducible training.</summary>
public interface IStochastic
{
    Random Rng { get; set; }
}

/// <summary>
/// Base of layers: explicitly registered parameters, buffers and submodules whose dotted names are the HF checkpoint keys
/// (a module registered as "self" under "attention" under "layer.0" under "encoder" names its query weight
/// <c>encoder.layer.0.attention.self.query.weight</c>).
/// </summary>
public abstract class Module
{
    readonly List<(string Name, Parameter Parameter)> _parameters = [];
    readonly List<(string Name, Tensor Tensor, bool Persistent)> _buffers = [];
    readonly List<(string Name, Module Module)> _children = [];

    /// <summary>True in training mode (dropout active); set by <see cref="Train"/> / <see cref="Eval"/> on the whole subtree.</summary>
    public bool Training { get; private set; } = true;

    // Forward hooks of this module (a multicast delegate, replaced whole under HookGate; read without a lock).
    Action<Module, Tensor>? _forwardHooks;
    static readonly object HookGate = new();

    /// <summary>
    /// Calls <paramref name="hook"/> with this module and its output after each of its forwards, until the returned handle is
    /// disposed (PyTorch's <c>register_forward_hook</c>). <see cref="Summary"/> installs one on every module for its probe run.
    /// </summary>
    public IDisposable RegisterForwardHook(Action<Module, Tensor> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        lock (HookGate) _forwardHooks += hook;
        return new HookHandle(this, hook);
    }

    sealed class HookHandle(Module module, Action<Module, Tensor> hook) : IDisposable
    {
        bool _removed;
        public void Dispose()
        {
            lock (HookGate)
            {
                if (_removed) return;
                _removed = true;
                module._forwardHooks -= hook;
            }
        }
    }

    /// <summary>
    /// The module call hook: a Forward returns its output through this (<c>return Forwarded(y);</c>), which hands it to the
    /// forward hooks. A fused op that computes a child's output itself (bias + GELU after the GEMM) calls the child's.
    /// </summary>
    protected internal Tensor Forwarded(Tensor output)
    {
        _forwardHooks?.Invoke(this, output);
        return output;
    }

    /// <summary>Registers a submodule under a dotted-name segment; returns it for field initialisation.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(module);
        _children.Add((name, module));
        return module;
    }

    /// <summary>Registers a trainable parameter under its HF leaf name ("weight", "bias").</summary>
    protected Parameter RegisterParameter(string name, Tensor init)
    {
        CheckName(name);
        var p = new Parameter(init);
        p.Value.Name ??= name;
        _parameters.Add((name, p));
        return p;
    }

    /// <summary>Registers a non-trainable tensor (e.g. position ids). Persistent buffers appear in the state dict.</summary>
    protected Tensor RegisterBuffer(string name, Tensor value, bool persistent = true)
    {
        CheckName(name);
        _buffers.Add((name, value, persistent));
        return value;
    }

    void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Module member name '{name}' must be non-empty and contain no '.'.", nameof(name));
        if (_parameters.Any(p => p.Name == name) || _children.Any(c => c.Name == name) || _buffers.Any(b => b.Name == name))
            throw new ArgumentException($"'{name}' is already registered in {GetType().Name}.", nameof(name));
    }

    /// <summary>Direct children in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>This module ("") and every descendant with its dotted path, depth-first in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
            foreach (var x in child.NamedModules(Join(prefix, name))) yield return x;
    }

    /// <summary>Every parameter with its dotted name, e.g. "encoder.layer.0.attention.self.query.weight".</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _parameters) yield return (Join(prefix, name), p);
        foreach (var (name, child) in _children)
            foreach (var x in child.NamedParameters(Join(prefix, name))) yield return x;
    }

    /// <summary>Parameters registered directly on this module (not descendants).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> OwnParameters() => _parameters;

    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>Buffers with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Tensor, bool Persistent)> NamedBuffers(string prefix = "")
    {
        foreach (var (name, t, persistent) in _buffers) yield return (Join(prefix, name), t, persistent);
        foreach (var (name, child) in _children)
            foreach (var x in child.NamedBuffers(Join(prefix, name))) yield return x;
    }

    static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Sets training mode on this module and all descendants.</summary>
    public virtual void Train(bool on = true)
    {
        Training = on;
        foreach (var (_, c) in _children) c.Train(on);
    }

    /// <summary>Evaluation mode (dropout off).</summary>
    public void Eval() => Train(false);

    /// <summary>True when any parameter below is trainable; setting freezes or unfreezes every parameter below.</summary>
    public bool Trainable
    {
        get => Parameters().Any(p => p.Trainable);
        set { foreach (var p in Parameters()) p.Trainable = value; }
    }

    /// <summary>Total number of parameter elements (only trainable ones when asked).</summary>
    public long ParameterCount(bool trainableOnly = false) =>
        Parameters().Where(p => !trainableOnly || p.Trainable).Sum(p => (long)p.Size);

    /// <summary>Gives every stochastic module below (dropout, attention dropout) the same random source.</summary>
    public void UseRandom(Random rng)
    {
        foreach (var (_, m) in NamedModules()) if (m is IStochastic s) s.Rng = rng;
    }

    /// <summary>Drops the gradients of every parameter below.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.Value.ZeroGrad();
    }

    /// <summary>Parameters and persistent buffers by dotted name. The tensors are the live ones (not copies).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (n, p) in NamedParameters()) d[n] = p.Value;
        foreach (var (n, t, persistent) in NamedBuffers()) if (persistent) d[n] = t;
        return d;
    }

    /// <summary>
    /// Copies matching tensors into this module's parameters (in place, so optimizers keep working), with the key rules of
    /// <see cref="VarBuilder"/>. With <paramref name="strict"/> any missing, unexpected or wrong-shape key throws
    /// <see cref="StateDictException"/> before anything is copied.
    /// </summary>
    public LoadReport LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        var weights = new TensorWeights(stateDict);
        var options = new WeightLoadOptions(IgnoreMismatchedSizes: true);
        var plan = VarBuilder.FromWeights(weights, options).LoadInto(this, copy: false);
        if (strict && !plan.IsComplete)
            throw new StateDictException($"State dict does not match {GetType().Name}: {plan}. Load with strict: false to accept partial matches.", plan);
        return VarBuilder.FromWeights(weights, options).LoadInto(this);
    }

    sealed class TensorWeights(IReadOnlyDictionary<string, Tensor> tensors) : IWeightSource
    {
        public string Source => "<state dict>";
        public IEnumerable<string> Keys => tensors.Keys;
        public IReadOnlyList<int>? ShapeOf(string key) => tensors.TryGetValue(key, out var t) ? t.ShapeArray : null;
        public void CopyTo(string key, Span<float> destination) => tensors[key].Contiguous().AsSpan().CopyTo(destination);
    }

    /// <summary>
    /// A Keras-style table of the module tree; see <see cref="ModuleSummary"/>. Output shapes are those of the modules' forwards
    /// during <paramref name="probe"/> (a dry run, e.g. one forward on a small input), seen through forward hooks; without a probe they are unknown.
    /// </summary>
    public ModuleSummary Summary(Action? probe = null, int maxDepth = int.MaxValue) => ModuleSummary.Of(this, maxDepth, probe);

    /// <summary>Names every parameter tensor with its dotted key (for error messages); call once on the root model.</summary>
    public void NameParameters()
    {
        foreach (var (n, p) in NamedParameters()) p.Value.Name = n;
    }
}

/// <summary>A list of submodules named "0", "1", … (as HF's nn.ModuleList, e.g. encoder.layer.0).</summary>
public sealed class ModuleList<T> : Module, IReadOnlyList<T> where T : Module
{
    readonly List<T> _items = [];

    public ModuleList() { }
    public ModuleList(IEnumerable<T> items) { foreach (var m in items) Add(m); }

    public void Add(T module) => _items.Add(RegisterModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
    public T this[int index] => _items[index];
    public int Count => _items.Count;
    public IEnumerator<T> GetEnumerator() => _items.GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
