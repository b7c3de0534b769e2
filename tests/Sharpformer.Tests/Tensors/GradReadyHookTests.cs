using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

public sealed class GradReadyHookTests
{
    [Fact]
    public void GradReadyHook_FiresOncePerLeaf_WhenItsGradientIsFinal_BeforeTheRestOfBackwardRuns()
    {
        // y = sum((x·w + w)·u): w feeds two ops, so its gradient is final only after both; u's only after the last op.
        var x = Tensor.FromArray([1f, 2f, 3f], 3);
        var w = Tensor.FromArray([0.5f, -1f, 2f], 3); w.RequiresGrad = true;
        var u = Tensor.FromArray([3f, 1f, -2f], 3); u.RequiresGrad = true;
        var seen = new List<(string Name, float[] Grad)>();
        w.GradReadyHook = t => seen.Add(("w", t.Grad!.ToArray()));
        u.GradReadyHook = t => seen.Add(("u", t.Grad!.ToArray()));
        x.Mul(w).Add(w).Mul(u).Sum().Backward();

        Assert.Equal(["u", "w"], seen.Select(s => s.Name));   // u's op is the last of the forward, so it finishes first
        // What each hook saw is the complete gradient: du = x·w + w, dw = (x + 1)·u.
        Assert.Equal([1f, -3f, 8f], seen[0].Grad);
        Assert.Equal([6f, 3f, -8f], seen[1].Grad);
        Assert.Equal(seen[1].Grad, w.Grad!.ToArray());
    }

    [Fact]
    public void GradReadyHook_OnALeafRoot_FiresAfterItsGradientIsSet()
    {
        var w = Tensor.FromArray([2f], 1); w.RequiresGrad = true;
        float? seen = null;
        w.GradReadyHook = t => seen = t.Grad!.ToArray()[0];
        w.Backward();
        Assert.Equal(1f, seen);
    }
}
