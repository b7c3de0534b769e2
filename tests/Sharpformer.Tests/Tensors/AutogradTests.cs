using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

public class AutogradTests
{
    [Fact]
    public void GradientsAccumulateAcrossBackwardCallsUntilZeroGrad()
    {
        var w = Tensor.FromArray([1f, 2f, 3f], 3); w.RequiresGrad = true;
        (w * w).Sum().Backward();
        Assert.Equal([2f, 4, 6], w.Grad!.ToArray());
        (w * w).Sum().Backward();
        Assert.Equal([4f, 8, 12], w.Grad!.ToArray());
        w.ZeroGrad();
        Assert.Null(w.Grad);
        (w * 3f).Sum().Backward();
        Assert.Equal([3f, 3, 3], w.Grad!.ToArray());
    }

    [Fact]
    public void NoGradRecordsNothingAndAllocatesNoGradients()
    {
        var w = Tensor.Ones(2, 2); w.RequiresGrad = true;
        Tensor y;
        using (Autograd.NoGrad())
        {
            Assert.False(Autograd.IsEnabled);
            y = Functional.Linear(Tensor.Ones(3, 2), w).Gelu().Sum();
        }
        Assert.True(Autograd.IsEnabled);
        Assert.False(y.RequiresGrad);
        Assert.True(y.IsLeaf);
        Assert.Throws<AutogradException>(() => y.Backward());
        Assert.Null(w.Grad);
    }

    [Fact]
    public void NoGradFlowsIntoParallelWorkers()
    {
        var w = Tensor.Ones(4); w.RequiresGrad = true;
        var recorded = new bool[8];
        using (Autograd.NoGrad())
            Parallel.For(0, 8, i => recorded[i] = (w * 2f).RequiresGrad);
        Assert.All(recorded, Assert.False);
        Assert.True((w * 2f).RequiresGrad);
    }

    [Fact]
    public void SecondBackwardThroughFreedGraphThrowsWithAdvice()
    {
        var w = Tensor.Ones(3); w.RequiresGrad = true;
        var loss = (w.Exp() * w).Sum();
        loss.Backward();
        var e = Assert.Throws<AutogradException>(() => loss.Backward());
        Assert.Contains("retainGraph: true", e.Message);
    }

    [Fact]
    public void RetainGraphAllowsSecondBackward()
    {
        var w = Tensor.FromArray([0.5f], 1); w.RequiresGrad = true;
        var loss = (w.Exp() * w).Sum();
        loss.Backward(retainGraph: true);
        loss.Backward();
        float g = MathF.Exp(0.5f) * 1.5f;
        Assert.Equal(2 * g, w.Grad!.Item(), 5);
    }

    [Fact]
    public void DiamondGraphSumsBothPaths()
    {
        var x = Tensor.FromArray([2f], 1); x.RequiresGrad = true;
        var h = x * 3f;             // shared intermediate
        var y = (h * h + h).Sum();  // dy/dx = (2h + 1)·3 = 39
        y.Backward();
        Assert.Equal(39f, x.Grad!.Item());
    }

    [Fact]
    public void NonScalarBackwardNeedsGradOutput()
    {
        var x = Tensor.Ones(2); x.RequiresGrad = true;
        var y = x * 2f;
        Assert.Throws<AutogradException>(() => y.Backward());
        y.Backward(Tensor.FromArray([1f, 10f], 2));
        Assert.Equal([2f, 20], x.Grad!.ToArray());
    }

    [Fact]
    public void RequiresGradOnlySettableOnLeaves()
    {
        var x = Tensor.Ones(2); x.RequiresGrad = true;
        var y = x * 2f;
        Assert.Throws<AutogradException>(() => y.RequiresGrad = false);
        Assert.False(y.Detach().RequiresGrad);
    }

    [Fact]
    public void GradientIsNotAliasedWithUpstreamBuffers()
    {
        var a = Tensor.Ones(3); a.RequiresGrad = true;
        var b = Tensor.Ones(3); b.RequiresGrad = true;
        var g = Tensor.FromArray([1f, 2f, 3f], 3);
        (a + b).Backward(g);
        a.Grad!.AsSpan()[0] = 100f;
        Assert.Equal(1f, b.Grad![0]);
        Assert.Equal(1f, g[0]);
    }

    [Fact]
    public void ConcatWithAConstantPartAndNoOpBroadcastKeepGradientsSeparate()
    {
        var a = Tensor.FromArray([1f, 2f], 1, 2); a.RequiresGrad = true;
        var c = Tensor.FromArray([5f, 6f], 1, 2);   // constant
        Tensor.Concat([c, a], 0).Sum().Backward();
        Assert.Equal([1f, 1f], a.Grad!.ToArray());

        var x = Tensor.FromArray([1f, 2f], 2); x.RequiresGrad = true;
        var g = Tensor.FromArray([3f, 4f], 2);
        var y = x.BroadcastTo(2) + x * 2f;   // the no-op broadcast's gradient aliases g; the second path must not mutate it
        y.Backward(g);
        Assert.Equal([9f, 12f], x.Grad!.ToArray());
        Assert.Equal([3f, 4f], g.ToArray());
    }
}
