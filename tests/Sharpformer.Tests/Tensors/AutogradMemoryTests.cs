using System.Runtime.CompilerServices;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Tensors.GradCheck;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// The graph keeps only what backward rules saved (not every intermediate tensor), and gradient buffers recycled
/// within one Backward still give the finite-difference gradients (see <see cref="GradCheck"/> for the tolerance).
/// </summary>
public class AutogradMemoryTests
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    static (Tensor Loss, WeakReference Intermediate) Build(Tensor x)
    {
        var a = x.Add(x);          // Add saves nothing for its backward, so nothing but the graph could hold a
        var loss = a.Add(x).Sum();
        return (loss, new WeakReference(a.Data));
    }

    [Fact]
    public void GraphDoesNotKeepUnsavedIntermediates()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 64).Select(i => i * 0.1f).ToArray(), 64);
        x.RequiresGrad = true;
        var (loss, weak) = Build(x);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        Assert.False(weak.IsAlive);
        loss.Backward();
        Assert.All(x.Grad!.ToArray(), g => Assert.Equal(3f, g));   // d(2x + x)/dx
    }

    // Six same-shaped layers with residual branches and views: gradient buffers of one layer are recycled by the next,
    // and views (Reshape) pass gradients that alias their input's buffer.
    [Fact]
    public void RecycledGradientBuffersGiveFiniteDifferenceGradients() => Check(x =>
    {
        var h = x[0];
        for (int l = 0; l < 6; l++)
        {
            var u = (h * x[1]).Tanh().Reshape(4, 6).Reshape(2, 12);
            h = Functional.LayerNorm(u + h, x[2], x[3], 1e-5f);
        }
        return h;
    }, [Rand(2, 12, seed: 1), Rand(2, 12, seed: 2), Rand(12, seed: 3), Rand(12, seed: 4)]);

    static Tensor Rand(int a, int b, int seed) => Tensor.Uniform(new Random(seed), -1f, 1f, a, b);
    static Tensor Rand(int a, int seed) => Tensor.Uniform(new Random(seed), -1f, 1f, a);
    static Tensor Rand(int[] shape, int seed) => Tensor.Uniform(new Random(seed), -1f, 1f, shape);
}
