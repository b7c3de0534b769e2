using Sharpformer.Nn;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Nn;

/// <summary>
/// Bahdanau and Luong attention against the PyTorch modules of ../shared/fixtures/torch-rnn: scores, weights (exactly 0 at
/// masked positions), context, and the gradient of Σ context ⊙ w_c + Σ weights ⊙ w_a for query, values and every parameter.
/// </summary>
public class RecurrentAttentionParityTests
{
    [Fact]
    public void BahdanauMatchesPyTorch() => Check("attention_bahdanau.json", new BahdanauAttention(VarBuilder.Fresh(), 8, 8, 10));

    [Fact]
    public void LuongGeneralMatchesPyTorch() => Check("attention_luong_general.json", new LuongAttention(VarBuilder.Fresh(), LuongScore.General, 8, 8));

    [Fact]
    public void LuongDotMatchesPyTorch() => Check("attention_luong_dot.json", new LuongAttention(VarBuilder.Fresh(), LuongScore.Dot, 8, 8));

    static void Check(string file, RecurrentAttention attention)
    {
        var f = Load(file);
        f.LoadInto(attention);
        var query = f.Input("query"); query.RequiresGrad = true;
        var values = f.Input("values"); values.RequiresGrad = true;
        int B = values.Dim(0), S = values.Dim(1);
        var mask = RecurrentAttention.SourceMask(f.Ints("mask"), B, S);
        var r = attention.Forward(query, values, mask);
        AssertClose(f.Output("scores"), r.Scores, "scores");
        AssertClose(f.Output("attention"), r.Weights, "attention");
        AssertClose(f.Output("context"), r.Context, "context");
        var keep = f.Ints("mask");
        for (int i = 0; i < keep.Length; i++) if (keep[i] == 0) Assert.Equal(0f, r.Weights.Data[r.Weights.Offset + i]);

        f.Loss(("context", r.Context), ("attention", r.Weights)).Backward();
        AssertClose(f.InputGrad("query"), query.Grad!, "dquery");
        AssertClose(f.InputGrad("values"), values.Grad!, "dvalues");
        foreach (var (name, p) in attention.NamedParameters())
        {
            // V.bias cancels in the softmax: its true gradient is 0 and PyTorch stored round-off, so absolute tolerance only (README).
            if (name == "V.bias") AssertClose(f.ParameterGrad(name), p.Value.Grad!, "dV.bias", abs: 1e-5, rel: 0);
            else AssertClose(f.ParameterGrad(name), p.Value.Grad!, $"d{name}");
        }
    }

    [Fact]
    public void PrecomputedKeysGiveTheSameStepAsComputingThemInside()
    {
        var f = Load("attention_bahdanau.json");
        var attention = new BahdanauAttention(VarBuilder.Fresh(), 8, 8, 10);
        f.LoadInto(attention);
        var values = f.Input("values");
        var mask = RecurrentAttention.SourceMask([5, 2, 4], values.Dim(1));
        var inside = attention.Forward(f.Input("query"), values, mask);
        var outside = attention.Forward(f.Input("query"), values, mask, attention.Keys(values));
        Assert.Equal(inside.Context.ToArray(), outside.Context.ToArray());
        AssertClose(f.Output("attention"), outside.Weights, "attention");
    }

    [Fact]
    public void SourceMaskFromLengthsEqualsTheBoolMaskAndRejectsLengthsPastTheSource()
    {
        var fromLengths = RecurrentAttention.SourceMask([2, 0, 3], 3).ToArray();
        var fromKeep = RecurrentAttention.SourceMask([1, 1, 0, 0, 0, 0, 1, 1, 1], 3, 3).ToArray();
        Assert.Equal(fromKeep, fromLengths);
        Assert.Equal([0f, 0f, Functional.MaskedValue], fromLengths[..3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => RecurrentAttention.SourceMask([4], 3));
        Assert.Throws<ArgumentException>(() => new LuongAttention(VarBuilder.Fresh(), LuongScore.Dot, 8, 6));
    }
}
