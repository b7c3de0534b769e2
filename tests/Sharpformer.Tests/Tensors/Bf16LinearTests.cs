using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// Mixed precision (<see cref="ExecutionOptions.Bf16"/>): Linear's forward and both gradients in bf16. Finite differences do
/// not apply to a function rounded to 8 significant bits, so the backward is checked against (1) the exact product of the
/// bf16-rounded operands summed in double, and (2) the fp32 layer, whose backward has its finite-difference test.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public class Bf16LinearTests
{
    static readonly ExecutionOptions Bf16 = new(Threads: 2, Bf16: true);

    static double R(float v) => Bf16Gemm.ToFloat(Bf16Gemm.ToBf16(v));

    [Fact]
    public void Bf16LinearForwardAndGradientsAreTheFp32SumsOfBf16RoundedOperands()
    {
        const int rows = 39, ins = 45, outs = 21;   // odd k and rows, a partial 16-channel block
        var x = Tensor.Uniform(new Random(1), -2f, 2f, 3, 13, ins); x.RequiresGrad = true;
        var w = Tensor.Uniform(new Random(2), -0.5f, 0.5f, outs, ins); w.RequiresGrad = true;
        var b = Tensor.Uniform(new Random(3), -1f, 1f, outs); b.RequiresGrad = true;
        var g = Tensor.Uniform(new Random(4), -1f, 1f, 3, 13, outs);
        float[] y;
        using (ExecutionScope.Enter(Bf16))
        {
            var yt = Functional.Linear(x, w, b);
            y = yt.ToArray();
            (yt * g).Sum().Backward();
        }
        float[] xs = x.ToArray(), ws = w.ToArray(), bs = b.ToArray(), gs = g.ToArray();
        float[] dx = x.Grad!.ToArray(), dw = w.Grad!.ToArray(), db = b.Grad!.ToArray();
        static void Near(double got, double want, double abs, string what) =>
            Assert.True(Math.Abs(got - want) <= 1e-5 * abs + 1e-6, $"{what}: {got} vs {want}");
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outs; o++)
            {
                double s = bs[o], abs = Math.Abs(bs[o]);
                for (int k = 0; k < ins; k++) { double p = R(xs[r * ins + k]) * R(ws[o * ins + k]); s += p; abs += Math.Abs(p); }
                Near(y[r * outs + o], s, abs, $"y[{r}, {o}]");
            }
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < ins; k++)
            {
                double s = 0, abs = 0;
                for (int o = 0; o < outs; o++) { double p = R(gs[r * outs + o]) * R(ws[o * ins + k]); s += p; abs += Math.Abs(p); }
                Near(dx[r * ins + k], s, abs, $"dx[{r}, {k}]");
            }
        for (int o = 0; o < outs; o++)
        {
            double sb = 0, absb = 0;
            for (int r = 0; r < rows; r++) { sb += gs[r * outs + o]; absb += Math.Abs(gs[r * outs + o]); }
            Near(db[o], sb, absb, $"db[{o}] (fp32 sums of the fp32 gradient)");
            for (int k = 0; k < ins; k++)
            {
                double s = 0, abs = 0;
                for (int r = 0; r < rows; r++) { double p = R(gs[r * outs + o]) * R(xs[r * ins + k]); s += p; abs += Math.Abs(p); }
                Near(dw[o * ins + k], s, abs, $"dW[{o}, {k}]");
            }
        }
    }

    public static TheoryData<string> Ops => new() { "Linear", "LinearGelu", "LinearRelu" };

    /// <summary>
    /// Each operand rounded to bf16 is off by at most 2⁻⁹ relative, so a product by at most ≈ 2⁻⁸; sums of such products
    /// differ from the fp32 ones by well under 2⁻⁷ (0.8 %) of the result's norm unless the sum cancels almost completely,
    /// which random data of these sizes does not. ReLU adds a kink: where x·Wᵀ + b lies within bf16's error of 0 the two
    /// paths disagree about the mask and the gradient of that unit is all or nothing, so ReLU's gradients get 2⁻⁴ (measured:
    /// 2.3 % for dx, a flip rate of about 0.03 %).
    /// </summary>
    [Theory]
    [MemberData(nameof(Ops))]
    public void Bf16OutputsAndGradientsStayWithinBf16PrecisionOfFp32(string op)
    {
        (float[] Y, float[] Dx, float[] Dw, float[] Db) Run(bool bf16)
        {
            var x = Tensor.Uniform(new Random(11), -2f, 2f, 64, 96); x.RequiresGrad = true;
            var w = Tensor.Uniform(new Random(12), -0.3f, 0.3f, 80, 96); w.RequiresGrad = true;
            var b = Tensor.Uniform(new Random(13), -0.5f, 0.5f, 80); b.RequiresGrad = true;
            var g = Tensor.Uniform(new Random(14), -1f, 1f, 64, 80);
            using var scope = ExecutionScope.Enter(bf16 ? Bf16 : new ExecutionOptions(2));
            var y = op switch { "LinearGelu" => Functional.LinearGelu(x, w, b), "LinearRelu" => Functional.LinearRelu(x, w, b), _ => Functional.Linear(x, w, b) };
            var ys = y.ToArray();
            (y * g).Sum().Backward();
            return (ys, x.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray());
        }
        var f = Run(false); var h = Run(true);
        double tolerance = op == "LinearRelu" ? 1.0 / 16 : 1.0 / 128;
        void Close(float[] want, float[] got, string what, bool mustDiffer = true)
        {
            double diff = 0, norm = 0;
            for (int i = 0; i < want.Length; i++) { diff += Math.Pow(got[i] - want[i], 2); norm += Math.Pow(want[i], 2); }
            double rel = Math.Sqrt(diff / norm);
            Assert.True(rel <= (what == "y" ? 1.0 / 128 : tolerance), $"{what}: relative error {rel:G3} of bf16 against fp32");
            Assert.True(rel > 0 || !mustDiffer, $"{what}: bf16 gave exactly the fp32 values — the bf16 path did not run");
        }
        Close(f.Y, h.Y, "y"); Close(f.Dx, h.Dx, "dx"); Close(f.Dw, h.Dw, "dW"); Close(f.Db, h.Db, "db", mustDiffer: op != "Linear");   // Linear's db sums dy itself
    }

    [Fact]
    public void Bf16ScopeNestsAndAnInnerScopeWithoutPreferenceKeepsIt()
    {
        Assert.False(ExecutionScope.Bf16);
        using (ExecutionScope.Enter(new ExecutionOptions(Threads: 3).WithBf16(true)))
        {
            Assert.True(ExecutionScope.Bf16);
            Assert.Equal(3, ExecutionScope.Threads);
            using (ExecutionScope.Enter(ExecutionOptions.Default)) Assert.True(ExecutionScope.Bf16);
            using (ExecutionScope.Enter(new ExecutionOptions(Bf16: true))) Assert.True(ExecutionScope.Bf16);
            Assert.True(ExecutionScope.Bf16);
        }
        Assert.False(ExecutionScope.Bf16);
    }

    [Fact]
    public void Conv1DUnderBf16IsTheBf16LinearOfItsTransposedWeightBitForBit()
    {
        // GPT-2's layers multiply in bf16 too: x·W + b with W [in, out] is Linear(x, Wᵀ, b), forward and gradients.
        const int ins = 24, outs = 40;
        var conv = new Sharpformer.Nn.Conv1D(Sharpformer.Nn.VarBuilder.Fresh(4), ins, outs, Sharpformer.Nn.WeightInit.Normal(0.3));
        conv.Train();
        var x = Tensor.Uniform(new Random(5), -2f, 2f, 2, 7, ins);
        var g = Tensor.Uniform(new Random(6), -1f, 1f, 2, 7, outs);
        var wt = Tensor.FromArray(conv.Weight.Value.Transpose(0, 1).Contiguous().ToArray(), outs, ins); wt.RequiresGrad = true;
        var b = Tensor.FromArray(conv.Bias.Value.ToArray(), outs); b.RequiresGrad = true;
        float[] yConv, yLinear, yFp32;
        using (ExecutionScope.Enter(Bf16))
        {
            var y = conv.Forward(x); yConv = y.ToArray(); (y * g).Sum().Backward();
            var yl = Functional.Linear(x, wt, b); yLinear = yl.ToArray(); (yl * g).Sum().Backward();
        }
        yFp32 = conv.Forward(x).ToArray();
        Assert.Equal(yLinear, yConv);
        Assert.NotEqual(yFp32, yConv);   // the bf16 path ran
        Assert.Equal(wt.Grad!.Transpose(0, 1).Contiguous().ToArray(), conv.Weight.Grad!.ToArray());
        Assert.Equal(b.Grad!.ToArray(), conv.Bias.Grad!.ToArray());
    }
}
