using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

public class TensorOpsTests
{
    static void Near(float[] expected, float[] actual, float tol = 1e-5f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void ViewsShareStorageAndIndexCorrectly()
    {
        var t = Tensor.FromArray([0, 1, 2, 3, 4, 5], 2, 3);
        var tt = t.Transpose(0, 1);
        Assert.Equal([3, 2], tt.ShapeArray);
        Assert.False(tt.IsContiguous);
        Assert.Equal([0f, 3, 1, 4, 2, 5], tt.ToArray());
        Assert.Same(t.Data, tt.Data);
        Assert.Equal([1f, 4], t.Select(1, 1).ToArray());
        Assert.Equal([1f, 2, 4, 5], t.Slice(1, 1, 2).ToArray());
        Assert.Equal([2, 1, 3], t.Unsqueeze(1).ShapeArray);
        Assert.Equal([3, 2], t.Reshape(-1, 2).ShapeArray);
        Assert.Equal([0f, 1, 2, 0, 1, 2], Tensor.FromArray([0, 1, 2], 3).BroadcastTo(2, 3).ToArray());
        Assert.Equal(5f, t[1, 2]);
        Assert.Equal([0f, 3, 1, 4, 2, 5], tt.Reshape(6).ToArray());   // reshape of a non-contiguous view copies
    }

    [Fact]
    public void BroadcastingFollowsNumpy()
    {
        var a = Tensor.FromArray([1, 2, 3], 3, 1);
        var b = Tensor.FromArray([10, 20], 2);
        Assert.Equal([11f, 21, 12, 22, 13, 23], (a + b).ToArray());
        Assert.Equal([3, 2], (a * b).ShapeArray);
        Assert.Equal([-9f, -19, -8, -18, -7, -17], (a - b).ToArray());
        Assert.Equal([0.1f, 0.05f], (Tensor.Ones(2) / b).ToArray());
    }

    [Fact]
    public void ShapeMismatchNamesOpAndBothShapes()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 3) + Tensor.Zeros(4));
        Assert.Contains("Add", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4]", e.Message);
        var m = Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 3).MatMul(Tensor.Zeros(4, 5)));
        Assert.Contains("MatMul", m.Message);
        Assert.Contains("[4, 5]", m.Message);
        Assert.IsAssignableFrom<SharpformerException>(m);
    }

    [Fact]
    public void ReductionsOverAxes()
    {
        var t = Tensor.FromArray([1, 5, 3, 4, 2, 6], 2, 3);
        Assert.Equal([5f, 7, 9], t.Sum(0).ToArray());
        Assert.Equal([9f, 12], t.Sum(1).ToArray());
        Assert.Equal([2, 1], t.Mean(1, keepDim: true).ShapeArray);
        Assert.Equal([3f, 4], t.Mean(1).ToArray());
        Assert.Equal(21f, t.Sum().Item());
        Assert.Equal(3.5f, t.Mean().Item());
        Assert.Equal([5f, 6], t.Max(1).ToArray());
        Assert.Equal([1, 2], t.ArgMax(1));
        Assert.Equal([1, 0, 1], t.ArgMax(0));
    }

    static float[] NaiveMatMul(float[] a, float[] b, int m, int k, int n)
    {
        var c = new float[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) { double s = 0; for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j]; c[i * n + j] = (float)s; }
        return c;
    }

    [Fact]
    public void MatMulMatchesNaiveIncludingTransposedAndBatchedViews()
    {
        var rng = new Random(1);
        var a = Tensor.Normal(rng, 0, 1, 5, 7); var b = Tensor.Normal(rng, 0, 1, 7, 3);
        Near(NaiveMatMul(a.ToArray(), b.ToArray(), 5, 7, 3), a.MatMul(b).ToArray(), 1e-4f);
        var bt = Tensor.Normal(rng, 0, 1, 3, 7);
        Near(NaiveMatMul(a.ToArray(), bt.T.ToArray(), 5, 7, 3), a.MatMul(bt.T).ToArray(), 1e-4f);
        // [B,S,H·D] viewed as [B,H,S,D]; scores = q·kᵀ per head
        var x = Tensor.Normal(rng, 0, 1, 2, 4, 6);
        var q = x.Reshape(2, 4, 3, 2).Permute(0, 2, 1, 3);
        var s = q.MatMul(q.Transpose(-1, -2));
        Assert.Equal([2, 3, 4, 4], s.ShapeArray);
        var qc = q.Contiguous().ToArray();
        for (int bh = 0; bh < 6; bh++)
        {
            var qm = qc.AsSpan(bh * 8, 8).ToArray();
            var qmt = Tensor.FromArray(qm, 4, 2).T.ToArray();
            Near(NaiveMatMul(qm, qmt, 4, 2, 4), s.ToArray().AsSpan(bh * 16, 16).ToArray(), 1e-4f);
        }
        // broadcast batch: [2,5,7] · [7,3]
        var ab = Tensor.Normal(rng, 0, 1, 2, 5, 7);
        var r = ab.MatMul(b).ToArray();
        for (int i = 0; i < 2; i++) Near(NaiveMatMul(ab.Select(0, i).ToArray(), b.ToArray(), 5, 7, 3), r.AsSpan(i * 15, 15).ToArray(), 1e-4f);
    }

    [Fact]
    public void SoftmaxAndLogSoftmaxValues()
    {
        var x = Tensor.FromArray([1, 2, 3, 0, 0, 0], 2, 3);
        double e = Math.E, z = 1 + e + e * e;
        Near([(float)(1 / z), (float)(e / z), (float)(e * e / z), 1 / 3f, 1 / 3f, 1 / 3f], x.Softmax().ToArray());
        Near([(float)-Math.Log(z), (float)(1 - Math.Log(z)), (float)(2 - Math.Log(z)), (float)-Math.Log(3), (float)-Math.Log(3), (float)-Math.Log(3)], x.LogSoftmax().ToArray());
        var masked = Functional.SoftmaxWithMask(x, Tensor.FromArray([0, Functional.MaskedValue, 0], 3));
        Near([(float)(1 / (1 + e * e)), 0, (float)(e * e / (1 + e * e)), 0.5f, 0, 0.5f], masked.ToArray());
    }

    [Fact]
    public void LayerNormMatchesFormula()
    {
        var x = Tensor.FromArray([1, 2, 3, 4], 1, 4);
        var y = Functional.LayerNorm(x, Tensor.FromArray([1, 1, 2, 2], 4), Tensor.FromArray([0, 0, 0, 1], 4), 1e-5f).ToArray();
        double mean = 2.5, rstd = 1 / Math.Sqrt(1.25 + 1e-5);
        Near([(float)(-1.5 * rstd), (float)(-0.5 * rstd), (float)(2 * 0.5 * rstd), (float)(2 * 1.5 * rstd + 1)], y);
        _ = mean;
    }

    [Fact]
    public void LinearIsXTimesWTransposedPlusBias()
    {
        var x = Tensor.FromArray([1, 2, 3, 4, 5, 6], 2, 3);
        var w = Tensor.FromArray([1, 0, 0, 0, 1, 1], 2, 3);   // [out=2, in=3]
        var y = Functional.Linear(x, w, Tensor.FromArray([10, 20], 2));
        Assert.Equal([11f, 25, 14, 31], y.ToArray());
    }

    [Fact]
    public void EmbeddingAddIsGatherPlusPositionRowAndRejectsAWrongPositionTable()
    {
        var w = Tensor.FromArray([0, 1, 10, 11, 20, 21], 3, 2);
        var pos = Tensor.FromArray([100, 200, 300, 400], 2, 2);
        var y = Functional.EmbeddingAdd(w, [2, 0, 1, 1], [2, 2], pos);
        Assert.Equal([2, 2, 2], y.ShapeArray);
        Assert.Equal([120f, 221, 300, 401, 110, 211, 310, 411], y.ToArray());
        Assert.ThrowsAny<ShapeMismatchException>(() => Functional.EmbeddingAdd(w, [2, 0, 1], [1, 3], pos));
    }

    [Fact]
    public void EmbeddingGathersRowsAndNamesBadIds()
    {
        var w = Tensor.FromArray([0, 1, 10, 11, 20, 21], 3, 2);
        Assert.Equal([20f, 21, 0, 1], Functional.Embedding(w, [2, 0], 2).ToArray());
        Assert.Equal([1, 2, 2], Functional.Embedding(w, [2, 0], 1, 2).ShapeArray);
        var e = Assert.ThrowsAny<SharpformerException>(() => Functional.Embedding(w, [3], 1));
        Assert.Contains("3", e.Message);
    }

    [Fact]
    public void EmbeddingPaddingRowGetsNoGradient()
    {
        var w = Tensor.Ones(3, 2); w.RequiresGrad = true;
        Functional.Embedding(w, [0, 1, 0], [3], paddingIdx: 0).Sum().Backward();
        Assert.Equal([0f, 0, 1, 1, 0, 0], w.Grad!.ToArray());
    }

    [Fact]
    public void DropoutZeroesAboutPAndScalesSurvivors()
    {
        var x = Tensor.Ones(10000);
        var y = Functional.Dropout(x, 0.25f, training: true, new Random(42)).ToArray();
        int zeros = y.Count(v => v == 0f);
        Assert.InRange(zeros, 2300, 2700);
        Assert.All(y.Where(v => v != 0f), v => Assert.Equal(1f / 0.75f, v, 6));
        Assert.Same(x, Functional.Dropout(x, 0.25f, training: false, new Random(42)));
    }

    [Fact]
    public void CrossEntropyMatchesHandValueAndIgnoresMinus100()
    {
        var logits = Tensor.FromArray([1, 2, 3, 5, 5, 5, 0, 0, 9], 3, 3);
        var loss = Losses.CrossEntropy(logits, [2, 0, -100]).Item();
        double z = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3));
        double expected = ((z - 3) + Math.Log(3)) / 2;
        Assert.Equal(expected, loss, 5);
        Assert.True(float.IsNaN(Losses.CrossEntropy(logits, [-100, -100, -100]).Item()));
        Assert.ThrowsAny<SharpformerException>(() => Losses.CrossEntropy(logits, [3, 0, 0]));
    }

    [Fact]
    public void CrossEntropyWithLabelSmoothingMatchesTorchValueAndGradient()
    {
        // /usr/bin/python3 (torch 1.13), float64:
        //   x = torch.tensor([[1., 2., 3., -1.], [5., 5., 5., 5.], [0., 0., 9., 0.5], [-2., 0.5, 1., 3.]], dtype=torch.float64, requires_grad=True)
        //   loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)(x, torch.tensor([2, 0, 1, -100])); loss.backward()
        //   print(loss.item(), x.grad.flatten().tolist())
        var logits = Tensor.FromArray([1, 2, 3, -1, 5, 5, 5, 5, 0, 0, 9, 0.5f, -2, 0.5f, 1, 3], 4, 4); logits.RequiresGrad = true;
        var loss = Losses.CrossEntropy(logits, [2, 0, 1, -100], ignoreIndex: -100, labelSmoothing: 0.1f);
        Assert.Equal(3.5813203980210693, loss.Item(), 5);
        loss.Backward();
        double[] expected = [0.02131560576580143, 0.07226083905293358, -0.08925565905604821, -0.0043207857626868474,
            -0.22499999999999998, 0.07500000000000002, 0.07500000000000002, 0.07500000000000002,
            -0.00829221524695105, -0.30829221524695105, 0.32484997156360657, -0.008265541069704377, 0, 0, 0, 0];
        var grad = logits.Grad!.ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], grad[i], 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(logits, [2, 0, 1, -100], labelSmoothing: 1.5f));
    }

    [Fact]
    public void BinaryCrossEntropyWithLogitsIsStableForLargeLogits()
    {
        var loss = Losses.BinaryCrossEntropyWithLogits(Tensor.FromArray([100f, -100f, 0f], 3), Tensor.FromArray([1f, 1f, 0.5f], 3)).Item();
        Assert.Equal((0 + 100 + Math.Log(2)) / 3, loss, 4);
        Assert.Equal(0.125f, Losses.Mse(Tensor.FromArray([1f, 2f], 2), Tensor.FromArray([1.5f, 2f], 2)).Item(), 6);
    }

    [Fact]
    public void ConcatStackMaskedFillGather()
    {
        var a = Tensor.FromArray([1, 2, 3, 4], 2, 2); var b = Tensor.FromArray([5, 6], 2, 1);
        Assert.Equal([1f, 2, 5, 3, 4, 6], Tensor.Concat([a, b], 1).ToArray());
        Assert.Equal([1f, 2, 3, 4, 1, 2, 3, 4], Tensor.Concat([a, a], 0).ToArray());
        Assert.Equal([2, 2, 2], Tensor.Stack([a, a], 1).ShapeArray);
        Assert.Equal([1f, 2, 1, 2, 3, 4, 3, 4], Tensor.Stack([a, a], 1).ToArray());
        Assert.Equal([1f, -1, 3, -1], a.MaskedFill(Tensor.FromArray([0, 1], 2), -1).ToArray());
        Assert.Equal([2f, 1, 3, 3], a.Gather(1, [1, 0, 0, 0], 2, 2).ToArray());
        Assert.Equal([3f, 4, 1, 2, 3, 4], a.IndexSelect(0, [1, 0, 1]).ToArray());
        Assert.Equal([1f, 0, 3, 0], Tensor.Where(Tensor.FromArray([1, 0], 2), a, Tensor.Zeros(1)).ToArray());
    }

    [Fact]
    public void SeededCreationIsReproducible()
    {
        Assert.Equal(Tensor.Normal(new Random(3), 0, 1, 10).ToArray(), Tensor.Normal(new Random(3), 0, 1, 10).ToArray());
        var u = Tensor.Uniform(new Random(3), -2, 2, 1000).ToArray();
        Assert.All(u, v => Assert.InRange(v, -2f, 2f));
        var n = Tensor.Normal(new Random(4), 1, 2, 20000).ToArray();
        Assert.Equal(1.0, n.Average(), 1);
        Assert.Equal(new float[] { 7, 7 }, Tensor.Full(7, 2).ToArray());
    }

    [Fact]
    public void ThrowIfNonFiniteNamesTensorAndIndex()
    {
        var t = Tensor.FromArray([1, 2, 3, float.NaN, 5, float.PositiveInfinity], 2, 3);
        var e = Assert.Throws<NonFiniteException>(() => TensorChecks.ThrowIfNonFinite(t, "logits"));
        Assert.Contains("logits", e.Message);
        Assert.Contains("[1, 0]", e.Message);
        Assert.Equal([1, 0], e.Index);
        TensorChecks.ThrowIfNonFinite(Tensor.Ones(3), "ok");
    }
}
