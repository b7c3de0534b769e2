using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Training;

public class SeedTransformerTests
{
    static readonly SeedTransformerConfig Tiny = new(VocabSize: 11, SequenceLength: 6, EmbedDim: 4, NumHeads: 2, KeyDim: 3,
        FfDim: 5, DenseDim: 5, NumLabels: 3, Dropout: 0.25f);

    // interiorPad puts a padding id inside row 1 (masked inside the attended key range).
    static (int[] Ids, int[] Labels) TinyBatch(bool interiorPad = false)
    {
        int[] ids = [3, 4, 5, 1, 0, 0,   7, 8, interiorPad ? 0 : 9, 10, 2, 6,   2, 0, 0, 0, 0, 0];
        int[] labels = [0, 2, 1];
        return (ids, labels);
    }

    static double Loss(SeedTransformer model, int[] ids, int[] labels)
    {
        using var _ = Autograd.NoGrad();
        model.UseRandom(new TrainingRandom(7));
        return Losses.CrossEntropy(model.Forward(ids, 3).Logits, labels).Item();
    }

    // Central differences in float32 on a tiny model: each parameter entry nudged by ±h, loss recomputed
    // with the same dropout masks (same seed). Tolerance reflects float32 rounding of the loss (~1e-7 / h).
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void GradientsMatchFiniteDifferences(bool maskedAttention, bool maskedPooling)
    {
        var cfg = Tiny with { MaskedAttention = maskedAttention, MaskedPooling = maskedPooling };
        var model = new SeedTransformer(cfg, new TrainingRandom(1));
        // Scale parameters up so gradients are not tiny next to finite-difference noise.
        foreach (var (name, p) in model.NamedParameters())
        {
            var v = p.Value.AsSpan();
            for (int i = 0; i < v.Length; i++) v[i] = v[i] * 3f + (name.EndsWith("bias") ? 0.1f * ((i % 3) - 1) + 0.05f : 0f);
        }
        var (ids, labels) = TinyBatch(interiorPad: maskedAttention);
        model.UseRandom(new TrainingRandom(7));
        Losses.CrossEntropy(model.Forward(ids, 3).Logits, labels).Backward();
        const float h = 2e-3f;
        int checkedCount = 0;
        var failures = new List<string>();
        foreach (var (name, p) in model.NamedParameters())
        {
            var grad = p.Grad!.ToArray();
            for (int i = 0; i < p.Size; i++)
            {
                float orig = p.Value.AsSpan()[i];
                p.Value.AsSpan()[i] = orig + h; double up = Loss(model, ids, labels);
                p.Value.AsSpan()[i] = orig - h; double down = Loss(model, ids, labels);
                p.Value.AsSpan()[i] = orig;
                double numeric = (up - down) / (2 * h);
                double analytic = grad[i];
                if (!(Math.Abs(numeric - analytic) <= 2e-3 + 2e-2 * Math.Abs(numeric)))
                    failures.Add($"{name}[{i}]: analytic {analytic:G6}, numeric {numeric:G6}");
                checkedCount++;
            }
        }
        Assert.Equal(model.ParameterCount(), checkedCount);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void KerasInitialiserBounds()
    {
        var model = new SeedTransformer(new SeedTransformerConfig(), new TrainingRandom(0));
        var byName = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.ToArray());
        // Keras: 3-D attention kernels [32, 2, 32] give U(±0.0743), the output kernel [2, 32, 32] U(±0.2165).
        AssertBound(byName["block.attention.query.weight"], MathF.Sqrt(6f / (64 + 1024)), 0.0743f);
        AssertBound(byName["block.attention.output.weight"], MathF.Sqrt(6f / 128), 0.2165f);
        AssertBound(byName["embeddings.token.weight"], 0.05f, 0.05f);
        Assert.All(byName["block.attention.query.bias"], v => Assert.Equal(0f, v));
        Assert.All(byName["block.ffn_norm.weight"], v => Assert.Equal(1f, v));
        // 20000×32 + 256×32 + 3·(64·32+64) + 32·64+32 + 2·(32·32+32) + 4·32 + 20·32+20 + 4·20+4
        Assert.Equal(20000 * 32 + 256 * 32 + 3 * (64 * 32 + 64) + 32 * 64 + 32 + 2 * (32 * 32 + 32) + 4 * 32 + 20 * 32 + 20 + 4 * 20 + 4,
            model.ParameterCount());
    }

