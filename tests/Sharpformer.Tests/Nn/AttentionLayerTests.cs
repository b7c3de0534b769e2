using Sharpformer.Nn;
using Sharpformer.Tensors;
using Sharpformer.Tests.Tensors;

namespace Sharpformer.Tests.Nn;

public class AttentionLayerTests
{
    /// <summary>Slow reference twin: per-head attention through reshape/permute/MatMul/softmax.</summary>
    static Tensor ReferenceMha(MultiHeadAttention m, Tensor x, Tensor? mask)
    {
        int B = x.Dim(0), S = x.Dim(1), H = m.Heads, D = m.KeyDim;
        Tensor Heads(Tensor t) => t.Reshape(B, S, H, D).Permute(0, 2, 1, 3);
        var q = Heads(Functional.Linear(x, m.Query.Weight, m.Query.Bias!.Value));
        var k = Heads(Functional.Linear(x, m.Key.Weight, m.Key.Bias!.Value));
        var v = Heads(Functional.Linear(x, m.Value.Weight, m.Value.Bias!.Value));
        var scores = q.MatMul(k.Transpose(-1, -2)) * (1f / MathF.Sqrt(D));
        if (mask != null) scores = scores + mask;
        var ctx = scores.Softmax(-1).MatMul(v).Permute(0, 2, 1, 3).Reshape(B, S, H * D);
        return Functional.Linear(ctx, m.Out.Weight, m.Out.Bias!.Value);
    }

    [Fact]
    public void FusedAttentionMatchesReferenceWithKeyDimIndependentOfHidden()
    {
        var m = new MultiHeadAttention(hidden: 6, heads: 2, keyDim: 5);
        Init.BertStyle(m, new Random(1), std: 0.5f);
        foreach (var p in m.Parameters()) if (p.Value.Name == "bias") Init.Normal(p.Value, new Random(9), 0.3f);
        m.Eval();
        var x = Tensor.Normal(new Random(2), 0, 1, 2, 4, 6);
        var mask = Functional.AdditiveMask([1, 1, 1, 0, 1, 1, 1, 1], 2, 4);
        var outp = m.Forward(x, mask, returnProbabilities: true);
        var reference = ReferenceMha(m, x, mask).ToArray();
        var got = outp.Output.ToArray();
        for (int i = 0; i < got.Length; i++) Assert.Equal(reference[i], got[i], 4);
        Assert.Equal([2, 2, 4, 4], outp.Probabilities!.ShapeArray);
        Assert.Equal([6, 10], m.Out.Weight.Value.ShapeArray);
        Assert.Equal(0f, outp.Probabilities![0, 1, 2, 3]);   // masked key
        Assert.Equal(1f, outp.Probabilities.Sum(-1).ToArray().Average(), 5);
    }

    [Fact]
    public void EncoderLayerParameterGradientsMatchFiniteDifferences()
    {
        var layer = new TransformerEncoderLayer(new(Hidden: 4, Heads: 2, Intermediate: 6, LayerNormEps: 1e-5f));
        Init.BertStyle(layer, new Random(3), std: 0.4f);
        layer.Eval();   // dropout off so the function is deterministic
        var mask = Functional.AdditiveMask([1, 1, 0], 1, 3);
        var inputs = new List<Tensor> { GradCheck.Rand(5, 1, 3, 4) };
        inputs.AddRange(layer.Parameters().Select(p => p.Value));
        GradCheck.Check(x => layer.Forward(x[0], mask).Hidden, [.. inputs], step: 1e-2f, abs: 3e-3, rel: 3e-2);
    }

