using System.Runtime.ExceptionServices;
using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

/// <summary>
/// Splits row-wise work of tensor ops (softmax, layer norm, activations, dropout masks, bias adds) over
/// <see cref="ExecutionScope.Threads"/> through the kernels' fork-join helper, so kernels called inside run
/// single-threaded and calls from inside another parallel region stay on one thread (no oversubscription).
/// </summary>
internal static class Par
{
    /// <summary>Below this many elements per worker the work stays on the calling thread.</summary>
    const int MinElementsPerWorker = 1 << 15;

    /// <summary>Runs body(start, count) over [0, units) in contiguous parts; each unit is worth <paramref name="unitCost"/> elements.</summary>
    public static void For(int units, long unitCost, Action<int, int> body)
    {
        if (units <= 0) return;
        int parts = (int)Math.Min(units, Parallelism.WorkersFor(units * Math.Max(1, unitCost), MinElementsPerWorker, ExecutionScope.Threads));
        // One part still runs as a parallel region: the kernels inside then stay on this thread instead of splitting on their own.
        if (parts <= 1) { Parallelism.For(1, _ => body(0, units)); return; }
        try
        {
            Parallelism.For(parts, p =>
            {
                int start = (int)((long)units * p / parts), end = (int)((long)units * (p + 1) / parts);
                if (end > start) body(start, end - start);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            // keep the typed exception a body threw (e.g. a ShapeMismatchException) rather than the wrapper
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>Splits a flat range of <paramref name="n"/> elements at multiples of 64 (whole SIMD blocks).</summary>
    public static void ForFlat(int n, Action<int, int> body)
    {
        int blocks = (n + 63) / 64;
        For(blocks, 64, (b0, bc) =>
        {
            int start = b0 * 64, end = Math.Min(n, (b0 + bc) * 64);
            body(start, end - start);
        });
    }
}
