using Sharpformer.Tensors;
using static Sharpformer.Tests.Tensors.GradCheck;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// The backward-through-time of <see cref="Functional.GruRecurrence"/> / <see cref="Functional.LstmRecurrence"/> against finite
/// differences (see <see cref="GradCheck"/>), for every input, forward and reverse, with and without lengths, with a projection.
/// The probed output is [outputs; h_n; c_n] flattened, so both the per-step outputs and the final states carry gradient.
/// </summary>
public class RecurrenceGradientTests
{
    const int T = 3, B = 2, H = 3;

    static Tensor All(RecurrenceResult r) => Tensor.Concat(
        r.LastCell == null ? [r.Output.Reshape(-1), r.LastHidden.Reshape(-1)] : [r.Output.Reshape(-1), r.LastHidden.Reshape(-1), r.LastCell.Reshape(-1)], 0);

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void GruRecurrence(bool reverse, bool packed)
    {
        int[]? lengths = packed ? [1, 3] : null;
        Check(x => All(Functional.GruRecurrence(x[0], x[1], x[2], x[3], lengths, reverse)),
            [Rand(1, T, B, 3 * H), Rand(2, 3 * H, H), Rand(3, 3 * H), Rand(4, B, H)]);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void LstmRecurrence(bool reverse, bool packed)
    {
        int[]? lengths = packed ? [3, 2] : null;
        Check(x => All(Functional.LstmRecurrence(x[0], x[1], x[2], null, x[3], x[4], lengths, reverse)),
            [Rand(1, T, B, 4 * H), Rand(2, 4 * H, H), Rand(3, 4 * H), Rand(4, B, H), Rand(5, B, H)]);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void LstmRecurrenceWithProjection(bool reverse, bool packed)
    {
        const int P = 2;
        int[]? lengths = packed ? [2, 3] : null;
        Check(x => All(Functional.LstmRecurrence(x[0], x[1], x[2], x[3], x[4], x[5], lengths, reverse)),
            [Rand(1, T, B, 4 * H), Rand(2, 4 * H, P), Rand(3, 4 * H), Rand(4, P, H), Rand(5, B, P), Rand(6, B, H)]);
    }

    [Fact]
    public void GruRecurrenceWithoutBias() =>
        Check(x => All(Functional.GruRecurrence(x[0], x[1], null, x[2], [2, 3], reverse: true)), [Rand(1, T, B, 3 * H), Rand(2, 3 * H, H), Rand(4, B, H)]);

    [Fact]
    public void ZeroLengthSequenceOutputsZerosAndKeepsItsInitialState()
    {
        var h0 = Rand(4, B, H); var c0 = Rand(5, B, H);
        var gru = Functional.GruRecurrence(Rand(1, T, B, 3 * H), Rand(2, 3 * H, H), Rand(3, 3 * H), h0, [0, 3]);
        var lstm = Functional.LstmRecurrence(Rand(1, T, B, 4 * H), Rand(2, 4 * H, H), null, null, h0, c0, [0, 3], reverse: true);
        foreach (var r in new[] { gru, lstm })
            for (int t = 0; t < T; t++) Assert.Equal(new float[H], r.Output.Select(0, t).Select(0, 0).ToArray());
        Assert.Equal(h0.Select(0, 0).ToArray(), gru.LastHidden.Select(0, 0).ToArray());
        Assert.Equal(c0.Select(0, 0).ToArray(), lstm.LastCell!.Select(0, 0).ToArray());
        Assert.NotEqual(h0.Select(0, 1).ToArray(), gru.LastHidden.Select(0, 1).ToArray());
    }

    [Fact]
    public void WithoutGradientNothingIsRecordedAndValuesAreTheSame()
    {
        var x = Rand(1, T, B, 3 * H); var w = Rand(2, 3 * H, H); var h0 = Rand(3, B, H);
        w.RequiresGrad = true;
        var withGrad = Functional.GruRecurrence(x, w, null, h0, [2, 3]);
        RecurrenceResult noGrad;
        using (Autograd.NoGrad()) noGrad = Functional.GruRecurrence(x, w, null, h0, [2, 3]);
        Assert.True(withGrad.Output.RequiresGrad);
        Assert.False(noGrad.Output.RequiresGrad);
        Assert.Equal(withGrad.Output.ToArray(), noGrad.Output.ToArray());
        Assert.Equal(withGrad.LastHidden.ToArray(), noGrad.LastHidden.ToArray());
    }
}
