using Sharpformer.Nn;

namespace Sharpformer.Optim;

/// <summary>Gradient clipping.</summary>
public static class GradClip
{
    /// <summary>
    /// Scales all gradients by min(1, maxNorm/(‖g‖₂ + 1e-6)) where ‖g‖₂ is the norm of all gradients concatenated, as
    /// torch.nn.utils.clip_grad_norm_. Returns the total norm before clipping. Parameters without gradient are ignored.
    /// </summary>
    public static float ClipGradNorm(IEnumerable<Parameter> parameters, float maxNorm)
    {
        var grads = parameters.Where(p => p.Grad != null).Select(p => p.Grad!).ToList();
        if (grads.Count == 0) return 0f;
        double sq = 0;
        foreach (var g in grads)
        {
            var s = g.AsSpan();
            // float sum per tensor is accurate enough here (torch also reduces per tensor in float32); accumulate in double across tensors
            sq += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(s);
        }
        float total = (float)Math.Sqrt(sq);
        float coef = maxNorm / (total + 1e-6f);
        if (coef < 1f)
            foreach (var g in grads) { var s = g.AsSpan(); System.Numerics.Tensors.TensorPrimitives.Multiply(s, coef, s); }
        return total;
    }
}
