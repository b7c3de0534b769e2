using System.Numerics.Tensors;
using Sharpformer.Nn;

namespace Sharpformer.Optim;

/// <summary>Gradient clipping.</summary>
public static class GradClip
{
    /// <summary>
    /// Scales all gradients by min(1, maxNorm/(‖g‖₂ + 1e-6)) where ‖g‖₂ is the norm of all gradients concatenated, as
    /// torch.nn.utils.clip_grad_norm_. Returns the total norm before clipping. Parameters without gradient are ignored.
    /// </summary>
    /// <remarks>
    /// ‖g‖₂ = √(Σ_p ‖g_p‖²) with each ‖g_p‖ in float32 (torch reduces per tensor first), the sum of squares in double.
    /// The coefficient maxNorm/(‖g‖₂ + 1e-6) is formed in double and rounded once.
    /// </remarks>
    public static float ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        var grads = parameters.Where(p => p.Grad != null).Select(p => p.Grad!).ToList();
        if (grads.Count == 0) return 0f;
        float total = GlobalNorm(grads);
        float coef = (float)(maxNorm / (total + 1e-6));
        if (coef < 1f)
            foreach (var g in grads) { var s = g.AsSpan(); TensorPrimitives.Multiply(s, coef, s); }
        return total;
    }

    /// <summary>The L2 norm of all gradients concatenated, computed as in <see cref="ClipGradNorm"/>, without clipping.</summary>
    public static float GlobalNorm(IEnumerable<Parameter> parameters)
        => GlobalNorm(parameters.Where(p => p.Grad != null).Select(p => p.Grad!));

    static float GlobalNorm(IEnumerable<Sharpformer.Tensors.Tensor> grads)
    {
        double sq = 0;
        foreach (var g in grads)
        {
            float n = TensorPrimitives.Norm(g.AsSpan());
            sq += (double)n * n;
        }
        return MathF.Sqrt((float)sq);
    }
}
