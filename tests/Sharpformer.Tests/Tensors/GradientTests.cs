using Sharpformer.Tensors;
using static Sharpformer.Tests.Tensors.GradCheck;

namespace Sharpformer.Tests.Tensors;

/// <summary>Every op's backward against finite differences (see <see cref="GradCheck"/> for the tolerance).</summary>
public class GradientTests
{
    [Fact] public void AddBroadcast() => Check(x => x[0] + x[1], [Rand(1, 2, 3, 4), Rand(2, 3, 1)]);
    [Fact] public void SubBroadcast() => Check(x => x[0] - x[1], [Rand(1, 2, 3), Rand(2, 3)]);
    [Fact] public void MulBroadcast() => Check(x => x[0] * x[1], [Rand(1, 2, 3, 4), Rand(2, 4)]);
    [Fact] public void DivBroadcast() => Check(x => x[0] / (x[1].Abs() + 1f), [Rand(1, 2, 3), Rand(2, 1, 3)]);
    [Fact] public void ScalarOps() => Check(x => (x[0] * 3f + 2f) / 4f - 1f, [Rand(1, 5)]);
    [Fact] public void RDiv() => Check(x => 2f / (x[0].Abs() + 0.5f), [Rand(1, 6)]);
    [Fact] public void RSub() => Check(x => 1f - x[0], [Rand(1, 6)]);
    [Fact] public void Neg() => Check(x => -x[0], [Rand(1, 4)]);
    [Fact] public void Exp() => Check(x => x[0].Exp(), [Rand(1, 2, 3)]);
    [Fact] public void Log() => Check(x => (x[0].Abs() + 0.5f).Log(), [Rand(1, 2, 3)]);
    [Fact] public void Sqrt() => Check(x => (x[0].Abs() + 0.5f).Sqrt(), [Rand(1, 2, 3)]);
    [Fact] public void Pow() => Check(x => (x[0].Abs() + 0.5f).Pow(2.5f), [Rand(1, 7)]);
    [Fact] public void Square() => Check(x => x[0].Square(), [Rand(1, 7)]);
    [Fact] public void Sigmoid() => Check(x => x[0].Sigmoid(), [Rand(1, 7)]);
    [Fact] public void Tanh() => Check(x => x[0].Tanh(), [Rand(1, 7)]);
    [Fact] public void Relu() => Check(x => x[0].Relu(), [Tensor.FromArray([-0.7f, -0.2f, 0.3f, 0.9f, 1.4f], 5)]);
    [Fact] public void Abs() => Check(x => x[0].Abs(), [Tensor.FromArray([-0.7f, -0.2f, 0.3f, 0.9f], 4)]);
    [Fact] public void Clamp() => Check(x => x[0].Clamp(-0.5f, 0.5f), [Tensor.FromArray([-0.9f, -0.3f, 0.2f, 0.8f], 4)]);
    [Fact] public void Gelu() => Check(x => x[0].Gelu(), [Rand(1, 3, 4)]);
    [Fact] public void GeluTanh() => Check(x => x[0].GeluTanh(), [Rand(1, 3, 4)]);
    [Fact] public void SumDim() => Check(x => x[0].Sum(1), [Rand(1, 2, 3, 4)]);
    [Fact] public void SumKeepDimLast() => Check(x => x[0].Sum(-1, keepDim: true), [Rand(1, 2, 3)]);
    [Fact] public void SumAll() => Check(x => x[0].Sum(), [Rand(1, 2, 3)]);
    [Fact] public void MeanDim() => Check(x => x[0].Mean(0), [Rand(1, 3, 2)]);
    [Fact] public void MeanAll() => Check(x => x[0].Mean(), [Rand(1, 3, 2)]);
    [Fact] public void Max() => Check(x => x[0].Max(1), [Tensor.FromArray([0.1f, 0.9f, -0.3f, 0.5f, 0.2f, -0.8f], 2, 3)]);
    [Fact] public void MatMul2D() => Check(x => x[0].MatMul(x[1]), [Rand(1, 3, 4), Rand(2, 4, 5)]);
    [Fact] public void MatMulTransposedViews() => Check(x => x[0].T.MatMul(x[1].T), [Rand(1, 4, 3), Rand(2, 5, 4)]);
    [Fact] public void MatMulBatchedBroadcast() => Check(x => x[0].MatMul(x[1]), [Rand(1, 2, 3, 4), Rand(2, 4, 2)]);
    [Fact] public void MatMulHeadViews() => Check(x =>
    {
        var q = x[0].Reshape(2, 3, 2, 2).Permute(0, 2, 1, 3);  // [B,H,S,D] from [B,S,H·D]
        var k = x[1].Reshape(2, 3, 2, 2).Permute(0, 2, 3, 1);  // [B,H,D,S]
        return q.MatMul(k);
    }, [Rand(1, 2, 3, 4), Rand(2, 2, 3, 4)]);
    [Fact] public void MatMulVector() => Check(x => x[0].MatMul(x[1]), [Rand(1, 3, 4), Rand(2, 4)]);
    [Fact] public void Softmax() => Check(x => x[0].Softmax(-1), [Rand(1, 2, 5)]);
    [Fact] public void SoftmaxMiddleDim() => Check(x => x[0].Softmax(1), [Rand(1, 2, 3, 2)]);
    [Fact] public void LogSoftmax() => Check(x => x[0].LogSoftmax(-1), [Rand(1, 3, 4)]);
    [Fact] public void SoftmaxWithMask()
    {
        var mask = Tensor.FromArray([0, 0, Functional.MaskedValue, 0, Functional.MaskedValue, 0], 2, 1, 1, 3);
        Check(x => Functional.SoftmaxWithMask(x[0], mask), [Rand(1, 2, 2, 2, 3)]);
    }
    [Fact] public void LayerNorm() => Check(x => Functional.LayerNorm(x[0], x[1], x[2], 1e-5f), [Rand(1, 3, 6), Rand(2, 6), Rand(3, 6)]);
    [Fact] public void Linear() => Check(x => Functional.Linear(x[0], x[1], x[2]), [Rand(1, 2, 3, 4), Rand(2, 5, 4), Rand(3, 5)]);
    [Fact] public void LinearGelu() => Check(x => Functional.LinearGelu(x[0], x[1], x[2]), [Rand(1, 2, 3, 4), Rand(2, 5, 4), Rand(3, 5)]);
    [Fact] public void LinearGeluNoBiasMatchesComposition()
    {
        var x = Rand(1, 3, 4); var w = Rand(2, 2, 4);
        Assert.Equal(Functional.Linear(x, w).Gelu().ToArray(), Functional.LinearGelu(x, w).ToArray());
        Check(v => Functional.LinearGelu(v[0], v[1]), [x, w]);
    }
    [Fact] public void LinearNoBias() => Check(x => Functional.Linear(x[0], x[1]), [Rand(1, 3, 4), Rand(2, 2, 4)]);
    [Fact] public void Embedding() => Check(x => Functional.Embedding(x[0], [1, 3, 1, 0], 2, 2), [Rand(1, 4, 3)]);
    [Fact] public void EmbeddingAddGradientsOfTableAndPositions() =>
        Check(x => Functional.EmbeddingAdd(x[0], [1, 3, 1, 0, 2, 1], [2, 3], x[1]), [Rand(1, 4, 3), Rand(2, 3, 3)]);
    [Fact] public void Dropout()
    {
        // a fresh Random with the same seed per evaluation makes the mask identical across the finite-difference calls
        Check(x => Functional.Dropout(x[0], 0.4f, training: true, new Random(5)), [Rand(1, 20)]);
    }
    [Fact]
    public void DropoutAddGradientsAndSameBitsAsDropoutThenAdd()
    {
        var r = Rand(1, 4, 5); var x = Rand(2, 4, 5);
        Assert.Equal(r.Add(Functional.Dropout(x, 0.4f, training: true, new Random(5))).ToArray(),
            Functional.DropoutAdd(r, x, 0.4f, training: true, new Random(5)).ToArray());
        Assert.Equal(r.Add(x).ToArray(), Functional.DropoutAdd(r, x, 0.4f, training: false, new Random(5)).ToArray());
        Assert.ThrowsAny<ShapeMismatchException>(() => Functional.DropoutAdd(Rand(1, 5, 4), x, 0.4f, training: true, new Random(5)));
        Check(v => Functional.DropoutAdd(v[0], v[1], 0.4f, training: true, new Random(5)), [r, x]);
        // the residual used twice (its gradient arrives shared, then accumulates)
        Check(v => Functional.DropoutAdd(v[0], v[0] * v[1], 0.4f, training: true, new Random(5)), [Rand(3, 4, 5), Rand(4, 4, 5)]);
    }
    [Fact] public void Attention() => Check(x =>
        Functional.Attention(x[0], x[1], x[2], heads: 2, Functional.AdditiveMask([1, 1, 0, 1, 1, 1], 2, 3)).Context,
        [Rand(1, 2, 3, 4), Rand(2, 2, 3, 4), Rand(3, 2, 3, 6)]);
    // Values that need no gradient (a frozen or detached input) while queries and keys do: the backward still reads them.
    [Fact] public void AttentionWithConstantValues()
    {
        var values = Rand(3, 2, 3, 6);
        Check(x => Functional.Attention(x[0], x[1], values, heads: 2, Functional.AdditiveMask([1, 1, 0, 1, 1, 1], 2, 3)).Context,
            [Rand(1, 2, 3, 4), Rand(2, 2, 3, 4)]);
    }
    [Fact] public void AttentionWithDropoutCrossLengths() => Check(x =>
        Functional.Attention(x[0], x[1], x[2], heads: 2, null, dropout: 0.3f, training: true, rng: new Random(3)).Context,
        [Rand(1, 1, 2, 4), Rand(2, 1, 3, 4), Rand(3, 1, 3, 4)]);
    [Fact] public void AttentionCausalWithKeyPadding() => Check(x =>
        Functional.Attention(x[0], x[1], x[2], heads: 2, Functional.AdditiveMask([1, 1, 1, 0, 1, 0, 1, 1], 2, 4), causal: true).Context,
        [Rand(1, 2, 4, 4), Rand(2, 2, 4, 4), Rand(3, 2, 4, 2)]);
    [Fact] public void CrossAttentionWithKeyPaddingAndDropout() => Check(x =>
        Functional.Attention(x[0], x[1], x[2], heads: 2, Functional.AdditiveMask([1, 1, 1, 1, 0, 1, 1, 0, 0, 0], 2, 5), dropout: 0.25f, training: true, rng: new Random(4)).Context,
        [Rand(1, 2, 3, 4), Rand(2, 2, 5, 4), Rand(3, 2, 5, 6)]);
    [Fact] public void CausalCrossAttentionAlignsQueriesToTheLastKeys() => Check(x =>
        Functional.Attention(x[0], x[1], x[2], heads: 1, causal: true).Context, [Rand(1, 1, 2, 3), Rand(2, 1, 4, 3), Rand(3, 1, 4, 3)]);
    [Theory]
    [InlineData(Sharpformer.Kernels.AttentionScaling.DivideScores)]
    [InlineData(Sharpformer.Kernels.AttentionScaling.ScaleQueries)]
    public void AttentionScalingOrdersWithHeadDimThree(Sharpformer.Kernels.AttentionScaling scaling) => Check(x =>
        Functional.Attention(x[0], x[1], x[2], heads: 2, scaling: scaling).Context, [Rand(1, 1, 3, 6), Rand(2, 1, 3, 6), Rand(3, 1, 3, 6)]);
    [Fact] public void FusedSelfAttentionCausalMaskedDropout() => Check(x =>
        Functional.SelfAttention(x[0], heads: 2, Functional.AdditiveMask([1, 1, 1, 0, 1, 1, 0, 0], 2, 4), dropout: 0.2f, training: true, rng: new Random(6), causal: true).Context,
        [Rand(1, 2, 4, 12)]);
    [Fact] public void CrossAttentionFusedKeysValuesWithSourcePaddingAndDropout() => Check(x =>
        Functional.CrossAttention(x[0], x[1], heads: 2, Functional.AdditiveMask([1, 1, 1, 1, 1, 1, 0, 0, 1, 0], 2, 5), dropout: 0.2f, training: true, rng: new Random(4)).Context,
        [Rand(1, 2, 3, 8), Rand(2, 2, 5, 16)]);
    [Fact] public void AttentionSameTensorForQkv() => Check(x => Functional.Attention(x[0], x[0], x[0], heads: 1).Context, [Rand(1, 1, 3, 2)]);
    [Fact] public void Views() => Check(x => x[0].Reshape(3, 4).Transpose(0, 1).Slice(0, 1, 2).Unsqueeze(0).Squeeze(0).Select(1, 2), [Rand(1, 2, 6)]);
    [Fact] public void PermuteContiguous() => Check(x => x[0].Permute(2, 0, 1).Contiguous().Reshape(-1), [Rand(1, 2, 3, 2)]);
    [Fact] public void BroadcastTo() => Check(x => x[0].BroadcastTo(2, 3, 4), [Rand(1, 3, 1)]);
    [Fact] public void Concat() => Check(x => Tensor.Concat([x[0], x[1]], 1), [Rand(1, 2, 2, 3), Rand(2, 2, 1, 3)]);
    [Fact] public void Stack() => Check(x => Tensor.Stack([x[0], x[1]], 1), [Rand(1, 2, 3), Rand(2, 2, 3)]);
    [Fact] public void MaskedFill() => Check(x => x[0].MaskedFill(Tensor.FromArray([1, 0, 0, 1], 1, 4), -5f), [Rand(1, 3, 4)]);
    [Fact] public void IndexSelect() => Check(x => x[0].IndexSelect(1, [2, 0, 2]), [Rand(1, 2, 3, 2)]);
    [Fact] public void Where() => Check(x => Tensor.Where(Tensor.FromArray([1, 0, 1], 3), x[0], x[1]), [Rand(1, 2, 3), Rand(2, 3)]);
    [Fact] public void Gather() => Check(x => x[0].Gather(1, [2, 0, 1, 1], 2, 2), [Rand(1, 2, 3)]);
    [Fact] public void CrossEntropy() => Check(x => Losses.CrossEntropy(x[0], [2, -100, 0, 1]), [Rand(1, 4, 3)]);
    [Fact] public void CrossEntropyWithLabelSmoothing() => Check(x => Losses.CrossEntropy(x[0], [2, -100, 0, 1], labelSmoothing: 0.2f), [Rand(1, 4, 3)]);
    [Fact] public void BinaryCrossEntropyWithLogits() => Check(x => Losses.BinaryCrossEntropyWithLogits(x[0], Tensor.FromArray([1, 0, 0.3f, 1], 2, 2)), [Rand(1, 2, 2)]);
    [Fact] public void Mse() => Check(x => Losses.Mse(x[0], x[1]), [Rand(1, 2, 3), Rand(2, 2, 3)]);
    [Fact] public void SharedInputAccumulates() => Check(x => x[0] * x[0] + x[0].Exp(), [Rand(1, 5)]);

    static Tensor Cube(Tensor x)
    {
        var xd = x.Contiguous().ToArray();
        var y = Tensor.FromArray(xd.Select(v => v * v * v).ToArray(), x.ShapeArray);
        return Autograd.Record(y, "Cube", (g, s) =>
        {
            var dx = s.Target(0, out float beta);
            var gs = g.AsSpan();
            for (int i = 0; i < dx.Length; i++) dx[i] = beta * dx[i] + 3 * xd[i] * xd[i] * gs[i];
        }, x);
    }

    [Fact] public void CustomOpThroughAutogradRecord() => Check(x => Cube(x[0]) + x[0], [Rand(1, 2, 3)]);
}
