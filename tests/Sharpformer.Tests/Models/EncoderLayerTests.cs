using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using Sharpformer.Tests.Tensors;

namespace Sharpformer.Tests.Models;

/// <summary>The encoder layers BERT and DistilBERT stack, built as the models build them (through a <see cref="VarBuilder"/>).</summary>
public class EncoderLayerTests
{
    static BertConfig TinyBert(float dropout = 0.1f, double initializerRange = 0.02) => new()
    {
        HiddenSize = 4, NumAttentionHeads = 2, IntermediateSize = 6, LayerNormEps = 1e-5,
        HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout, InitializerRange = initializerRange,
    };

    [Fact]
    public void BertLayerParameterGradientsMatchFiniteDifferences()
    {
        var layer = new BertLayer(VarBuilder.Fresh(3), TinyBert(initializerRange: 0.4));
        layer.Eval();   // dropout off so the function is deterministic
        var mask = Functional.AdditiveMask([1, 1, 0], 1, 3);
        var inputs = new List<Tensor> { GradCheck.Rand(5, 1, 3, 4) };
        inputs.AddRange(layer.Parameters().Select(p => p.Value));
        GradCheck.Check(x => layer.Forward(x[0], mask).Hidden, [.. inputs], step: 1e-2f, abs: 3e-3, rel: 3e-2);
    }

    [Fact]
    public void FreshBertLayerHasHfInitNormal002ZeroBiasesAndUnitLayerNorm()
    {
        var layer = new BertLayer(VarBuilder.Fresh(0), new BertConfig { HiddenSize = 64, NumAttentionHeads = 4, IntermediateSize = 128 });
        var w = layer.Intermediate.Dense.Weight.Value.ToArray();
        double mean = w.Average(), std = Math.Sqrt(w.Select(v => (v - mean) * (v - mean)).Average());
        Assert.InRange(std, 0.019, 0.021);
        Assert.InRange(mean, -0.001, 0.001);
        Assert.All(layer.Intermediate.Dense.Bias!.Value.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(layer.Output.LayerNorm.Weight.Value.ToArray(), v => Assert.Equal(1f, v));
        Assert.All(layer.Output.LayerNorm.Bias.Value.ToArray(), v => Assert.Equal(0f, v));
        var e = new Embedding(VarBuilder.Fresh(0), 10, 8, WeightInit.Normal(0.02), paddingIdx: 2);
        Assert.All(e.Weight.Value.Select(0, 2).ToArray(), v => Assert.Equal(0f, v));
        Assert.Contains(e.Weight.Value.Select(0, 3).ToArray(), v => v != 0f);
    }

    [Fact]
    public void BertLayerDropoutInTrainingIsSeededAndReproducible()
    {
        BertLayer Make()
        {
            var l = new BertLayer(VarBuilder.Fresh(0), TinyBert(dropout: 0.3f) with { HiddenSize = 8, IntermediateSize = 16 });
            l.UseRandom(new Random(11)); return l;
        }
        var x = Tensor.Normal(new Random(1), 0, 1, 2, 5, 8);
        var a = Make().Forward(x, null).Hidden.ToArray(); var b = Make().Forward(x, null).Hidden.ToArray();
        Assert.Equal(a, b);
        var l2 = Make(); l2.Eval();
        Assert.NotEqual(a, l2.Forward(x, null).Hidden.ToArray());
    }

    [Fact]
    public void DistilBertBlockIsPostNormWithHfNames()
    {
        var c = new DistilBertConfig { Dim = 4, NHeads = 2, HiddenDim = 8, Dropout = 0, AttentionDropout = 0, InitializerRange = 0.5 };
        var block = new TransformerBlock(VarBuilder.Fresh(4), c);
        Assert.Equal(["attention.q_lin.weight", "attention.q_lin.bias", "attention.k_lin.weight", "attention.k_lin.bias",
            "attention.v_lin.weight", "attention.v_lin.bias", "attention.out_lin.weight", "attention.out_lin.bias",
            "sa_layer_norm.weight", "sa_layer_norm.bias", "ffn.lin1.weight", "ffn.lin1.bias", "ffn.lin2.weight", "ffn.lin2.bias",
            "output_layer_norm.weight", "output_layer_norm.bias"], block.NamedParameters().Select(p => p.Name));
        var x = Tensor.Normal(new Random(4), 0, 1, 2, 3, 4);
        var got = block.Forward(x, null).Hidden.ToArray();
        var h = block.SaLayerNorm.Forward(x + block.Attention.Forward(x, null).Output);
        var expected = block.OutputLayerNorm.Forward(h + block.Ffn.Lin2.Forward(block.Ffn.Lin1.Forward(h).Gelu())).ToArray();
        for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 5);
    }
}
