using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>Row-broadcast helpers that fuse what a Linear layer does around its GEMM.</summary>
public static class Elementwise
{
    /// <summary>x[r, :] += bias for each of <paramref name="rows"/> rows of length <paramref name="cols"/>.</summary>
    public static void AddBias(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols)
    {
        Check(x.Length, bias.Length, rows, cols, nameof(x));
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            TensorPrimitives.Add(row, bias[..cols], row);
        }
    }

    /// <summary>dbias += Σ_r dy[r, :] (the bias gradient of a Linear layer; accumulates like every gradient).</summary>
    public static void BiasGradient(ReadOnlySpan<float> dy, Span<float> dbias, int rows, int cols)
    {
        Check(dy.Length, dbias.Length, rows, cols, nameof(dy));
        var acc = dbias[..cols];
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(acc, dy.Slice(r * cols, cols), acc);
    }

    /// <summary>
    /// Fused bias + exact GELU: z = x[r,:] + bias, x[r,:] = GELU(z). When <paramref name="preActivation"/> is not
    /// empty, z is stored there (rows×cols) for the backward.
    /// </summary>
    /// <remarks>GELU(z) = 0.5·z·(1 + erf(z/√2)), the same vector code as <see cref="Activations.GeluErf"/>.</remarks>
    public static void AddBiasGeluErf(Span<float> x, ReadOnlySpan<float> bias, int rows, int cols, Span<float> preActivation = default, int threads = 0)
    {
        Check(x.Length, bias.Length, rows, cols, nameof(x));
        if (!preActivation.IsEmpty && preActivation.Length < (long)rows * cols)
            throw new ArgumentException($"preActivation holds {preActivation.Length} floats; {rows}×{cols} needed.", nameof(preActivation));
        if (rows == 0 || cols == 0) return;
        int xLen = x.Length, pLen = preActivation.Length;
        unsafe
        {
            fixed (float* px = x) fixed (float* pb = bias) fixed (float* pp = preActivation)
            {
                nint ax = (nint)px, ab = (nint)pb, ap = (nint)pp;
                Parallelism.Rows(rows, cols, threads, (r0, r1) =>
                {
                    var xs = new Span<float>((float*)ax, xLen); var bs = new ReadOnlySpan<float>((float*)ab, cols);
                    var ps = pLen == 0 ? default : new Span<float>((float*)ap, pLen);
                    for (int r = r0; r < r1; r++)
                    {
                        var row = xs.Slice(r * cols, cols);
                        TensorPrimitives.Add(row, bs, row);
                        if (!ps.IsEmpty) row.CopyTo(ps.Slice(r * cols, cols));
                        Activations.GeluErf(row, row);
                    }
                });
            }
        }
    }

    static void Check(int xLen, int biasLen, int rows, int cols, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"rows={rows}, cols={cols} must be non-negative.");
        if (xLen < (long)rows * cols) throw new ArgumentException($"{name} holds {xLen} floats; {rows}×{cols} = {(long)rows * cols} needed.", name);
        if (biasLen < cols) throw new ArgumentException($"bias has {biasLen} elements; {cols} needed.", "bias");
    }
}
