using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

/// <summary>
/// The fused GRU/LSTM gate kernels against slow double-precision twins written from the PyTorch equations (one element at a
/// time), for every hidden width 1–40 (all SIMD tails) with a padded row; backwards against central finite differences of
/// the twins (h = 1e-5). Tolerances: forward 2e-6·(1 + |v|) (float exp/tanh round-off), backward 2e-5·(1 + |g|).
/// </summary>
public class RecurrentKernelTests
{
    const double Fd = 1e-5;
    static readonly int[] Lengths = [3, 1, 2];   // at time 1 row 1 is padding
    const int Time = 1, Batch = 3;

    static double[] Rand(Random rng, int n, double spread = 1.5) => Enumerable.Range(0, n).Select(_ => (rng.NextDouble() * 2 - 1) * spread).ToArray();
    static float[] F(double[] x) => x.Select(v => (float)v).ToArray();
    static double Sig(double x) => 1 / (1 + Math.Exp(-x));
    static bool Active(int b) => Time < Lengths[b];

    // Reference GRU step: returns h′ (rows that skip the step keep h).
    static double[] GruTwin(double[] gx, double[] gh, double[] h, int hidden)
    {
        int H = hidden, G = 3 * H;
        var y = new double[Batch * H];
        for (int b = 0; b < Batch; b++)
            for (int j = 0; j < H; j++)
            {
                if (!Active(b)) { y[b * H + j] = h[b * H + j]; continue; }
                double r = Sig(gx[b * G + j] + gh[b * G + j]);
                double z = Sig(gx[b * G + H + j] + gh[b * G + H + j]);
                double n = Math.Tanh(gx[b * G + 2 * H + j] + r * gh[b * G + 2 * H + j]);
                y[b * H + j] = (1 - z) * n + z * h[b * H + j];
            }
        return y;
    }

    // Reference LSTM step: returns [c′ ; m = o ⊙ tanh c′] (rows that skip keep c and give m = 0).
    static double[] LstmTwin(double[] gx, double[] gh, double[] c, int hidden)
    {
        int H = hidden, G = 4 * H, BH = Batch * H;
        var y = new double[2 * BH];
        for (int b = 0; b < Batch; b++)
            for (int j = 0; j < H; j++)
            {
                if (!Active(b)) { y[b * H + j] = c[b * H + j]; continue; }
                double Pre(int gate) => gx[b * G + gate * H + j] + gh[b * G + gate * H + j];
                double i = Sig(Pre(0)), f = Sig(Pre(1)), g = Math.Tanh(Pre(2)), o = Sig(Pre(3));
                double cn = f * c[b * H + j] + i * g;
                y[b * H + j] = cn;
                y[BH + b * H + j] = o * Math.Tanh(cn);
            }
        return y;
    }

