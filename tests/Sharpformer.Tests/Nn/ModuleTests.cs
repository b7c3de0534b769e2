using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Nn;

public class ModuleTests
{
    sealed class SelfAttn : Module
    {
        public readonly Linear Query, Key, Value;
        public SelfAttn(int h)
        {
            Query = RegisterModule("query", new Linear(VarBuilder.Fresh(), h, h, WeightInit.Normal(0.02)));
            Key = RegisterModule("key", new Linear(VarBuilder.Fresh(), h, h, WeightInit.Normal(0.02)));
            Value = RegisterModule("value", new Linear(VarBuilder.Fresh(), h, h, WeightInit.Normal(0.02)));
        }
    }

    sealed class Attn : Module
    {
        public Attn(int h) { RegisterModule("self", new SelfAttn(h)); RegisterModule("LayerNorm", new LayerNorm(VarBuilder.Fresh(), h, 1e-12f)); }
    }

    sealed class Layer : Module
    {
        public readonly Dropout Drop;
        public Layer(int h) { RegisterModule("attention", new Attn(h)); Drop = RegisterModule("dropout", new Dropout(0.1f)); }
    }

    sealed class Encoder : Module
    {
        public readonly ModuleList<Layer> Layers;
        public Encoder(int h, int n) { Layers = RegisterModule("layer", new ModuleList<Layer>(Enumerable.Range(0, n).Select(_ => new Layer(h)))); }
    }

    sealed class Model : Module
    {
        public readonly Embedding Words;
        public readonly Encoder Encoder;
        public Model(int h = 4, int n = 2)
        {
            Words = RegisterModule("word_embeddings", new Embedding(VarBuilder.Fresh(), 10, h, WeightInit.Normal(0.02), paddingIdx: 0));
            Encoder = RegisterModule("encoder", new Encoder(h, n));
            RegisterBuffer("position_ids", Tensor.Arange(8).Reshape(1, 8));
        }
    }

    [Fact]
    public void DottedNamesEqualHfCheckpointKeys()
    {
        var names = new Model().NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("encoder.layer.0.attention.self.query.weight", names);
        Assert.Contains("encoder.layer.1.attention.self.value.bias", names);
        Assert.Contains("encoder.layer.1.attention.LayerNorm.weight", names);
        Assert.Equal("word_embeddings.weight", names[0]);
        Assert.Equal(1 + 2 * (6 + 2), names.Count);
        Assert.Contains("position_ids", new Model().StateDict().Keys);
    }

    [Fact]
    public void CountsAndFreezing()
    {
        var m = new Model(h: 4, n: 2);
        long perLayer = 3 * (16 + 4) + 8;
        Assert.Equal(40 + 2 * perLayer, m.ParameterCount());
        m.Words.Trainable = false;
        Assert.Equal(2 * perLayer, m.ParameterCount(trainableOnly: true));
        Assert.False(m.Words.Weight.Value.RequiresGrad);
        m.Encoder.Layers[0].Trainable = false;
        Assert.Equal(perLayer, m.ParameterCount(trainableOnly: true));
        m.Trainable = true;
        Assert.Equal(m.ParameterCount(), m.ParameterCount(trainableOnly: true));
    }

    [Fact]
    public void TrainEvalPropagatesAndDropoutIsIdentityInEval()
    {
        var m = new Model();
        m.Eval();
        Assert.All(m.NamedModules(), x => Assert.False(x.Module.Training));
        var x = Tensor.Ones(5);
        Assert.Equal(x.ToArray(), m.Encoder.Layers[0].Drop.Forward(x).ToArray());
        m.Train();
        Assert.True(m.Encoder.Layers[1].Drop.Training);
    }

