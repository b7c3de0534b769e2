using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

/// <summary>A backward rule: given the gradient of an op's output (contiguous, the output's shape), push gradients for its inputs into the sink.</summary>
public delegate void BackwardFn(Tensor gradOutput, GradSink sink);

/// <summary>
/// One recorded op: its backward closure, its inputs, and the gradient slot of its output. An input that requires grad is
/// held as its leaf tensor (parameters, whose gradient lands in <see cref="Tensor.Grad"/>) or as the node that produced it
/// — never as the intermediate tensor itself, so the graph keeps an activation alive only if some closure saved it.
/// </summary>
internal sealed class Node
{
    public Node(string op, BackwardFn backward, Tensor?[] inputs, int[] outputShape)
    {
        Op = op;
        Backward = backward;
        OutputShape = outputShape;
        Leaves = new Tensor?[inputs.Length];
        Producers = new Node?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] is not { } t) continue;
            if (t.GradFn is { } producer) Producers[i] = producer; else Leaves[i] = t;
        }
    }

    public string Op { get; }
    public BackwardFn? Backward;
    /// <summary>The thread count in force when the op was recorded (≤ 0: none); its backward runs with the same.</summary>
    public readonly int Threads = ExecutionScope.RequestedThreads;
    /// <summary>Input i's leaf tensor (null when input i needs no gradient or is an intermediate).</summary>
    public Tensor?[] Leaves;
    /// <summary>The node that produced input i (null when input i needs no gradient or is a leaf).</summary>
    public Node?[] Producers;
    /// <summary>The shape of the op's output (a private copy).</summary>
    public readonly int[] OutputShape;
    /// <summary>Gradient of the output being accumulated during one Backward call.</summary>
    public Tensor? PendingGrad;
    /// <summary>PendingGrad may be mutated in place (false when it aliases another buffer).</summary>
    public bool PendingOwned;
    public bool Freed;

    public void Free()
    {
        Backward = null;
        Leaves = [];
        Producers = [];
        Freed = true;
    }
}