    // The weights a seed gives must not depend on how the model is assembled: one generator, drawn in the order Keras builds
    // the layers (token, position, query, key, value, output, dense1, dense2, classifier dense, classifier output), each
    // element (2u − 1)·limit. Biases and LayerNorm take no draws.
    [Fact]
    public void FreshWeightsAreDrawnInKerasBuildOrder()
    {
        var model = new SeedTransformer(Tiny, new TrainingRandom(42));
        var rng = new TrainingRandom(42);
        int d = Tiny.EmbedDim, hk = Tiny.NumHeads * Tiny.KeyDim;
        float Glorot(int fanIn, int fanOut) => MathF.Sqrt(6f / (fanIn + fanOut));
        (string Name, int Count, float Limit)[] order =
        [
            ("embeddings.token.weight", Tiny.VocabSize * d, 0.05f), ("embeddings.position.weight", Tiny.SequenceLength * d, 0.05f),
            ("block.attention.query.weight", hk * d, Glorot(Tiny.NumHeads * d, Tiny.KeyDim * d)),
            ("block.attention.key.weight", hk * d, Glorot(Tiny.NumHeads * d, Tiny.KeyDim * d)),
            ("block.attention.value.weight", hk * d, Glorot(Tiny.NumHeads * d, Tiny.KeyDim * d)),
            ("block.attention.output.weight", d * hk, Glorot(Tiny.KeyDim * Tiny.NumHeads, d * Tiny.NumHeads)),
            ("block.ffn.dense1.weight", Tiny.FfDim * d, Glorot(d, Tiny.FfDim)), ("block.ffn.dense2.weight", d * Tiny.FfDim, Glorot(Tiny.FfDim, d)),
            ("classifier.dense.weight", Tiny.DenseDim * d, Glorot(d, Tiny.DenseDim)),
            ("classifier.output.weight", Tiny.NumLabels * Tiny.DenseDim, Glorot(Tiny.DenseDim, Tiny.NumLabels)),
        ];
        var byName = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.ToArray());
        foreach (var (name, count, limit) in order)
        {
            var expected = Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1) * limit).ToArray();
            Assert.Equal(expected, byName[name]);
        }
    }

    static void AssertBound(float[] values, float limit, float expectedLimit)
    {
        Assert.Equal(expectedLimit, limit, 4);
        float max = values.Max(MathF.Abs);
        Assert.True(max <= limit && max > 0.95f * limit, $"max |w| = {max}, limit {limit}");
    }

    // Forward trims columns that are padding in every row when attention and pooling are both masked; asking for
    // attentions keeps the full length, so the two calls compare the trimmed run with the full one.
    [Fact]
    public void MaskedModelSkipsTrailingPaddingWithoutChangingLogitsOrGradients()
    {
        var model = new SeedTransformer(Tiny with { MaskedAttention = true, MaskedPooling = true }, new TrainingRandom(5));
        model.Eval();
        int[] ids = [3, 4, 5, 1, 0, 0,   7, 8, 0, 10, 0, 0,   2, 0, 0, 0, 0, 0];   // live prefix: 4 of 6 columns
        int[] labels = [0, 2, 1];
        (float[] Logits, Dictionary<string, float[]> Grads) Run(bool full)
        {
            foreach (var p in model.Parameters()) p.ZeroGrad();
            var logits = model.Forward(ids, 3, returnAttentions: full).Logits;
            Losses.CrossEntropy(logits, labels).Backward();
            return (logits.ToArray(), model.NamedParameters().ToDictionary(n => n.Name, n => n.Parameter.Grad!.ToArray()));
        }
        var trimmed = Run(full: false);
        var full = Run(full: true);
        // Only summation order may differ (padded rows add exact zeros), so agreement is at float32 rounding.
        for (int i = 0; i < full.Logits.Length; i++) Assert.Equal(full.Logits[i], trimmed.Logits[i], 1e-6f);
        foreach (var (name, g) in full.Grads)
            for (int i = 0; i < g.Length; i++)
                Assert.True(Math.Abs(g[i] - trimmed.Grads[name][i]) <= 1e-6f + 1e-5f * Math.Abs(g[i]), $"{name}[{i}]: full {g[i]:G9}, trimmed {trimmed.Grads[name][i]:G9}");
        // The position rows past the live prefix get exactly no gradient either way.
        var pos = trimmed.Grads["embeddings.position.weight"];
        Assert.All(pos[(4 * 4)..], v => Assert.Equal(0f, v));
    }

    [Fact]
    public void MaskedAttentionGivesZeroProbabilityToPadding()
    {
        var model = new SeedTransformer(Tiny with { MaskedAttention = true }, new TrainingRandom(3));
        model.Eval();
        var (ids, _) = TinyBatch();
        var probs = model.Forward(ids, 3, returnAttentions: true).Attentions!.ToArray();
        int T = 6;
        Assert.Equal(3 * 2 * T * T, probs.Length);
        for (int b = 0; b < 3; b++)
            for (int h = 0; h < 2; h++)
                for (int q = 0; q < T; q++)
                {
                    double sum = 0;
                    for (int k = 0; k < T; k++)
                    {
                        float p = probs[((b * 2 + h) * T + q) * T + k];
                        if (ids[b * T + k] == 0) Assert.Equal(0f, p);
                        sum += p;
                    }
                    Assert.Equal(1.0, sum, 5);
                }
    }

    [Fact]
    public void RejectsOutOfRangeIds()
    {
        var model = new SeedTransformer(Tiny, new TrainingRandom(3));
        model.Eval();
        var ids = new int[6]; ids[2] = 11;
        var e = Assert.Throws<SeedTransformerException>(() => model.Forward(ids, 1));
        Assert.Contains("Token id 11", e.Message);
    }
}