    [Fact]
    public void EncoderLayerIsPostNormWithDistilBertNames()
    {
        var layer = new TransformerEncoderLayer(new(Hidden: 4, Heads: 2, Intermediate: 8, Dropout: 0f, AttentionDropout: 0f));
        var names = layer.NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal(["attention.q_lin.weight", "attention.q_lin.bias", "attention.k_lin.weight", "attention.k_lin.bias",
            "attention.v_lin.weight", "attention.v_lin.bias", "attention.out_lin.weight", "attention.out_lin.bias",
            "sa_layer_norm.weight", "sa_layer_norm.bias", "ffn.lin1.weight", "ffn.lin1.bias", "ffn.lin2.weight", "ffn.lin2.bias",
            "output_layer_norm.weight", "output_layer_norm.bias"], names);
        var x = Tensor.Normal(new Random(4), 0, 1, 2, 3, 4);
        var y = layer.Forward(x).Hidden;
        var h = layer.AttentionNorm.Forward(x + layer.Attention.Forward(x).Output);
        var expected = layer.OutputNorm.Forward(h + layer.Ffn.Lin2.Forward(layer.Ffn.Lin1.Forward(h).Gelu())).ToArray();
        var got = y.ToArray();
        for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 5);
    }

    [Fact]
    public void KerasGlorotBoundsForMultiHeadAttentionKernels()
    {
        // hidden 32, 2 heads, keyDim 32: Q/K/V kernel [32, 2, 32], output kernel [2, 32, 32] (ANCHORS.md)
        var (qi, qo) = Init.KerasFans(32, 2, 32);
        Assert.Equal((64, 1024), (qi, qo));
        Assert.Equal(0.0743f, Init.GlorotBound(qi, qo), 4);
        var (oi, oo) = Init.KerasFans(2, 32, 32);
        Assert.Equal(0.2165f, Init.GlorotBound(oi, oo), 4);
        var m = new MultiHeadAttention(32, 2, 32);
        Init.KerasStyle(m, new Random(0));
        float qMax = m.Query.Weight.Value.ToArray().Max(MathF.Abs), oMax = m.Out.Weight.Value.ToArray().Max(MathF.Abs);
        Assert.InRange(qMax, 0.0735f, 0.0743f);
        Assert.InRange(oMax, 0.214f, 0.2165f);
        Assert.All(m.Query.Bias!.Value.ToArray(), v => Assert.Equal(0f, v));
        var dense = new Linear(20, 4);
        Init.KerasStyle(dense, new Random(0));
        Assert.InRange(dense.Weight.Value.ToArray().Max(MathF.Abs), 0.45f, Init.GlorotBound(20, 4));
    }

    [Fact]
    public void BertInitIsNormal002WithZeroBiasesAndUnitLayerNorm()
    {
        var layer = new TransformerEncoderLayer(new(Hidden: 64, Heads: 4, Intermediate: 128));
        Init.BertStyle(layer, new Random(0));
        var w = layer.Ffn.Lin1.Weight.Value.ToArray();
        double mean = w.Average(), std = Math.Sqrt(w.Select(v => (v - mean) * (v - mean)).Average());
        Assert.InRange(std, 0.019, 0.021);
        Assert.InRange(mean, -0.001, 0.001);
        Assert.All(layer.Ffn.Lin1.Bias!.Value.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(layer.OutputNorm.Weight.Value.ToArray(), v => Assert.Equal(1f, v));
        var e = new Embedding(10, 8, paddingIdx: 2);
        Init.BertStyle(e, new Random(0));
        Assert.All(e.Weight.Value.Select(0, 2).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void DropoutInTrainingIsSeededAndReproducible()
    {
        TransformerEncoderLayer Make()
        {
            var l = new TransformerEncoderLayer(new(Hidden: 8, Heads: 2, Intermediate: 16, Dropout: 0.3f, AttentionDropout: 0.3f));
            Init.BertStyle(l, new Random(0)); l.UseRandom(new Random(11)); return l;
        }
        var x = Tensor.Normal(new Random(1), 0, 1, 2, 5, 8);
        var a = Make().Forward(x).Hidden.ToArray(); var b = Make().Forward(x).Hidden.ToArray();
        Assert.Equal(a, b);
        var l2 = Make(); l2.Eval();
        Assert.NotEqual(a, l2.Forward(x).Hidden.ToArray());
    }

    [Fact]
    public void SummaryOfEncoderLayerShowsOutputShapesAndKerasCounts()
    {
        // The Keras tutorial block: embed 32, 2 heads of key_dim 32, ff 32 → 8,416 (MHA: 3·(32·64 + 64) + 64·32 + 32)
        // + 2,112 (FFN) + 128 (two LayerNorms) = 10,656 parameters, as Keras' model.summary() reports for the block.
        var layer = new TransformerEncoderLayer(new(Hidden: 32, Heads: 2, Intermediate: 32, KeyDim: 32, Activation: Activation.Relu, LayerNormEps: 1e-6f));
        layer.Eval();
        var s = layer.Summary(() => layer.Forward(Tensor.Zeros(1, 5, 32)));
        Assert.Equal(10_656, s.TotalParameters);
        Assert.Equal(8_416, s.Rows.Where(r => r.Name.StartsWith("attention.", StringComparison.Ordinal)).Sum(r => r.Parameters));
        Assert.Equal([1, 5, 32], s.Rows.Single(r => r.Name == "ffn.lin1").OutputShape!);
        Assert.Equal([1, 5, 64], s.Rows.Single(r => r.Name == "attention.q_lin").OutputShape!);
        Assert.All(s.Rows, r => Assert.NotNull(r.OutputShape));   // dropouts included: the hook sees every forward
    }
}
