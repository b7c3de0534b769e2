namespace Sharpformer.Tensors;

/// <summary>
/// Float buffers recycled between <see cref="TensorScope"/>s, so a training loop that repeats the same shapes stops
/// allocating (and stops feeding the garbage collector a step's worth of large arrays) after its first step.
/// </summary>
/// <remarks>
/// The pool belongs to whoever creates it (the trainer keeps one for its lifetime) and is
/// released with it: there is no process-wide pool that would hold a step's worth of memory after training ends.
/// Buffers are bucketed by exact element count, so a tensor's <see cref="Tensor.Data"/> still has exactly
/// <see cref="Tensor.Size"/> elements. At the end of each outermost scope the pool drops, per size, as many buffers as sat
/// unused through the whole scope (a low-water mark), so shapes that stop recurring (dynamic padding) are not kept.
/// A pool is not thread-safe: use one per training thread (a scope is bound to the thread that opened it anyway).
/// </remarks>
public sealed class TensorPool
{
    sealed class Bucket
    {
        public readonly Stack<float[]> Free = new();
        public int LowWater;   // fewest free buffers seen since the last trim: that many were never needed
    }

    readonly Dictionary<int, Bucket> _buckets = [];

    /// <summary>Opens a scope on the current thread whose tensors draw their buffers from this pool (see <see cref="TensorScope"/>).</summary>
    public TensorScope Scope() => new(this);

    /// <summary>Bytes held in free buffers (for diagnostics and tests).</summary>
    public long FreeBytes
    {
        get
        {
            long n = 0;
            foreach (var (size, b) in _buckets) n += (long)size * b.Free.Count * sizeof(float);
            return n;
        }
    }

    internal float[] Rent(int length)
    {
        if (_buckets.TryGetValue(length, out var b) && b.Free.TryPop(out var a))
        {
            if (b.Free.Count < b.LowWater) b.LowWater = b.Free.Count;
            return a;
        }
        return GC.AllocateUninitializedArray<float>(length);
    }

    internal void Return(float[] a)
    {
        if (!_buckets.TryGetValue(a.Length, out var b)) _buckets[a.Length] = b = new Bucket();
        b.Free.Push(a);
    }

    /// <summary>Drops the buffers of each size that no rent needed since the previous trim.</summary>
    internal void Trim()
    {
        List<int>? empty = null;
        foreach (var (size, b) in _buckets)
        {
            for (int i = 0; i < b.LowWater && b.Free.Count > 0; i++) b.Free.Pop();
            b.LowWater = b.Free.Count;
            if (b.Free.Count == 0) (empty ??= []).Add(size);
        }
        if (empty != null) foreach (var size in empty) _buckets.Remove(size);
    }
}

