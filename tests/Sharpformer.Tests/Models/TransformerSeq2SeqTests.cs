using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Tests.Data;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Models;

/// <summary>
/// The Transformer encoder–decoder over ids: decoding through the key/value cache reproduces the teacher-forced forward
/// (logits and head-averaged cross-attention, 1e-5 + 1e-5·|value|), batched beam search equals searching each source alone,
/// names follow nn.Transformer under <c>transformer.</c>, and a saved model reloads through the architecture-agnostic loader.
/// </summary>
public class TransformerSeq2SeqTests
{
    // Two right-padded sources (lengths 6 and 3) over a vocabulary of 13 (PAD 0, BOS 1, EOS 2).
    static readonly int[] Src = [4, 7, 9, 5, 11, 6, 8, 3, 12, 0, 0, 0];
    static readonly int[] Lengths = [6, 3];

    static TransformerSeq2Seq Model(bool shared = true, bool learned = false, int seed = 11)
    {
        var m = new TransformerSeq2Seq(new TransformerSeq2SeqConfig(13, DModel: 16, Heads: 4, EncoderLayers: 2, DecoderLayers: 2, FeedForward: 32,
            Dropout: 0.1f, MaxPositions: 16, SharedEmbeddings: shared, LearnedPositions: learned), seed);
        m.Eval();
        return m;
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void CachedGreedyStepsGiveTheTeacherForcedLogitsAndCrossAttention(bool shared, bool learned)
    {
        var model = Model(shared, learned);
        const int steps = 7;
        var g = model.Greedy(Src, Lengths, steps);
        // Feed BOS + the greedy tokens but the last: the full causal forward must give the same logits at every position.
        var input = g.Tokens.SelectMany(t => new[] { model.BosId }.Concat(t[..^1])).ToArray();
        using var _ = Autograd.NoGrad();
        var full = model.Forward(Src, Lengths, input);
        AssertClose(full.Logits, g.Logits, "logits");
        var enc = model.Encode(Src, Lengths);
        var x = model.TgtEmbedding.Forward(input, 2, steps).Mul(MathF.Sqrt(16))
            .Add(learned ? model.TgtPositions!.Weight.Value.Slice(0, 0, steps) : SinusoidRows(steps, 16));
        var cross = model.Transformer.Decoder.Forward(x, enc.MemoryKeysValues, enc.SourceMask, null, returnCrossAttention: true).CrossAttentions![^1];
        AssertClose(cross.Mean(1), g.Attention, "attention");
        Assert.All(g.Attention.ToArray().Chunk(6).Where((_, i) => i >= steps), row => Assert.Equal(0f, row[3..].Sum()));   // source 2 has 3 letters
    }

    static Tensor SinusoidRows(int rows, int dim)
    {
        var t = Tensor.Zeros(rows, dim);
        for (int p = 0; p < rows; p++)
            for (int j = 0; j < dim; j++)
            {
                double angle = p / Math.Pow(10000, 2 * (j / 2) / (double)dim);
                t.Data[p * dim + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        return t;
    }

    [Fact]
    public void BatchedBeamSearchEqualsSearchingEachSourceAlone()
    {
        var model = Model();
        var options = model.BeamOptions(beamWidth: 3, maxSteps: 8, alpha: 0.6, nBest: 3);
        var batched = model.Beam(Src, Lengths, options);
        var alone = new[] { model.Beam(Src[..6], [6], options)[0], model.Beam(Src[6..9], [3], options)[0] };
        for (int s = 0; s < 2; s++)
        {
            Assert.Equal(alone[s].NBest.Select(h => h.Tokens), batched[s].NBest.Select(h => h.Tokens));
            for (int i = 0; i < alone[s].NBest.Count; i++)
            {
                Assert.True(Math.Abs(alone[s].NBest[i].Score - batched[s].NBest[i].Score) <= 1e-5, $"source {s} hypothesis {i} score");
                var a = alone[s].NBest[i].Attention!; var b = batched[s].NBest[i].Attention!;
                Assert.Equal(a.Length, b.Length);
                for (int t = 0; t < a.Length; t++)
                    for (int j = 0; j < a[t].Length; j++) Assert.True(Math.Abs(a[t][j] - b[t][j]) <= 1e-5, $"source {s} hypothesis {i} attention[{t}, {j}]");
            }
        }
    }

    [Fact]
    public void ParametersCarryNnTransformerNamesUnderTransformer()
    {
        var names = Model().NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal("embedding.weight", names[0]);
        Assert.Contains("transformer.encoder.layers.1.self_attn.in_proj_weight", names);
        Assert.Contains("transformer.decoder.layers.0.multihead_attn.in_proj_bias", names);
        Assert.Equal("transformer.decoder.norm.bias", names[^1]);
        var separate = Model(shared: false, learned: true).NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal(["src_embedding.weight", "tgt_embedding.weight", "src_positions.weight", "tgt_positions.weight"], separate.Take(4));
        Assert.Equal(["generator.weight", "generator.bias"], separate.TakeLast(2));
    }

    [Fact]
    public void SavedModelReloadsByItsModelTypeWithIdenticalLogits()
    {
        var model = Model(shared: false);
        using var dir = new TempDir();
        model.Save(dir.Path);
        var back = Assert.IsType<TransformerSeq2Seq>(Seq2SeqModels.Load(dir.Path));
        Assert.Equal(model.Config, back.Config);
        back.Eval();
        int[] input = [1, 5, 6, 1, 7, 8];
        Assert.Equal(model.Forward(Src, Lengths, input).Logits.ToArray(), back.Forward(Src, Lengths, input).Logits.ToArray());
        var e = Assert.Throws<ConfigException>(() => BahdanauSeq2Seq.Load(dir.Path));
        Assert.Equal("model_type", e.Key);
    }

    [Fact]
    public void SequenceLongerThanMaxPositionsIsRejectedWithTheLimit()
    {
        var e = Assert.Throws<ArgumentException>(() => Model().Forward(new int[20], [20], [1, 4]));
        Assert.Contains("max_positions 16", e.Message);
    }

    [Fact]
    public void CachedStepWithAutogradOnIsRejected()
    {
        var model = Model();
        var state = model.StartDecoding(model.Encode(Src, Lengths), 4);
        Assert.Throws<InvalidOperationException>(() => model.Step(state, [1, 1]));
    }
}
