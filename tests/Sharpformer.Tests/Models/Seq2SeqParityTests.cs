using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using Sharpformer.Tests.Nn;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Models;

/// <summary>
/// The Bahdanau encoder–decoder against the PyTorch Seq2Seq of ../shared/fixtures/torch-rnn/seq2seq_bahdanau.json: encoder
/// states, the bridge's initial state, teacher-forced logits and attention, the cross-entropy and its gradient for every
/// parameter (tolerance 1e-5 + 1e-5·|value|), and greedy decoding (tokens exactly, logits and attention within tolerance).
/// </summary>
public class Seq2SeqParityTests
{
    internal static (TorchRnnFixture F, BahdanauSeq2Seq Model) Build()
    {
        var f = Load("seq2seq_bahdanau.json");
        var k = f.Kwargs;
        var d = f.Root.GetProperty("decoding");
        var config = new Seq2SeqConfig(k.GetProperty("vocab").GetInt32(), k.GetProperty("emb_dim").GetInt32(), k.GetProperty("enc_hidden").GetInt32(),
            k.GetProperty("dec_hidden").GetInt32(), k.GetProperty("att_units").GetInt32(),
            d.GetProperty("pad").GetInt32(), d.GetProperty("bos").GetInt32(), d.GetProperty("eos").GetInt32());
        var model = new BahdanauSeq2Seq(config);
        f.LoadInto(model);
        return (f, model);
    }

    [Fact]
    public void TeacherForcedForwardLossAndEveryParameterGradientMatchPyTorch()
    {
        var (f, model) = Build();
        var r = model.Forward(f.Ints("src"), f.Ints("src_lengths"), f.Ints("decoder_input"), f.Ints("labels"));
        AssertClose(f.Output("encoder_outputs"), r.Encoding.Outputs, "encoder_outputs");
        AssertClose(f.Output("decoder_init"), r.Encoding.InitialState, "decoder_init");
        AssertClose(f.Output("logits"), r.Logits, "logits");
        AssertClose(f.Output("attention"), r.Attention, "attention");
        float expectedLoss = f.Root.GetProperty("loss").GetProperty("value").GetSingle();
        Assert.True(Math.Abs(r.Loss!.Item() - expectedLoss) <= Abs + Rel * Math.Abs(expectedLoss), $"loss {r.Loss.Item()} vs {expectedLoss}");

        r.Loss.Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            // V.bias cancels in the softmax: true gradient 0, stored value is round-off (README) — absolute tolerance only.
            if (name.EndsWith("V.bias", StringComparison.Ordinal)) AssertClose(f.ParameterGrad(name), p.Value.Grad!, name, abs: 1e-5, rel: 0);
            else AssertClose(f.ParameterGrad(name), p.Value.Grad!, $"d{name}");
        }
        Assert.All(model.Encoder.Embedding.Weight.Value.Grad!.ToArray()[..6], g => Assert.Equal(0f, g));   // padding row
    }

    [Fact]
    public void GreedyDecodingMatchesPyTorchTokensLogitsAndAttention()
    {
        var (f, model) = Build();
        var greedy = f.Root.GetProperty("greedy");
        int steps = f.Root.GetProperty("decoding").GetProperty("greedy_steps").GetInt32();
        var g = model.Greedy(f.Ints("src"), f.Ints("src_lengths"), steps);
        var expectedTokens = greedy.GetProperty("tokens").GetProperty("data").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(expectedTokens, g.Tokens.SelectMany(t => t).ToArray());
        AssertClose(ToTensor(greedy.GetProperty("logits")), g.Logits, "greedy.logits");
        AssertClose(ToTensor(greedy.GetProperty("attention")), g.Attention, "greedy.attention");
        Assert.False(g.Logits.RequiresGrad);
    }

    [Fact]
    public void FreshModelHasTheFixtureParameterNamesAndShapes()
    {
        var f = Load("seq2seq_bahdanau.json");
        var model = new BahdanauSeq2Seq(new Seq2SeqConfig(11, 6, 8, 8, 10), seed: 5);
        Assert.Equal(f.Parameters().Select(p => (p.Name, Tensor.FormatShape(p.Value.Shape))),
            model.NamedParameters().Select(p => (p.Name, Tensor.FormatShape(p.Parameter.Shape))));
        Assert.All(model.Decoder.Embedding.Weight.Value.ToArray()[..6], v => Assert.Equal(0f, v));
    }
}