/// <summary>
/// A region of code (one training step: forward, loss, backward) whose temporary tensors give their buffers back to a
/// <see cref="TensorPool"/> when it ends. Open with <c>using (pool.Scope()) { … }</c>.
/// </summary>
/// <remarks>
/// <para>Why a scope and not automatic deadness: an activation saved for the backward may also be an output the caller
/// holds (logits, hidden states, attentions); the tensor layer cannot prove that nobody holds it, the garbage collector
/// can only do so later and at a price. The scope states the lifetime instead: every tensor created on this thread while
/// the scope is open lives until the scope ends, unless it escapes explicitly.</para>
/// <para>When the scope ends: (1) every node of the autograd graph recorded inside it is freed, so a later Backward through
/// it throws the usual freed-graph <see cref="AutogradException"/> instead of reading recycled buffers; (2) every tensor
/// created inside it whose buffer came from the pool is <em>released</em>: reading its data throws
/// <see cref="TensorReleasedException"/> (this covers its views too), so a held reference fails loudly and never shows another
/// step's values; (3) those buffers return to the pool for the next scope.</para>
/// <para>What escapes: tensors marked with <see cref="Tensor.Keep"/>; gradients stored in a leaf's <see cref="Tensor.Grad"/>
/// (parameter gradients); leaves whose <see cref="Tensor.RequiresGrad"/> was set (parameters); tensors over arrays the
/// pool does not own (<see cref="Tensor.FromArray"/>, views of parameters). Plain values read inside the scope
/// (<see cref="Tensor.Item"/>, <see cref="Tensor.ToArray"/>) are copies and stay valid. Raw <see cref="Tensor.Data"/> arrays
/// taken from a scoped tensor must not be kept past the scope.</para>
/// <para>During a Backward inside a scope, a gradient buffer the engine has consumed returns to the pool at once (it was
/// never visible outside the engine; a backward function must not keep its incoming gradient after it returns).</para>
/// <para>The scope is bound to the thread that opened it (tensors made on Parallel.For workers are ordinary allocations) and
/// scopes nest: dispose them in reverse order on the same thread.</para>
/// </remarks>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] static TensorScope? t_current;

    enum State : byte { Out, ReturnedEarly }

    readonly TensorPool _pool;
    readonly TensorScope? _outer;
    readonly Thread _thread;
    // Buffers this scope rented and that have not escaped: Out (owned by a live tensor or an op's private buffer) or
    // ReturnedEarly (a consumed gradient already back in the pool). Tensors over either kind are released at the end.
    readonly Dictionary<float[], State> _rented = new(ReferenceEqualityComparer.Instance);
    readonly List<Tensor> _created = [];
    bool _disposed;

    internal TensorScope(TensorPool pool)
    {
        _pool = pool;
        _outer = t_current;
        _thread = Thread.CurrentThread;
        t_current = this;
    }

    internal static TensorScope? Current => t_current;

    /// <summary>A buffer of <paramref name="length"/> floats with unspecified contents: pooled inside a scope, else a new array.</summary>
    internal static float[] RentArray(int length)
    {
        if (t_current is { } s && length > 0)
        {
            var a = s._pool.Rent(length);
            s._rented[a] = State.Out;
            return a;
        }
        return GC.AllocateUninitializedArray<float>(length);
    }

    internal static void Track(Tensor t) => t_current?._created.Add(t);

    /// <summary>Takes <paramref name="data"/> out of every open scope on this thread, so it is neither recycled nor released.</summary>
    internal static void Escape(float[] data)
    {
        for (var s = t_current; s != null; s = s._outer)
        {
            if (!s._rented.TryGetValue(data, out var state)) continue;
            if (state == State.ReturnedEarly)
                throw new InvalidOperationException("A gradient buffer the autograd engine already consumed cannot be kept: a backward function must not keep its incoming gradient after it returns.");
            s._rented.Remove(data);
            return;
        }
    }

    /// <summary>Gives a consumed gradient buffer back to the pool before the scope ends, if this thread's scope rented it.</summary>
    internal static bool TryReturnEarly(float[] data)
    {
        if (t_current is not { } s || !s._rented.TryGetValue(data, out var state) || state != State.Out) return false;
        s._rented[data] = State.ReturnedEarly;
        s._pool.Return(data);
        return true;
    }

    /// <summary>Frees the scope's graph, releases its tensors and returns their buffers to the pool.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (!ReferenceEquals(t_current, this) || Thread.CurrentThread != _thread)
            throw new InvalidOperationException("A TensorScope must be disposed on the thread that opened it, after the scopes opened inside it.");
        _disposed = true;
        t_current = _outer;
        foreach (var t in _created)
        {
            t.GradFn?.Free();
            if (t.DataOrNull is { } d && _rented.ContainsKey(d)) t.Release();
        }
        foreach (var (a, state) in _rented) if (state == State.Out) _pool.Return(a);
        _created.Clear();
        _rented.Clear();
        // trim once per outermost use of this pool, i.e. once per step, not after every nested scope
        for (var s = _outer; s != null; s = s._outer) if (ReferenceEquals(s._pool, _pool)) return;
        _pool.Trim();
    }
}
