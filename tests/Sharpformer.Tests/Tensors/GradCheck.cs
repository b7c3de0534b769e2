using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// Compares autograd gradients with double-accumulated central differences of the float32 forward.
/// The scalar probed is L = Σᵢ wᵢ·outᵢ with fixed random weights w, so every output element's gradient matters.
/// Tolerance: |analytic − numeric| ≤ abs + rel·|numeric| (defaults abs 2e-3, rel 2e-2, step 1e-2 scaled for float32).
/// </summary>
public static class GradCheck
{
    public static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, float step = 1e-2f, double abs = 2e-3, double rel = 2e-2, int seed = 7)
    {
        foreach (var t in inputs) { t.RequiresGrad = true; t.ZeroGrad(); }
        var output = f(inputs);
        var rng = new Random(seed);
        var w = Tensor.Uniform(rng, -1f, 1f, output.ShapeArray);
        var loss = (output * w).Sum();
        loss.Backward();
        var wa = w.ToArray();

        double Eval()
        {
            using var _ = Autograd.NoGrad();
            var o = f(inputs).ToArray();
            double s = 0;
            for (int i = 0; i < o.Length; i++) s += (double)o[i] * wa[i];
            return s;
        }

        for (int ti = 0; ti < inputs.Length; ti++)
        {
            var t = inputs[ti];
            Assert.NotNull(t.Grad);
            var analytic = t.Grad!.ToArray();
            var data = t.AsSpan().ToArray();
            for (int i = 0; i < data.Length; i++)
            {
                float orig = data[i];
                t.AsSpan()[i] = orig + step; double up = Eval();
                t.AsSpan()[i] = orig - step; double down = Eval();
                t.AsSpan()[i] = orig;
                double numeric = (up - down) / (2 * step);
                double err = Math.Abs(analytic[i] - numeric);
                Assert.True(err <= abs + rel * Math.Abs(numeric),
                    $"input {ti} element {i}: analytic {analytic[i]} vs numeric {numeric} (err {err})");
            }
        }
    }

    public static Tensor Rand(int seed, params int[] shape) => Tensor.Uniform(new Random(seed), -1f, 1f, shape);
}