public class SoftmaxRowTests
{
    // The one row routine: its statistics against a double-precision softmax, and the attention backward's replay from
    // those statistics equal to the forward's probabilities bit for bit (so recomputed probabilities are the forward's).
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(256)]
    public void RowStatisticsMatchADoubleReferenceAndReplayIsBitIdentical(int cols)
    {
        var rng = new TrainingRandom(cols);
        var x = Enumerable.Range(0, cols).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        var mask = Enumerable.Range(0, cols).Select(j => j % 3 == 2 ? -1e9f : 0f).ToArray();
        if (cols == 1) mask[0] = 0f;
        var y = new float[cols];
        Sharpformer.Kernels.Softmax.RowForward(x, y, mask, out float max, out float inv);
        double refMax = x.Zip(mask).Max(z => (double)z.First + z.Second);
        double refSum = x.Zip(mask).Sum(z => Math.Exp((double)z.First + z.Second - refMax));
        Assert.Equal(refMax, max, 6);
        Assert.Equal(1 / refSum, inv, 1e-6);
        for (int j = 0; j < cols; j++) Assert.Equal(Math.Exp((double)x[j] + mask[j] - refMax) / refSum, y[j], 1e-6);

        var replay = (float[])x.Clone();
        Sharpformer.Kernels.Softmax.RowReplay(replay, mask, max, inv);
        Assert.Equal(y, replay);
        var inPlace = (float[])x.Clone();
        Sharpformer.Kernels.Softmax.RowForward(inPlace, inPlace, mask, out _, out _);
        Assert.Equal(y, inPlace);
    }
}