/// <summary>
/// Where a backward rule delivers input gradients. Gradients accumulate: into <see cref="Tensor.Grad"/> for leaves,
/// into a pending buffer for intermediate tensors (consumed when the engine reaches their own node).
/// </summary>
public readonly struct GradSink
{
    readonly Tensor?[] _leaves;
    readonly Node?[] _producers;
    readonly GradBufferPool? _pool;

    internal GradSink(Tensor?[] leaves, Node?[] producers, GradBufferPool? pool = null) { _leaves = leaves; _producers = producers; _pool = pool; }

    /// <summary>Whether input <paramref name="i"/> wants a gradient.</summary>
    public bool Needs(int i) => _leaves[i] != null || _producers[i] != null;

    /// <summary>
    /// Adds <paramref name="g"/> (same shape as input i) to its gradient. <paramref name="owned"/> = false means g aliases
    /// a buffer someone else may use (e.g. the incoming gradient), so it is never mutated in place.
    /// </summary>
    public void Add(int i, Tensor g, bool owned)
    {
        var leaf = _leaves[i]; var node = _producers[i];
        if (leaf == null && node == null) return;
        int[] shape = leaf != null ? leaf.ShapeRef : node!.OutputShape;
        if (!g.ShapeRef.AsSpan().SequenceEqual(shape))
            throw new AutogradException($"Internal error: gradient of shape {Tensor.FormatShape(g.Shape)} for input {i} of shape {Tensor.FormatShape(shape)}.");
        if (!g.IsContiguous) { g = g.Detach().Contiguous(); owned = true; }
        if (leaf != null)
        {
            if (leaf.Grad == null) leaf.Grad = owned ? g : Copy(g, leaf.ShapeArray);
            else { var dst = leaf.Grad.AsSpan(); System.Numerics.Tensors.TensorPrimitives.Add(dst, g.ContiguousSpan(), dst); }
            return;
        }
        if (node!.PendingGrad == null) { node.PendingGrad = g; node.PendingOwned = owned; return; }
        if (!node.PendingOwned) MakeOwned(node);
        var p = node.PendingGrad!.AsSpan();
        System.Numerics.Tensors.TensorPrimitives.Add(p, g.ContiguousSpan(), p);
    }

    /// <summary>
    /// A writable contiguous buffer holding input i's gradient so far. <paramref name="beta"/> is 0 when the buffer is fresh
    /// (uninitialised: overwrite it) and 1 when it already holds a gradient (accumulate into it, as GEMM's beta).
    /// </summary>
    public Span<float> Target(int i, out float beta)
    {
        var leaf = _leaves[i]; var node = _producers[i];
        if (leaf != null)
        {
            if (leaf.Grad == null) { leaf.Grad = Tensor.Empty(leaf.ShapeArray); beta = 0f; }
            else beta = 1f;
            return leaf.Grad.AsSpan();
        }
        if (node == null) throw new InvalidOperationException("Target requested for an input that needs no gradient.");
        if (node.PendingGrad == null)
        {
            var shape = (int[])node.OutputShape.Clone();
            node.PendingGrad = _pool?.Rent(shape) ?? Tensor.Empty(shape);
            node.PendingOwned = true;
            beta = 0f;
        }
        else { if (!node.PendingOwned) MakeOwned(node); beta = 1f; }
        return node.PendingGrad.AsSpan();
    }

    /// <summary>The tensor behind <see cref="Target"/> (after Target was called for input i), for code that needs the array.</summary>
    public Tensor TargetTensor(int i)
    {
        var leaf = _leaves[i]; var node = _producers[i];
        if (leaf == null && node == null) throw new InvalidOperationException("No gradient target for an input that needs no gradient.");
        return (leaf != null ? leaf.Grad : node!.PendingGrad) ?? throw new InvalidOperationException("TargetTensor called before Target.");
    }

    /// <summary>Like <see cref="Target"/> but a fresh buffer is zeroed, for rules that scatter-add.</summary>
    public Span<float> TargetZeroed(int i)
    {
        var s = Target(i, out float beta);
        if (beta == 0f) s.Clear();
        return s;
    }

    static void MakeOwned(Node n)
    {
        n.PendingGrad = Copy(n.PendingGrad!, (int[])n.OutputShape.Clone());
        n.PendingOwned = true;
    }

    static Tensor Copy(Tensor g, int[] shape)
    {
        var c = Tensor.Empty(shape);
        g.ContiguousSpan().CopyTo(c.AsSpan());
        return c;
    }
}

/// <summary>
/// Gradient buffers of intermediate tensors recycled within one Backward call: once a node has consumed its output
/// gradient, that buffer (if the engine owns it and nothing aliases it) serves a later gradient of the same size, so a
/// backward through N identical layers allocates about one layer's worth of gradient buffers instead of N.
/// Inside a <see cref="TensorScope"/> a buffer the scope rented goes straight back to the scope's pool instead (it then
/// also serves the next step).
/// </summary>
internal sealed class GradBufferPool
{
    readonly Dictionary<int, Stack<float[]>> _free = [];

    public Tensor? Rent(int[] shape)
    {
        int n = Tensor.CheckedSize(shape);
        return _free.TryGetValue(n, out var stack) && stack.TryPop(out var a) ? new Tensor(a, shape) : null;
    }

    /// <summary>Takes back <paramref name="g"/>, the gradient <paramref name="node"/> just consumed, unless an input's gradient shares its storage.</summary>
    public void Return(Tensor g, Node node)
    {
        var data = g.Data;
        if (g.Offset != 0 || data.Length != g.Size || data.Length == 0) return;
        foreach (var p in node.Producers) if (p?.PendingGrad is { } pg && ReferenceEquals(pg.Data, data)) return;
        foreach (var l in node.Leaves) if (l?.Grad is { } lg && ReferenceEquals(lg.Data, data)) return;
        if (TensorScope.TryReturnEarly(data)) return;
        if (!_free.TryGetValue(data.Length, out var stack)) _free[data.Length] = stack = new Stack<float[]>();
        stack.Push(data);
    }
}

