using Sharpformer.Nn;
using Sharpformer.Tensors;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Nn;

/// <summary>
/// GRU, LSTM and their cells against PyTorch 1.13 (../shared/fixtures/torch-rnn): weights loaded strictly by torch's
/// state-dict names, then the outputs, final states and the gradient of the fixture's loss with respect to every input
/// and parameter, within the README's 1e-5 + 1e-5·|value|.
/// </summary>
public class RecurrentParityTests
{
    static RecurrentOptions OptionsOf(TorchRnnFixture f)
    {
        var k = f.Kwargs;
        return new RecurrentOptions(k.GetProperty("input_size").GetInt32(), k.GetProperty("hidden_size").GetInt32(),
            k.GetProperty("num_layers").GetInt32(), k.GetProperty("bidirectional").GetBoolean(), k.GetProperty("batch_first").GetBoolean(),
            k.GetProperty("bias").GetBoolean(), k.TryGetProperty("proj_size", out var p) ? p.GetInt32() : 0);
    }

    static Tensor Leaf(Tensor t) { t.RequiresGrad = true; return t; }

    [Theory]
    [InlineData("gru_basic.json")]
    [InlineData("gru_deep.json")]
    [InlineData("gru_packed.json")]
    [InlineData("gru_packed_deep.json")]
    public void GruMatchesPyTorchOutputsFinalStatesAndEveryGradient(string file)
    {
        var f = Load(file);
        var gru = new Gru(OptionsOf(f));
        f.LoadInto(gru);
        var x = Leaf(f.Input("input")); var h0 = Leaf(f.Input("h0"));
        int[]? lengths = f.HasInput("lengths") ? f.Ints("lengths") : null;
        var r = gru.Forward(x, h0, lengths);
        AssertClose(f.Output("output"), r.Output, "output");
        AssertClose(f.Output("h_n"), r.HN, "h_n");
        Assert.Null(r.CN);
        f.Loss(("output", r.Output), ("h_n", r.HN)).Backward();
        AssertGradients(f, gru, ("input", x), ("h0", h0));
        if (lengths != null) AssertPaddedInputGetsNoGradient(x, lengths, gru.Options.BatchFirst);
    }

    [Theory]
    [InlineData("lstm_basic.json")]
    [InlineData("lstm_deep.json")]
    [InlineData("lstm_packed.json")]
    [InlineData("lstm_packed_deep.json")]
    [InlineData("lstm_proj.json")]
    public void LstmMatchesPyTorchOutputsFinalStatesAndEveryGradient(string file)
    {
        var f = Load(file);
        var lstm = new Lstm(OptionsOf(f));
        f.LoadInto(lstm);
        var x = Leaf(f.Input("input")); var h0 = Leaf(f.Input("h0"));
        var c0 = f.HasInput("c0") ? Leaf(f.Input("c0")) : null;
        int[]? lengths = f.HasInput("lengths") ? f.Ints("lengths") : null;
        var r = lstm.Forward(x, h0, c0, lengths);
        AssertClose(f.Output("output"), r.Output, "output");
        AssertClose(f.Output("h_n"), r.HN, "h_n");
        AssertClose(f.Output("c_n"), r.CN!, "c_n");
        f.Loss(("output", r.Output), ("h_n", r.HN), ("c_n", r.CN!)).Backward();
        var inputs = new List<(string, Tensor)> { ("input", x), ("h0", h0) };
        if (c0 != null) inputs.Add(("c0", c0));
        AssertGradients(f, lstm, [.. inputs]);
        if (lengths != null) AssertPaddedInputGetsNoGradient(x, lengths, lstm.Options.BatchFirst);
    }

    /// <summary>
    /// The recurrences take their buffers from the step's pool, whose recycled arrays hold an earlier step's numbers: a first
    /// scope runs the same shapes on other inputs, a second one must still match PyTorch (outputs and every gradient),
    /// padded rows included.
    /// </summary>
    [Theory]
    [InlineData("gru_packed_deep.json")]
    [InlineData("lstm_packed_deep.json")]
    [InlineData("lstm_proj.json")]
    public void InsideAPooledScopeWithRecycledBuffers_TheRecurrencesStillMatchPyTorch(string file)
    {
        var f = Load(file);
        var pool = new TensorPool();
        bool lstm = file.StartsWith("lstm", StringComparison.Ordinal);
        RecurrentLayer Build()
        {
            RecurrentLayer m = lstm ? new Lstm(OptionsOf(f)) : new Gru(OptionsOf(f));
            f.LoadInto(m);
            return m;
        }
        int[]? lengths = f.HasInput("lengths") ? f.Ints("lengths") : null;
        RecurrentOutput Run(RecurrentLayer m, Tensor x, Tensor h0, Tensor? c0) =>
            m is Lstm l ? l.Forward(x, h0, c0, lengths) : ((Gru)m).Forward(x, h0, lengths);
        Tensor? C0() => f.HasInput("c0") ? Leaf(f.Input("c0")) : null;

        using (pool.Scope())   // leaves the pool full of buffers of the right sizes holding other values
        {
            var other = Build();
            var r = Run(other, Leaf(f.Input("input").Mul(3f)), Leaf(f.Input("h0").Mul(-2f)), C0());
            f.Loss(("output", r.Output), ("h_n", r.HN)).Backward();
        }
        var model = Build();
        var x = Leaf(f.Input("input")); var h0 = Leaf(f.Input("h0")); var c0 = C0();
        using (pool.Scope())
        {
            var r = Run(model, x, h0, c0);
            AssertClose(f.Output("output"), r.Output, "output");
            AssertClose(f.Output("h_n"), r.HN, "h_n");
            if (lstm) AssertClose(f.Output("c_n"), r.CN!, "c_n");
            (lstm ? f.Loss(("output", r.Output), ("h_n", r.HN), ("c_n", r.CN!)) : f.Loss(("output", r.Output), ("h_n", r.HN))).Backward();
        }
        var inputs = new List<(string, Tensor)> { ("input", x), ("h0", h0) };
        if (c0 != null) inputs.Add(("c0", c0));
        AssertGradients(f, model, [.. inputs]);
    }