    static void AssertNear(double[] want, ReadOnlySpan<float> got, double tol, string what)
    {
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= tol * (1 + Math.Abs(want[i])), $"{what}[{i}]: kernel {got[i]}, twin {want[i]}");
    }

    // dL/d(input k) of L = Σ w ⊙ f(inputs) by central differences.
    static double[] Numeric(double[][] inputs, int k, double[] w, Func<double[][], double[]> f)
    {
        var grad = new double[inputs[k].Length];
        for (int i = 0; i < grad.Length; i++)
        {
            double orig = inputs[k][i];
            inputs[k][i] = orig + Fd; double up = f(inputs).Zip(w, (a, b) => a * b).Sum();
            inputs[k][i] = orig - Fd; double down = f(inputs).Zip(w, (a, b) => a * b).Sum();
            inputs[k][i] = orig;
            grad[i] = (up - down) / (2 * Fd);
        }
        return grad;
    }

    [Fact]
    public void GruStepMatchesTwinAndPaddedRowsKeepTheirState()
    {
        var rng = new Random(1);
        for (int H = 1; H <= 40; H++)
        {
            double[] gx = Rand(rng, Batch * 3 * H), gh = Rand(rng, Batch * 3 * H), h = Rand(rng, Batch * H);
            var next = new float[Batch * H]; var saved = new float[Batch * Recurrent.GruSaved * H];
            Recurrent.GruForward(F(gx), F(gh), F(h), next, saved, Batch, H, Lengths, Time);
            AssertNear(GruTwin(gx, gh, h, H), next, 2e-6, $"H={H} h′");
            var noSave = new float[Batch * H];
            Recurrent.GruForward(F(gx), F(gh), F(h), noSave, default, Batch, H, Lengths, Time);
            Assert.Equal(next, noSave);
            Assert.Equal(F(h).AsSpan(H, H).ToArray(), next.AsSpan(H, H).ToArray());
        }
    }

    [Fact]
    public void GruStepBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(2);
        foreach (int H in new[] { 1, 5, 17 })
        {
            double[] gx = Rand(rng, Batch * 3 * H), gh = Rand(rng, Batch * 3 * H), h = Rand(rng, Batch * H), dh = Rand(rng, Batch * H, 1);
            var next = new float[Batch * H]; var saved = new float[Batch * Recurrent.GruSaved * H];
            Recurrent.GruForward(F(gx), F(gh), F(h), next, saved, Batch, H, Lengths, Time);
            var dgx = new float[gx.Length]; var dgh = new float[gh.Length]; var dhPrev = new float[h.Length];
            Recurrent.GruBackward(saved, F(h), F(dh), dgx, dgh, dhPrev, Batch, H, Lengths, Time);
            double[][] inputs = [gx, gh, h];
            Func<double[][], double[]> f = v => GruTwin(v[0], v[1], v[2], H);
            AssertNear(Numeric(inputs, 0, dh, f), dgx, 2e-5, $"H={H} dgx");
            AssertNear(Numeric(inputs, 1, dh, f), dgh, 2e-5, $"H={H} dgh");
            AssertNear(Numeric(inputs, 2, dh, f), dhPrev, 2e-5, $"H={H} dhPrev");
        }
    }

    [Fact]
    public void LstmStepMatchesTwinAndPaddedRowsKeepTheirCell()
    {
        var rng = new Random(3);
        for (int H = 1; H <= 40; H++)
        {
            double[] gx = Rand(rng, Batch * 4 * H), gh = Rand(rng, Batch * 4 * H), c = Rand(rng, Batch * H);
            var cn = new float[Batch * H]; var m = new float[Batch * H]; var saved = new float[Batch * Recurrent.LstmSaved * H];
            Recurrent.LstmForward(F(gx), F(gh), F(c), cn, m, saved, Batch, H, Lengths, Time);
            AssertNear(LstmTwin(gx, gh, c, H), [.. cn, .. m], 2e-6, $"H={H} [c′; m]");
            var cn2 = new float[Batch * H]; var m2 = new float[Batch * H];
            Recurrent.LstmForward(F(gx), F(gh), F(c), cn2, m2, default, Batch, H, Lengths, Time);
            Assert.Equal(cn, cn2); Assert.Equal(m, m2);
        }
    }

    [Fact]
    public void LstmStepBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(4);
        foreach (int H in new[] { 1, 5, 17 })
        {
            double[] gx = Rand(rng, Batch * 4 * H), gh = Rand(rng, Batch * 4 * H), c = Rand(rng, Batch * H);
            double[] w = Rand(rng, 2 * Batch * H, 1);   // [dL/dc′ ; dL/dm]
            var cn = new float[Batch * H]; var m = new float[Batch * H]; var saved = new float[Batch * Recurrent.LstmSaved * H];
            Recurrent.LstmForward(F(gx), F(gh), F(c), cn, m, saved, Batch, H, Lengths, Time);
            var dc = F(w[..(Batch * H)]); var dg = new float[gx.Length];
            Recurrent.LstmBackward(saved, F(c), F(w[(Batch * H)..]), dc, dg, Batch, H, Lengths, Time);
            double[][] inputs = [gx, gh, c];
            Func<double[][], double[]> f = v => LstmTwin(v[0], v[1], v[2], H);
            AssertNear(Numeric(inputs, 0, w, f), dg, 2e-5, $"H={H} dgates (via gx)");
            AssertNear(Numeric(inputs, 1, w, f), dg, 2e-5, $"H={H} dgates (via gh)");
            AssertNear(Numeric(inputs, 2, w, f), dc, 2e-5, $"H={H} dc");
        }
    }

    [Fact]
    public void ActiveRowHelpersSplitRowsByLength()
    {
        float[] src = [1, 2, 3, 4, 5, 6], a = new float[6], i = new float[6], acc = [10, 10, 10, 10, 10, 10];
        Recurrent.CopyActive(src, a, Batch, 2, Lengths, Time);
        Recurrent.CopyInactive(src, i, Batch, 2, Lengths, Time);
        Recurrent.AddActive(src, acc, Batch, 2, Lengths, Time);
        Assert.Equal([1f, 2, 0, 0, 5, 6], a);
        Assert.Equal([0f, 0, 3, 4, 0, 0], i);
        Assert.Equal([11f, 12, 10, 10, 15, 16], acc);
        Recurrent.CopyActive(src, a, Batch, 2);   // no lengths: every row takes part
        Assert.Equal(src, a);
    }
}
