using Sharpformer.Nn;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Nn;

/// <summary>
/// nn.TransformerDecoderLayer and nn.Transformer (post-norm, ReLU, batch_first, dropout 0) against
/// ../shared/fixtures/torch-rnn/transformer_decoder_layer.json and transformer.json: the output, the gradient of
/// Σ output ⊙ loss_weights for the inputs and every parameter (README tolerance 1e-5 + 1e-5·|value|), with PyTorch's
/// state_dict names and order.
/// </summary>
public class TransformerParityTests
{
    static TransformerOptions Options(TorchRnnFixture f, int encoderLayers, int decoderLayers)
    {
        var k = f.Kwargs;
        Assert.False(k.GetProperty("norm_first").GetBoolean());
        Assert.Equal("relu", k.GetProperty("activation").GetString());
        return new TransformerOptions(k.GetProperty("d_model").GetInt32(), k.GetProperty("nhead").GetInt32(), encoderLayers, decoderLayers,
            k.GetProperty("dim_feedforward").GetInt32(), 0f, (float)k.GetProperty("layer_norm_eps").GetDouble());
    }

    // A bool key padding mask (true = padding, PyTorch's convention) as the additive [B, L] mask of the attention op.
    static Tensor PaddingMask(TorchRnnFixture f, string name)
    {
        var pad = f.Ints(name);
        var shape = f.Root.GetProperty("inputs").GetProperty(name).GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        return Functional.AdditiveMask(pad.Select(p => 1 - p).ToArray(), shape[0], shape[1]).Reshape(shape[0], shape[1]);
    }

    // The fixture's tgt_mask is generate_square_subsequent_mask: the op's causal mask, nothing else.
    static void AssertCausal(TorchRnnFixture f)
    {
        var m = f.Ints("tgt_mask");
        int t = (int)Math.Sqrt(m.Length);
        for (int i = 0; i < t; i++) for (int j = 0; j < t; j++) Assert.Equal(j > i ? 1 : 0, m[i * t + j]);
    }

    static void AssertParameterGradients(TorchRnnFixture f, Module model)
    {
        foreach (var (name, p) in model.NamedParameters()) AssertClose(f.ParameterGrad(name), p.Value.Grad!, $"d{name}");
    }

    [Fact]
    public void DecoderLayerOutputAndEveryGradientMatchPyTorch()
    {
        var f = Load("transformer_decoder_layer.json");
        AssertCausal(f);
        var layer = new TransformerDecoderLayer(VarBuilder.Fresh(), Options(f, 0, 1));
        f.LoadInto(layer);
        var tgt = f.Input("tgt"); var memory = f.Input("memory");
        tgt.RequiresGrad = true; memory.RequiresGrad = true;
        var output = layer.Forward(tgt, memory, PaddingMask(f, "memory_key_padding_mask"), PaddingMask(f, "tgt_key_padding_mask"));
        AssertClose(f.Output("output"), output, "output");
        f.Loss(("output", output)).Backward();
        AssertClose(f.InputGrad("tgt"), tgt.Grad!, "dtgt");
        AssertClose(f.InputGrad("memory"), memory.Grad!, "dmemory");
        AssertParameterGradients(f, layer);
    }

    [Fact]
    public void TransformerOutputAndEveryGradientMatchPyTorch()
    {
        var f = Load("transformer.json");
        AssertCausal(f);
        var k = f.Kwargs;
        var model = new Transformer(VarBuilder.Fresh(), Options(f, k.GetProperty("num_encoder_layers").GetInt32(), k.GetProperty("num_decoder_layers").GetInt32()));
        f.LoadInto(model);
        Assert.Equal(f.Ints("src_key_padding_mask"), f.Ints("memory_key_padding_mask"));
        var src = f.Input("src"); var tgt = f.Input("tgt");
        src.RequiresGrad = true; tgt.RequiresGrad = true;
        var output = model.Forward(src, tgt, PaddingMask(f, "src_key_padding_mask"), PaddingMask(f, "tgt_key_padding_mask"));
        AssertClose(f.Output("output"), output, "output");
        f.Loss(("output", output)).Backward();
        AssertClose(f.InputGrad("src"), src.Grad!, "dsrc");
        AssertClose(f.InputGrad("tgt"), tgt.Grad!, "dtgt");
        AssertParameterGradients(f, model);
    }

    [Fact]
    public void FreshTransformerHasPyTorchStateDictNamesAndShapes()
    {
        var f = Load("transformer.json");
        var model = new Transformer(VarBuilder.Fresh(3), Options(f, 2, 2));
        Assert.Equal(f.Parameters().Select(p => (p.Name, Tensor.FormatShape(p.Value.Shape))),
            model.NamedParameters().Select(p => (p.Name, Tensor.FormatShape(p.Parameter.Shape))));
    }
}
