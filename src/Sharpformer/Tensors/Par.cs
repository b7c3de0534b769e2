using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

/// <summary>
/// Splits row-wise elementwise work (softmax, layer norm, activations, dropout masks) over <see cref="Parallelism.DefaultThreads"/>.
/// GEMMs parallelise inside the kernel; without this the elementwise passes between them would run on one core.
/// </summary>
internal static class Par
{
    /// <summary>Below this many elements the work stays on the calling thread.</summary>
    const int MinElementsPerTask = 1 << 15;

    /// <summary>Runs body(start, count) over [0, units) in contiguous parts; each unit is worth <paramref name="unitCost"/> elements.</summary>
    public static void For(int units, long unitCost, Action<int, int> body)
    {
        int threads = Parallelism.DefaultThreads;
        long total = units * Math.Max(1, unitCost);
        int parts = (int)Math.Min(Math.Min(threads, units), Math.Max(1, total / MinElementsPerTask));
        if (parts <= 1) { if (units > 0) body(0, units); return; }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
        {
            int start = (int)((long)units * p / parts), end = (int)((long)units * (p + 1) / parts);
            if (end > start) body(start, end - start);
        });
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
