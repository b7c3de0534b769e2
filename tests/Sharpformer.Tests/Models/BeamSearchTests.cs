using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Tests.Nn;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Models;

/// <summary>
/// Beam search of the Bahdanau encoder–decoder against the `beam` records of ../shared/fixtures/torch-rnn/seq2seq_bahdanau.json
/// (width 3, 12 steps, α = 0.6): tokens and steps exactly, log-probabilities, scores and attention within 1e-5 + 1e-5·|value|.
/// Both sources are searched in one batch (the fixture ran each alone; the rows do not interact).
/// </summary>
public class BeamSearchTests
{
    static (TorchRnnFixture F, BahdanauSeq2Seq Model, BeamSearchOptions Options) Build()
    {
        var (f, model) = Seq2SeqParityTests.Build();
        var d = f.Root.GetProperty("decoding");
        var options = model.BeamOptions(d.GetProperty("beam_width").GetInt32(), d.GetProperty("beam_steps").GetInt32(), d.GetProperty("alpha").GetDouble())
            with { StopEarly = false, RecordSteps = true };
        return (f, model, options);
    }

    static int[] Tokens(JsonElement h) => h.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    static void Close(double expected, double actual, string what) =>
        Assert.True(Math.Abs(actual - expected) <= Abs + Rel * Math.Abs(expected), $"{what}: {actual} vs {expected}");

    static void Same(JsonElement expected, BeamHypothesis actual, string what, bool hasScore = true)
    {
        Assert.Equal(Tokens(expected), actual.Tokens);
        Close(expected.GetProperty("logp").GetDouble(), actual.LogP, $"{what}.logp");
        if (hasScore) Close(expected.GetProperty("score").GetDouble(), actual.Score, $"{what}.score");
        if (expected.TryGetProperty("step", out var step)) Assert.Equal(step.GetInt32(), actual.Step);
    }

    [Fact]
    public void BatchedBeamSearchMatchesPyTorchBestFinishedLiveAndEveryStep()
    {
        var (f, model, options) = Build();
        var results = model.Beam(f.Ints("src"), f.Ints("src_lengths"), options);
        var beams = f.Root.GetProperty("beam").EnumerateArray().ToArray();
        Assert.Equal(beams.Length, results.Length);
        for (int s = 0; s < beams.Length; s++)
        {
            var e = beams[s]; var r = results[s];
            var best = e.GetProperty("best");
            Same(best, r.Best, $"source {s} best");
            Assert.Equal(best.GetProperty("length").GetInt32(), r.Best.Length);
            Assert.Equal(best.GetProperty("finished").GetBoolean(), r.Best.Finished);
            var att = ToTensor(best.GetProperty("attention"));
            AssertClose(att, Tensor.FromArray(r.Best.Attention!.SelectMany(a => a).ToArray(), r.Best.Length, r.Best.Attention![0].Length), $"source {s} best.attention");

            var fin = e.GetProperty("finished").EnumerateArray().ToArray();
            Assert.Equal(fin.Length, r.Finished.Count);
            for (int i = 0; i < fin.Length; i++) Same(fin[i], r.Finished[i], $"source {s} finished[{i}]");
            var liveEnd = e.GetProperty("live_at_end").EnumerateArray().ToArray();
            Assert.Equal(liveEnd.Length, r.LiveAtEnd.Count);
            for (int i = 0; i < liveEnd.Length; i++) { Same(liveEnd[i], r.LiveAtEnd[i], $"source {s} live_at_end[{i}]"); Assert.False(r.LiveAtEnd[i].Finished); }

            var steps = e.GetProperty("steps").EnumerateArray().ToArray();
            Assert.Equal(steps.Length, r.Steps!.Count);
            for (int t = 0; t < steps.Length; t++)
            {
                Assert.Equal(steps[t].GetProperty("step").GetInt32(), r.Steps[t].Step);
                var live = steps[t].GetProperty("live").EnumerateArray().ToArray();
                Assert.Equal(live.Length, r.Steps[t].Live.Count);
                for (int i = 0; i < live.Length; i++) Same(live[i], r.Steps[t].Live[i], $"source {s} step {t + 1} live[{i}]", hasScore: false);
                var newly = steps[t].GetProperty("finished").EnumerateArray().ToArray();
                Assert.Equal(newly.Length, r.Steps[t].Finished.Count);
                for (int i = 0; i < newly.Length; i++) Same(newly[i], r.Steps[t].Finished[i], $"source {s} step {t + 1} finished[{i}]", hasScore: false);
            }
        }
    }

    [Fact]
    public void StoppingEarlyGivesTheSameNBestAsRunningEveryStep()
    {
        var (f, model, options) = Build();
        // 40 steps: long enough for the bound logp / 40^α of the live beams to fall below the best finished scores.
        var longer = options with { MaxSteps = 40, NBest = 2, RecordSteps = false };
        var full = model.Beam(f.Ints("src"), f.Ints("src_lengths"), longer);
        var early = model.Beam(f.Ints("src"), f.Ints("src_lengths"), longer with { StopEarly = true });
        for (int s = 0; s < full.Length; s++)
        {
            Assert.Equal(full[s].NBest.Select(h => h.Tokens), early[s].NBest.Select(h => h.Tokens));
            Assert.Equal(full[s].NBest.Select(h => h.Score), early[s].NBest.Select(h => h.Score));
            Assert.True(full[s].NBest.Zip(full[s].NBest.Skip(1)).All(p => p.First.Score >= p.Second.Score), "n-best is sorted best first");
        }
        Assert.All(early, r => Assert.True(r.StepsRun < longer.MaxSteps, $"stopped after {r.StepsRun} steps"));
    }

    [Fact]
    public void WidthOneBeamFollowsGreedyUntilEos()
    {
        var (f, model, options) = Build();
        var greedy = model.Greedy(f.Ints("src"), f.Ints("src_lengths"), options.MaxSteps);
        var beam = model.Beam(f.Ints("src"), f.Ints("src_lengths"), options with { BeamWidth = 1, Alpha = 0 });
        for (int s = 0; s < beam.Length; s++)
        {
            var g = greedy.Tokens[s];
            int eos = Array.IndexOf(g, options.EosId);
            var expected = eos < 0 ? g : g[..(eos + 1)];
            // With K = 1 the hypothesis that reaches EOS first is finished; the live one continues on the next-best token.
            Assert.Equal(expected, beam[s].Finished.Count > 0 ? beam[s].Finished[0].Tokens : beam[s].LiveAtEnd[0].Tokens);
        }
    }
}
