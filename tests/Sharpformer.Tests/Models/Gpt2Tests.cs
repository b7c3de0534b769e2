using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Xunit;

namespace Sharpformer.Tests.Models;

/// <summary>GPT-2 against ../shared/fixtures/gpt2-tiny (transformers 4.30.2): every case, every recorded value.</summary>
public class Gpt2Tests(Xunit.Abstractions.ITestOutputHelper output)
{
    const string Dir = "gpt2-tiny";
    // Values are float32 rounded to 7 significant digits; 1e-5 absolute covers that rounding plus float32 arithmetic.
    const double Tol = 1e-5;

    static readonly Lazy<Gpt2LMHeadModel> Model = new(() => Gpt2LMHeadModel.FromPretrained(SharedData.Fixture(Dir)));
    static JsonElement Expected => Fixtures.Expected(Dir);
    static IEnumerable<JsonElement> Cases => Expected.GetProperty("cases").EnumerateArray();

    internal static int[] Ints(JsonElement e) => Flatten(e).Select(x => x.GetInt32()).ToArray();
    static float[] Floats(JsonElement e) => Flatten(e).Select(x => x.GetSingle()).ToArray();
    static IEnumerable<JsonElement> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [e];

    internal static CausalLMInput InputOf(JsonElement c, int? take = null)
    {
        var rows = c.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray();
        var mask = c.GetProperty("attention_mask").EnumerateArray().Select(Ints).ToArray();
        var pos = c.GetProperty("position_ids_passed");
        var posRows = pos.ValueKind == JsonValueKind.Null ? null : pos.EnumerateArray().Select(Ints).ToArray();
        int t = take ?? rows[0].Length;
        return new CausalLMInput(rows.SelectMany(r => r[..t]).ToArray(), rows.Length, t, mask.SelectMany(r => r[..t]).ToArray(),
            posRows?.SelectMany(r => r[..t]).ToArray());
    }

