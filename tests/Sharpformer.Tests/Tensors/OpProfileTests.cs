using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// An <see cref="OpProfile"/> charges every recorded op of the forward, every node of the backward and the caller's own laps,
/// once per call, to (phase, op) rows — and only on the logical flow that entered it. Counts are asserted, never times.
/// </summary>
public class OpProfileTests
{
    static (Tensor X, Tensor W, Tensor B) Inputs()
    {
        var r = new Random(3);
        var x = Tensor.Uniform(r, -1, 1, 6, 256); var w = Tensor.Uniform(r, -1, 1, 5, 256);
        var b = Tensor.Uniform(r, -1, 1, 5);   // k = 256: one GEMM, then the epilogue
        w.RequiresGrad = true; b.RequiresGrad = true;
        return (x, w, b);
    }

    [Fact]
    public void ChargesEachForwardOpBackwardNodeGemmPartAndCallerLapOncePerCall()
    {
        var (x, w, b) = Inputs();
        var profile = new OpProfile();
        using (OpProfile.Enter(profile))
            for (int step = 0; step < 2; step++)
            {
                Losses.CrossEntropy(Functional.LinearGelu(x, w, b), [0, 1, 2, 3, 4, -100]).Backward();
                profile.Lap("step", "optimizer");
            }
        var rows = profile.Rows.ToDictionary(r => (r.Phase, r.Op), r => r.Count);
        Assert.Equal(2, rows[("fwd", "GEMM x·Wᵀ 256→5")]);
        Assert.Equal(2, rows[("fwd", "LinearGelu")]);
        Assert.Equal(2, rows[("fwd", "CrossEntropy")]);
        Assert.Equal(2, rows[("bwd", "CrossEntropy")]);
        Assert.Equal(2, rows[("bwd", "GELU backward")]);
        Assert.Equal(2, rows[("bwd", "GEMM dW=dYᵀ·X 256→5")]);
        Assert.Equal(2, rows[("bwd", "LinearGelu")]);
        Assert.Equal(2, rows[("step", "optimizer")]);
        Assert.False(rows.ContainsKey(("bwd", "GEMM dX=dY·W 256→5")));   // x needs no gradient
        Assert.All(profile.Rows, r => Assert.True(r.CpuMilliseconds >= 0 && r.WallMilliseconds >= 0));
    }

    [Fact]
    public void RecordsNothingOutsideItsScope()
    {
        var (x, w, b) = Inputs();
        var profile = new OpProfile();
        using (OpProfile.Enter(profile)) { }
        Functional.Linear(x, w, b).Sum().Backward();
        Assert.Empty(profile.Rows);
    }
}
