using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

/// <summary>
/// Splits row-wise work of tensor ops (softmax, layer norm, activations, dropout masks, bias adds) over
/// <see cref="ExecutionScope.Threads"/> through the kernels' fork-join helper, so kernels called inside run
/// single-threaded and calls from inside another parallel region stay on one thread (no oversubscription).
/// </summary>
internal static class Par
{
    /// <summary>
    /// Runs body(start, count) over [0, units) in chunks of about 32K elements (each unit is worth <paramref name="unitCost"/>
    /// elements) handed out dynamically, so a descheduled thread does not stall the op.
    /// </summary>
    public static void For(int units, long unitCost, Action<int, int> body) => ForChunks(units, unitCost, (_, start, count) => body(start, count));

    /// <summary>
    /// As <see cref="For"/>, with the chunk index: the cut does not depend on the thread count, so per-chunk partial sums
    /// reduced in chunk order are the same bits on any number of threads. Returns the number of chunks (= <see cref="Chunks"/>).
    /// </summary>
    public static int ForChunks(int units, long unitCost, Action<int, int, int> body)
    {
        if (units <= 0) return 0;
        // Below one chunk of work this still runs as a (single-worker) parallel region: the kernels inside then stay on
        // this thread instead of splitting on their own.
        return Parallelism.ForChunks(units, Parallelism.RowsPerChunk(unitCost), ExecutionScope.Threads, (c, lo, hi) => body(c, lo, hi - lo));
    }

    /// <summary>Runs body(start, count) over [0, units) in chunks of exactly <paramref name="unitsPerChunk"/> units (the last shorter), handed out dynamically.</summary>
    public static void ForBlocks(int units, int unitsPerChunk, Action<int, int> body) =>
        Parallelism.ForChunks(units, unitsPerChunk, ExecutionScope.Threads, (_, lo, hi) => body(lo, hi - lo));

    /// <summary>How many chunks <see cref="ForChunks"/> cuts <paramref name="units"/> into.</summary>
    public static int Chunks(int units, long unitCost)
    {
        int per = Parallelism.RowsPerChunk(unitCost);
        return units <= 0 ? 0 : (int)(((long)units + per - 1) / per);
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