    [Fact]
    public void LoadStateDictReportsMissingUnexpectedAndWrongShape()
    {
        var src = new Model();
        var sd = src.StateDict().ToDictionary(kv => kv.Key, kv => Tensor.Full(0.5f, kv.Value.ShapeArray));
        sd.Remove("encoder.layer.1.attention.self.key.bias");
        sd["encoder.layer.0.attention.self.query.weight"] = Tensor.Zeros(3, 3);
        sd["pooler.dense.weight"] = Tensor.Zeros(2);
        var dst = new Model();
        var e = Assert.Throws<StateDictException>(() => dst.LoadStateDict(sd, strict: true));
        Assert.Contains("encoder.layer.1.attention.self.key.bias", e.Message);
        Assert.Contains("pooler.dense.weight", e.Message);
        Assert.NotEqual(0.5f, dst.Encoder.Layers[1].NamedParameters().First().Parameter.Value[0, 0]);   // nothing copied under strict failure
        var r = dst.LoadStateDict(sd, strict: false);
        Assert.Equal(["encoder.layer.1.attention.self.key.bias"], r.Missing);
        Assert.Equal(["pooler.dense.weight"], r.Unexpected);
        Assert.Single(r.ShapeMismatched);
        Assert.Equal("encoder.layer.0.attention.self.query.weight", r.ShapeMismatched[0].Key);
        Assert.Equal([4, 4], r.ShapeMismatched[0].ModelShape);
        Assert.Equal(0.5f, dst.Words.Weight.Value[3, 1]);
        Assert.True(new Model().LoadStateDict(src.StateDict()).IsComplete);
    }

    [Fact]
    public void SummaryListsLayersShapesAndTotals()
    {
        var m = new Model(h: 4, n: 1);
        m.Words.Trainable = false;
        var s = m.Summary(() => m.Words.Forward([1, 2, 3], 1, 3));
        Assert.Equal(m.ParameterCount(), s.TotalParameters);
        Assert.Equal(40, s.NonTrainableParameters);
        var words = s.Rows.Single(r => r.Name == "word_embeddings");
        Assert.Equal("Embedding", words.Type);
        Assert.Equal([1, 3, 4], words.OutputShape!);
        Assert.Equal(40, words.Parameters);
        var text = s.ToString();
        Assert.Contains("query (Linear)", text);
        Assert.Contains("Total params: 108", text);
        Assert.Contains("Non-trainable params: 40", text);
        var top = m.Summary(maxDepth: 1);
        Assert.Equal(68, top.Rows.Single(r => r.Name == "encoder").Parameters);
    }

    [Fact]
    public void LinearEmbeddingLayerNormShapes()
    {
        var lin = new Linear(VarBuilder.Fresh(), 3, 2, WeightInit.Normal(0.02));
        Assert.Equal([2, 3], lin.Weight.Value.ShapeArray);
        Assert.Equal([4, 5, 2], lin.Forward(Tensor.Ones(4, 5, 3)).ShapeArray);
        var emb = new Embedding(VarBuilder.Fresh(), 5, 3, WeightInit.Normal(0.02), paddingIdx: 1);
        Assert.Equal([0f, 0f, 0f], emb.Weight.Value.Select(0, 1).ToArray());
        var ln = new LayerNorm(VarBuilder.Fresh(), 3, 1e-12f);
        var y = ln.Forward(Tensor.FromArray([1, 2, 3], 1, 3)).ToArray();
        Assert.Equal(0f, y.Sum(), 5);
        Assert.Throws<ArgumentNullException>(() => new ModuleList<Linear>().Add(null!));
    }

    [Fact]
    public void NamedParametersAppearInErrorMessages()
    {
        var m = new Model(h: 4, n: 1);
        m.NameParameters();
        Assert.Equal("encoder.layer.0.attention.self.key.weight", m.Encoder.Layers[0].NamedParameters().ElementAt(2).Parameter.Value.Name);
        var e = Assert.ThrowsAny<SharpformerException>(() => m.Words.Forward([3, 10], 2));
        Assert.Contains("word_embeddings.weight", e.Message);
        Assert.Contains("10", e.Message);
    }
}