    [Fact]
    public void GruCellMatchesPyTorchOneStepAndEveryGradient()
    {
        var f = Load("grucell.json");
        var cell = new GruCell(VarBuilder.Fresh(), 5, 7);
        f.LoadInto(cell);
        var x = Leaf(f.Input("input")); var h0 = Leaf(f.Input("h0"));
        var h1 = cell.Forward(x, h0);
        AssertClose(f.Output("h1"), h1, "h1");
        f.Loss(("h1", h1)).Backward();
        AssertGradients(f, cell, ("input", x), ("h0", h0));
    }

    [Fact]
    public void LstmCellMatchesPyTorchOneStepAndEveryGradient()
    {
        var f = Load("lstmcell.json");
        var cell = new LstmCell(VarBuilder.Fresh(), 5, 7);
        f.LoadInto(cell);
        var x = Leaf(f.Input("input")); var h0 = Leaf(f.Input("h0")); var c0 = Leaf(f.Input("c0"));
        var s = cell.Forward(x, new LstmState(h0, c0));
        AssertClose(f.Output("h1"), s.H, "h1");
        AssertClose(f.Output("c1"), s.C, "c1");
        f.Loss(("h1", s.H), ("c1", s.C)).Backward();
        AssertGradients(f, cell, ("input", x), ("h0", h0), ("c0", c0));
    }

    [Fact]
    public void GruWithoutInitialStateEqualsZeroInitialState()
    {
        var f = Load("gru_basic.json");
        var gru = new Gru(OptionsOf(f));
        f.LoadInto(gru);
        var r = gru.Forward(f.Input("input"));
        AssertClose(f.Output("output"), r.Output, "output");
        AssertClose(f.Output("h_n"), r.HN, "h_n");
    }

    [Fact]
    public void FreshLayersUseTorchNamesShapesAndUniformInitBound()
    {
        var lstm = new Lstm(new RecurrentOptions(5, 16, NumLayers: 2, Bidirectional: true, ProjSize: 4), seed: 3);
        var names = lstm.NamedParameters().Select(p => (p.Name, Tensor.FormatShape(p.Parameter.Shape))).ToList();
        Assert.Equal(("weight_ih_l0", "[64, 5]"), names[0]);
        Assert.Equal(("weight_hh_l0", "[64, 4]"), names[1]);
        Assert.Equal(("weight_hr_l0", "[4, 16]"), names[4]);
        Assert.Equal(("weight_ih_l0_reverse", "[64, 5]"), names[5]);
        Assert.Equal(("weight_ih_l1", "[64, 8]"), names[10]);
        Assert.Equal(("weight_hr_l1_reverse", "[4, 16]"), names[^1]);
        float bound = 1f / MathF.Sqrt(16);
        var all = lstm.Parameters().SelectMany(p => p.Value.ToArray()).ToArray();
        Assert.All(all, v => Assert.InRange(v, -bound, bound));
        Assert.True(all.Max() > 0.9f * bound && all.Min() < -0.9f * bound);   // spread over the whole interval
    }

    [Fact]
    public void BadShapesAndLengthsAreRejectedWithTheExpectedShapeInTheMessage()
    {
        var gru = new Gru(new RecurrentOptions(5, 7, BatchFirst: true));
        var e = Assert.Throws<ShapeMismatchException>(() => gru.Forward(Tensor.Zeros(3, 6, 4)));
        Assert.Contains("[batch, time, 5]", e.Message);
        var h = Assert.Throws<ShapeMismatchException>(() => gru.Forward(Tensor.Zeros(3, 6, 5), Tensor.Zeros(1, 2, 7)));
        Assert.Contains("h0", h.Message);
        var l = Assert.Throws<ArgumentOutOfRangeException>(() => gru.Forward(Tensor.Zeros(3, 6, 5), null, [6, 7, 1]));
        Assert.Contains("lengths[1] = 7", l.Message);
        Assert.Throws<ArgumentException>(() => new Gru(new RecurrentOptions(5, 7, ProjSize: 3)));
    }

    static void AssertGradients(TorchRnnFixture f, Module module, params (string Name, Tensor Value)[] inputs)
    {
        foreach (var (name, t) in inputs) AssertClose(f.InputGrad(name), t.Grad!, $"d{name}");
        foreach (var (name, p) in module.NamedParameters()) AssertClose(f.ParameterGrad(name), p.Value.Grad!, $"d{name}");
    }

    static void AssertPaddedInputGetsNoGradient(Tensor x, int[] lengths, bool batchFirst)
    {
        var g = x.Grad!;
        for (int b = 0; b < lengths.Length; b++)
            for (int t = lengths[b]; t < (batchFirst ? x.Dim(1) : x.Dim(0)); t++)
                for (int i = 0; i < x.Dim(2); i++)
                    Assert.Equal(0f, batchFirst ? g[b, t, i] : g[t, b, i]);
    }
}