    static double MaxDiff(ReadOnlySpan<float> actual, float[] expected, string what)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: {actual.Length} values, {expected.Length} expected");
        double worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        Assert.True(worst <= Tol, $"{what}: max |Δ| = {worst:E2} > {Tol:E0}");
        return worst;
    }

    static float[] ToHeads(Tensor kv, int heads)
    {
        // [B, T, H·d] → [B, H, T, d] as transformers' past_key_values
        int b = kv.Dim(0), t = kv.Dim(1), w = kv.Dim(2), d = w / heads;
        return kv.Reshape(b, t, heads, d).Permute(0, 2, 1, 3).Contiguous().ToArray();
    }

    [Fact]
    public void Every_forward_case_matches_transformers_logits_hidden_states_attentions_losses_and_cache_within_1e_5()
    {
        var m = Model.Value;
        double worst = 0;
        using var _ = Autograd.NoGrad();
        foreach (var c in Cases)
        {
            string name = c.GetProperty("name").GetString()!;
            var o = c.GetProperty("outputs");
            var input = InputOf(c);
            var cache = m.NewCache(input.BatchSize, input.SequenceLength);
            var r = m.Forward(input, ForwardOptions.All, cache, Ints(c.GetProperty("labels")));
            int b = input.BatchSize, t = input.SequenceLength, v = m.Config.VocabSize;
            var logits = r.Logits.Contiguous().AsSpan();
            if (o.TryGetProperty("logits", out var lg)) worst = Math.Max(worst, MaxDiff(logits, Floats(lg), $"{name} logits"));
            else
            {
                var last = new float[b * v];
                for (int i = 0; i < b; i++) logits.Slice(((i + 1) * t - 1) * v, v).CopyTo(last.AsSpan(i * v));
                worst = Math.Max(worst, MaxDiff(last, Floats(o.GetProperty("logits_last")), $"{name} logits_last"));
                var argmax = Ints(o.GetProperty("logits_argmax"));
                for (int i = 0; i < b * t; i++) Assert.Equal(argmax[i], LogitsProcessing.ArgMax(logits.Slice(i * v, v)));
            }
            worst = Math.Max(worst, MaxDiff(r.Decoder.LastHiddenState.Contiguous().AsSpan(), Floats(o.GetProperty("last_hidden_state")), $"{name} last_hidden_state"));
            var hs = o.GetProperty("hidden_states").EnumerateArray().ToArray();
            for (int l = 0; l < hs.Length; l++) worst = Math.Max(worst, MaxDiff(r.Decoder.HiddenStates![l].Contiguous().AsSpan(), Floats(hs[l]), $"{name} hidden_states[{l}]"));
            if (o.TryGetProperty("attentions", out var att))
            {
                var a = att.EnumerateArray().ToArray();
                for (int l = 0; l < a.Length; l++) worst = Math.Max(worst, MaxDiff(r.Decoder.Attentions![l].Contiguous().AsSpan(), Floats(a[l]), $"{name} attentions[{l}]"));
            }
            var loss = o.GetProperty("loss");
            if (loss.ValueKind == JsonValueKind.Null) Assert.True(float.IsNaN(r.Loss!.Item()), $"{name}: no target, NaN loss expected");
            else worst = Math.Max(worst, MaxDiff([r.Loss!.Item()], [loss.GetSingle()], $"{name} loss"));
            if (o.TryGetProperty("loss_labels_equal_input_ids", out var lin))
                worst = Math.Max(worst, MaxDiff([m.Forward(input, null, null, input.InputIds).Loss!.Item()], [lin.GetSingle()], $"{name} loss_labels_equal_input_ids"));
            if (o.TryGetProperty("loss_valid_rows", out var lv))
                worst = Math.Max(worst, MaxDiff([m.Forward(input, null, null, Ints(c.GetProperty("labels_valid_rows"))).Loss!.Item()], [lv.GetSingle()], $"{name} loss_valid_rows"));
            if (o.TryGetProperty("past_key_values", out var pkv))
            {
                var layers = pkv.EnumerateArray().ToArray();
                for (int l = 0; l < layers.Length; l++)
                {
                    var kv = layers[l].EnumerateArray().ToArray();
                    worst = Math.Max(worst, MaxDiff(ToHeads(cache.Keys(l), m.Config.NHead), Floats(kv[0]), $"{name} past keys[{l}]"));
                    worst = Math.Max(worst, MaxDiff(ToHeads(cache.Values(l), m.Config.NHead), Floats(kv[1]), $"{name} past values[{l}]"));
                }
            }
        }
        output.WriteLine($"worst |Δ| over every forward value: {worst:E2}");
        Assert.True(worst <= Tol);
    }

    [Fact]
    public void Cached_last_position_logits_equal_the_full_forward_and_transformers_cached_logits()
    {
        var m = Model.Value;
        using var _ = Autograd.NoGrad();
        int checkedCases = 0;
        foreach (var c in Cases)
        {
            if (!c.TryGetProperty("incremental", out var inc) || inc.ValueKind == JsonValueKind.Null) continue;
            var full = InputOf(c);
            int b = full.BatchSize, t = full.SequenceLength, v = m.Config.VocabSize;
            var cache = m.NewCache(b, 2);   // grows while decoding
            var prefix = InputOf(c, t - 1);
            m.Forward(prefix, null, cache);
            var ids = new int[b]; int[]? pos = full.PositionIds == null ? null : new int[b];
            for (int i = 0; i < b; i++) { ids[i] = full.InputIds[i * t + t - 1]; if (pos != null) pos[i] = full.PositionIds![i * t + t - 1]; }
            var cached = m.Forward(new CausalLMInput(ids, b, 1, full.AttentionMask, pos), null, cache).Logits.Contiguous().AsSpan();
            MaxDiff(cached, Floats(inc.GetProperty("cached_last_logits")), $"{c.GetProperty("name").GetString()} cached");
            MaxDiff(cached, Floats(inc.GetProperty("full_last_logits")), $"{c.GetProperty("name").GetString()} cached vs full");
            checkedCases++;
        }
        Assert.True(checkedCases >= 8);
    }

    [Fact]
    public void Autograd_path_gives_the_same_logits_and_loss_as_the_cached_inference_path_and_backpropagates()
    {
        var m = Gpt2LMHeadModel.FromPretrained(SharedData.Fixture(Dir));
        var c = Cases.Single(x => x.GetProperty("name").GetString() == "batch_left_pad_position_ids");
        var input = InputOf(c);
        var r = m.Forward(input, null, null, Ints(c.GetProperty("labels")));
        MaxDiff(r.Logits.Contiguous().AsSpan(), Floats(c.GetProperty("outputs").GetProperty("logits")), "autograd logits");
        MaxDiff([r.Loss!.Item()], [c.GetProperty("outputs").GetProperty("loss").GetSingle()], "autograd loss");
        r.Loss!.Backward();
        var g = m.Transformer.Wte.Weight.Grad!.ToArray();
        Assert.Contains(g, x => x != 0f);
        Assert.All(g, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void Loading_reports_match_transformers_and_save_pretrained_reproduces_the_safetensors_and_config_bytes()
    {
        var m = Model.Value;
        Assert.True(m.LoadReport!.IsComplete, m.LoadReport.ToString());
        var fromBin = Gpt2LMHeadModel.FromPretrained(SharedData.Fixture(Dir), new ModelLoadOptions { Checkpoint = CheckpointPreference.PyTorchBinOnly });
        Assert.True(fromBin.LoadReport!.IsComplete);
        Assert.Contains("lm_head.weight", fromBin.LoadReport.Tied);
        var bare = Gpt2Model.FromPretrained(SharedData.Fixture(Dir), new ModelLoadOptions { Checkpoint = CheckpointPreference.PyTorchBinOnly });
        Assert.Equal(["lm_head.weight"], bare.LoadReport!.Unexpected);
        Assert.True(Gpt2Model.FromPretrained(SharedData.Fixture(Dir)).LoadReport!.IsComplete);

        var dir = Path.Combine(Path.GetTempPath(), "gpt2-save-" + Guid.NewGuid().ToString("N"));
        try
        {
            m.SavePretrained(dir);
            Assert.Equal(File.ReadAllBytes(SharedData.Fixture(Dir, "model.safetensors")), File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
            Assert.Equal(File.ReadAllText(SharedData.Fixture(Dir, "config.json")), File.ReadAllText(Path.Combine(dir, "config.json")));
            Assert.True(File.Exists(Path.Combine(dir, "merges.txt")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void Checkpoints_with_the_old_causal_mask_buffers_load_without_unexpected_keys()
    {
        Assert.True(Gpt2Loading.IsIgnoredBuffer("transformer.h.0.attn.bias"));
        Assert.True(Gpt2Loading.IsIgnoredBuffer("h.3.attn.masked_bias"));
        Assert.False(Gpt2Loading.IsIgnoredBuffer("transformer.h.0.attn.c_attn.bias"));
    }

    internal static GenerationConfig ConfigOf(JsonElement kwargs)
    {
        var json = kwargs.GetRawText();
        return GenerationConfig.FromJson(json) with { EosTokenIds = [0], BosTokenId = 0 };
    }

    [Fact]
    public void Generate_reproduces_every_fixture_run_greedy_beam_penalties_and_left_padded_batch()
    {
        var m = Model.Value;
        var g = Expected.GetProperty("generation");
        var prompts = g.GetProperty("prompts").EnumerateArray().Select(p => Ints(p.GetProperty("input_ids"))).ToArray();
        using var _ = Autograd.NoGrad();
        foreach (var run in g.GetProperty("runs").EnumerateArray())
        {
            string name = run.GetProperty("name").GetString()!;
            var config = ConfigOf(run.GetProperty("kwargs"));
            var outputs = run.GetProperty("outputs").EnumerateArray().ToArray();
            if (name == "greedy_batch_left_pad")
            {
                var ids = run.GetProperty("batch_input_ids").EnumerateArray().Select(Ints).ToArray();
                var mask = run.GetProperty("batch_attention_mask").EnumerateArray().Select(Ints).ToArray();
                var res = Generator.Generate(m, ids, config, mask);
                for (int i = 0; i < outputs.Length; i++) Assert.Equal(Ints(outputs[i].GetProperty("sequence")), res.Sequences[i]);
                continue;
            }
            for (int p = 0; p < prompts.Length; p++)
            {
                var res = Generator.Generate(m, [prompts[p]], config);
                if (outputs[p].TryGetProperty("sequence", out var seq)) Assert.Equal(Ints(seq), res.Sequences[0]);
                else
                {
                    var seqs = outputs[p].GetProperty("sequences").EnumerateArray().Select(Ints).ToArray();
                    Assert.Equal(seqs.Length, res.Sequences.Count);
                    for (int k = 0; k < seqs.Length; k++) Assert.Equal(seqs[k], res.Sequences[k]);
                    MaxDiff(res.SequenceScores!.ToArray(), Floats(outputs[p].GetProperty("sequences_scores")), $"{name} sequences_scores");
                }
            }
        }
    }

    [Fact]
    public async Task Streaming_yields_the_greedy_tokens_one_by_one()
    {
        var m = Model.Value;
        var g = Expected.GetProperty("generation");
        var prompt = Ints(g.GetProperty("prompts")[0].GetProperty("input_ids"));
        var greedy = g.GetProperty("runs").EnumerateArray().First(r => r.GetProperty("name").GetString() == "greedy");
        var expected = Ints(greedy.GetProperty("outputs")[0].GetProperty("new_tokens"));
        var got = new List<int>();
        await foreach (var id in Generator.StreamAsync(m, prompt, ConfigOf(greedy.GetProperty("kwargs")))) got.Add(id);
        Assert.Equal(expected, got);
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_top_k_1_equals_greedy()
    {
        var m = Model.Value;
        var prompt = Ints(Expected.GetProperty("generation").GetProperty("prompts")[0].GetProperty("input_ids"));
        var sample = new GenerationConfig { MaxNewTokens = 8, DoSample = true, TopK = 20, TopP = 0.9, Temperature = 0.8, EosTokenIds = [0], PadTokenId = 0 };
        using var _ = Autograd.NoGrad();
        var a = Generator.Generate(m, [prompt], sample, rng: new Random(7)).Sequences[0];
        var b = Generator.Generate(m, [prompt], sample, rng: new Random(7)).Sequences[0];
        Assert.Equal(a, b);
        var top1 = Generator.Generate(m, [prompt], sample with { TopK = 1 }, rng: new Random(1)).Sequences[0];
        var greedy = Generator.Generate(m, [prompt], sample with { DoSample = false }).Sequences[0];
        Assert.Equal(greedy, top1);
    }
}