/// <summary>Reverse-mode automatic differentiation: the engine and the recording switch.</summary>
/// <remarks>
/// The recording flag is an <see cref="AsyncLocal{T}"/>: a <see cref="NoGrad"/> scope covers the code after it on the same
/// logical flow, including tasks and Parallel.For bodies started inside the scope (they inherit the execution context),
/// while other threads and requests running concurrently keep recording. A [ThreadStatic] flag would silently record
/// (and keep graphs alive) inside Parallel workers started from a no-grad scope.
/// Open the scope in the method that runs the ops: a scope opened inside an awaited async method does not reach its caller.
/// Gradient accumulation into a leaf's <see cref="Tensor.Grad"/> is not synchronised, so two Backward calls that share
/// parameters must not run concurrently (run data-parallel replicas on separate parameter copies, or serialise Backward).
/// </remarks>
public static class Autograd
{
    static readonly AsyncLocal<bool> Disabled = new();

    /// <summary>
    /// Records a custom op: when recording is on and any input requires grad, <paramref name="result"/> (a freshly computed tensor)
    /// gets a graph node whose <paramref name="backward"/> receives the output gradient and delivers input i's gradient through
    /// <see cref="GradSink.Add"/> / <see cref="GradSink.Target"/>. Returns <paramref name="result"/>.
    /// </summary>
    /// <remarks>Keep in the closure only what the backward needs (use Detach() of inputs); it is released after Backward.</remarks>
    public static Tensor Record(Tensor result, string op, BackwardFn backward, params Tensor?[] inputs) =>
        Tensor.Record(result, op, backward, (Tensor?[])inputs.Clone());

    /// <summary>True when ops record a graph (the default); false inside <see cref="NoGrad"/>.</summary>
    public static bool IsEnabled => !Disabled.Value;

    /// <summary>An inference scope: ops inside record nothing and keep no references for backward. Dispose to restore.</summary>
    public static IDisposable NoGrad() => new Scope(disable: true);

    /// <summary>Re-enables recording inside a <see cref="NoGrad"/> scope (e.g. for a training step called from inference code).</summary>
    public static IDisposable EnableGrad() => new Scope(disable: false);

