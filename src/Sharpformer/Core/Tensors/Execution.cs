using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

/// <summary>How a model or a call runs its kernels; carried by the model, the pipeline options and the trainer arguments.</summary>
/// <param name="Threads">Kernel threads; ≤ 0 leaves the choice to the caller's <see cref="ExecutionScope"/>, and without one
/// every logical processor is used.</param>
/// <param name="Bf16">Mixed precision: every <see cref="Functional.Linear"/> (and LinearGelu/LinearRelu, and GPT-2's
/// <see cref="Nn.Conv1D"/> through it) multiplies in bfloat16
/// with fp32 sums — forward x·Wᵀ and, for training, dX = dY·W and dW = dYᵀ·X (<see cref="Kernels.Bf16Gemm"/>). Parameters,
/// gradients, optimizer state, layer norm, softmax, attention, losses and reductions stay fp32 (HF <c>TrainingArguments.bf16</c>,
/// torch autocast's bf16 list reduced to the linear layers). false leaves the choice to the caller's scope.</param>
public sealed record ExecutionOptions(int Threads = 0, bool Bf16 = false)
{
    /// <summary>No preference: the surrounding scope's thread count, else every logical processor.</summary>
    public static ExecutionOptions Default { get; } = new();

    /// <summary>The environment variable apps read at their edge (CLI, server, bench) for a default thread count.</summary>
    public const string ThreadsVariable = "SHARPFORMER_THREADS";

    /// <summary>
    /// <paramref name="threads"/> when it is positive, else <see cref="ThreadsVariable"/> when set to a positive integer,
    /// else no preference. Library code never reads the environment; an app calls this once where it parses its options.
    /// </summary>
    public static ExecutionOptions FromEnvironment(int threads = 0)
    {
        if (threads > 0) return new(threads);
        return int.TryParse(Environment.GetEnvironmentVariable(ThreadsVariable), out var t) && t > 0 ? new(t) : Default;
    }

    /// <summary>These options with bf16 linear layers switched on when <paramref name="bf16"/> (else unchanged).</summary>
    public ExecutionOptions WithBf16(bool bf16) => bf16 && !Bf16 ? this with { Bf16 = true } : this;
}

/// <summary>
/// The thread count tensor ops hand to the kernels: that of the innermost <see cref="Enter(ExecutionOptions?)"/> on the current logical flow.
/// Models enter their <see cref="ExecutionOptions"/> in their forward, the trainer its arguments' around each step, so two
/// models with different counts run side by side each with its own; kernels themselves take the count as an argument.
/// </summary>
/// <remarks>
/// An <see cref="AsyncLocal{T}"/> like <see cref="Autograd.NoGrad"/>'s flag: a scope covers the code after it on the same
/// logical flow (tasks and Parallel bodies started inside it too), never other threads or requests. Each recorded autograd op
/// keeps the count it ran with, and <see cref="Autograd.Backward"/> runs its backward with that count.
/// </remarks>
public static class ExecutionScope
{
    static readonly AsyncLocal<int> Requested = new();
    static readonly AsyncLocal<bool> RequestedBf16 = new();

    /// <summary>The thread count in force: the innermost scope's, or every logical processor outside any scope.</summary>
    public static int Threads => Parallelism.Resolve(Requested.Value);

    /// <summary>The innermost scope's count, 0 outside any scope (recorded with each autograd op for its backward).</summary>
    internal static int RequestedThreads => Requested.Value;

    /// <summary>True inside a scope entered with <see cref="ExecutionOptions.Bf16"/>: linear layers multiply in bf16. Each
    /// recorded Linear keeps the precision its forward ran with for its backward.</summary>
    public static bool Bf16 => RequestedBf16.Value;

    /// <summary>Runs the code until disposal with <paramref name="options"/>' thread count and precision; no preference
    /// (threads ≤ 0, Bf16 false) keeps the current one, so a model's default options inside a bf16 trainer stay bf16.</summary>
    public static IDisposable Enter(ExecutionOptions? options)
    {
        if (options is not { Bf16: true } || RequestedBf16.Value) return Enter(options?.Threads ?? 0);
        return new Bf16Scope(Enter(options.Threads));
    }

    sealed class Bf16Scope : IDisposable
    {
        readonly IDisposable _threads;
        bool _disposed;
        public Bf16Scope(IDisposable threads) { _threads = threads; RequestedBf16.Value = true; }
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            RequestedBf16.Value = false;
            _threads.Dispose();
        }
    }

    /// <inheritdoc cref="Enter(ExecutionOptions?)"/>
    /// <remarks>Entering the count already in force changes nothing and allocates nothing (autograd enters one per backward node).</remarks>
    public static IDisposable Enter(int threads) => threads > 0 && threads != Requested.Value ? new Scope(threads) : NoChange.Instance;

    sealed class Scope : IDisposable
    {
        readonly int _previous;
        bool _disposed;
        public Scope(int threads) { _previous = Requested.Value; Requested.Value = threads; }
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Requested.Value = _previous;
        }
    }

    sealed class NoChange : IDisposable
    {
        public static readonly NoChange Instance = new();
        public void Dispose() { }
    }
}
