using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// Causal attention over left-padded keys, as transformers' GPT-2 computes it: causal mask (float32 min) plus padding mask
/// (float32 min). A query whose allowed keys are all padding saturates, so it is uniform over {j ≤ i} ∪ {real j &gt; i}.
/// </summary>
public class AttentionLeftPaddingTests
{
    [Fact]
    public void Pad_queries_are_uniform_over_earlier_keys_and_future_real_keys_and_real_queries_ignore_the_pads()
    {
        int S = 4, D = 2;
        var L = AttentionLayout.Dense(1, 1, S, S, D, D);
        var o = new AttentionOptions(1f / MathF.Sqrt(D), Causal: true);
        var r = new Random(3);
        float[] q = Enumerable.Range(0, S * D).Select(_ => (float)r.NextDouble()).ToArray(), k = Enumerable.Reverse(q).ToArray(), v = q.Select(x => 2 * x).ToArray();
        var mask = new[] { Functional.MaskedValue, Functional.MaskedValue, 0f, 0f };   // two left pads
        var ctx = new float[S * D]; var probs = new float[S * S];
        Attention.Forward(q, k, v, ctx, L, o, mask, default, default, probs);
        Assert.Equal([1 / 3f, 0f, 1 / 3f, 1 / 3f], probs[0..4]);          // pad query 0: itself and the real keys 2, 3
        Assert.Equal([0.25f, 0.25f, 0.25f, 0.25f], probs[4..8]);          // pad query 1: keys 0, 1 and the real keys
        Assert.Equal([0f, 0f, 1f, 0f], probs[8..12]);                     // first real query sees only itself
        double s2 = (q[6] * k[4] + q[7] * k[5]) / Math.Sqrt(D), s3 = (q[6] * k[6] + q[7] * k[7]) / Math.Sqrt(D);
        Assert.Equal(Math.Exp(s2) / (Math.Exp(s2) + Math.Exp(s3)), probs[14], 6);
        Assert.Equal(0f, probs[12]);

        // The autograd op gives the same context and finite gradients (a saturated row has no score gradient).
        var qt = Tensor.FromArray(q, 1, S, D); qt.RequiresGrad = true;
        var kt = Tensor.FromArray(k, 1, S, D); kt.RequiresGrad = true;
        var vt = Tensor.FromArray(v, 1, S, D); vt.RequiresGrad = true;
        var res = Functional.Attention(qt, kt, vt, 1, Tensor.FromArray(mask, 1, S), causal: true);
        Assert.Equal(ctx, res.Context.ToArray());
        res.Context.Sum().Backward();
        Assert.All(qt.Grad!.ToArray()[0..4], g => Assert.Equal(0f, g));
        Assert.All(kt.Grad!.ToArray(), g => Assert.True(float.IsFinite(g)));
    }
}