    sealed class Scope : IDisposable
    {
        readonly bool _previous;
        bool _disposed;
        public Scope(bool disable) { _previous = Disabled.Value; Disabled.Value = disable; }
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Disabled.Value = _previous;
        }
    }

    /// <summary>
    /// Computes gradients of <paramref name="root"/> with respect to every leaf that requires grad, adding them to the
    /// leaves' <see cref="Tensor.Grad"/> (gradients accumulate across calls until ZeroGrad).
    /// </summary>
    /// <remarks>
    /// Nodes run in reverse topological order, each once, after all gradients flowing into its output are summed.
    /// Unless <paramref name="retainGraph"/> is true, each node drops its closure (and the activations it holds) once run,
    /// so a second Backward through the same graph throws <see cref="AutogradException"/>.
    /// </remarks>
    public static void Backward(Tensor root, Tensor? gradOutput = null, bool retainGraph = false)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!root.RequiresGrad)
            throw new AutogradException($"Backward called on {root.Describe()} which does not require grad (it was computed without any parameter requiring grad, or inside Autograd.NoGrad()).");
        if (gradOutput == null)
        {
            if (root.Size != 1)
                throw new AutogradException($"Backward without a gradient needs a one-element output; {root.Describe()} has {root.Size} elements. Pass gradOutput or reduce (e.g. Sum/Mean) first.");
            gradOutput = Tensor.Full(1f, root.ShapeArray);
        }
        else if (!gradOutput.Shape.SequenceEqual(root.Shape))
            throw ShapeMismatchException.For("Backward", root.Shape, gradOutput.Shape, "gradOutput must have the output's shape");

        if (root.IsLeaf)
        {
            new GradSink([root], [null]).Add(0, gradOutput.Detach().Contiguous(), owned: false);
            root.GradReadyHook?.Invoke(root);
            return;
        }

        var order = TopologicalOrder(root.GradFn!);
        var hooked = PendingHookedLeaves(order);
        root.GradFn!.PendingGrad = gradOutput.Detach().Contiguous();
        root.GradFn.PendingOwned = false;
        // backward rules compute with plain tensor ops; nothing they do is recorded (no higher-order gradients)
        using var noGrad = NoGrad();
        var pool = new GradBufferPool();
        var profile = OpProfile.Active;
        profile?.Lap("bwd", "(graph walk)");
        try
        {
            // order lists producers before consumers; walk it backwards. A node's entry is cleared once run, so (without
            // retainGraph) the activations its closure saved become garbage as soon as they have served.
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var node = order[i];
                var g = node.PendingGrad;
                bool owned = node.PendingOwned;
                node.PendingGrad = null;
                if (g == null) { if (hooked != null) FireReadyHooks(node, hooked); continue; }
                if (node.Freed || node.Backward == null)
                    throw FreedError(node);
                // A model's ops differentiate with the thread count its forward ran with, whoever calls Backward.
                using var threads = ExecutionScope.Enter(node.Threads);
                node.Backward(g, new GradSink(node.Leaves, node.Producers, pool));
                if (hooked != null) FireReadyHooks(node, hooked);
                if (owned && !retainGraph) pool.Return(g, node);
                if (!retainGraph) { node.Free(); order[i] = null!; }
                profile?.Lap("bwd", node.Op);
            }
        }
        finally
        {
            foreach (var n in order) if (n != null) n.PendingGrad = null;
        }
    }

    /// <summary>
    /// For the leaves of the graph that have a <see cref="Tensor.GradReadyHook"/>: how many (node, input) edges still have to
    /// deliver into each; null when no leaf has a hook (the common case costs one scan of the graph).
    /// </summary>
    static Dictionary<Tensor, int>? PendingHookedLeaves(List<Node> order)
    {
        Dictionary<Tensor, int>? pending = null;
        foreach (var node in order)
            foreach (var leaf in node.Leaves)
                if (leaf?.GradReadyHook != null)
                {
                    pending ??= new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
                    pending[leaf] = pending.GetValueOrDefault(leaf) + 1;
                }
        return pending;
    }

    /// <summary>Counts down the edges <paramref name="node"/> delivered (or, having no gradient, never will) and calls the hooks of leaves now final.</summary>
    static void FireReadyHooks(Node node, Dictionary<Tensor, int> pending)
    {
        foreach (var leaf in node.Leaves)
        {
            if (leaf == null || !pending.TryGetValue(leaf, out int left)) continue;
            if (left > 1) { pending[leaf] = left - 1; continue; }
            pending.Remove(leaf);
            leaf.GradReadyHook!(leaf);
        }
    }

    static AutogradException FreedError(Node node) =>
        new($"Trying to backward through the graph a second time (at op {node.Op}); its saved activations were freed after the first Backward. Call Backward(retainGraph: true) the first time, or recompute the forward pass.");

    static List<Node> TopologicalOrder(Node root)
    {
        var order = new List<Node>();
        var visited = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Node N, int Next)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            if (node.Freed) throw FreedError(node);
            var inputs = node.Producers;
            bool pushed = false;
            for (int i = next; i < inputs.Length; i++)
            {
                var inp = inputs[i];
                if (inp == null || !visited.Add(inp)) continue;
                stack.Push((node, i + 1));
                stack.Push((inp, 0));
                pushed = true;
                break;
            }
            if (!pushed) order.Add(node);
        }
        return order;
    }
}
