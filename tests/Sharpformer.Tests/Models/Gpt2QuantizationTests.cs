using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Cli.Commands;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

/// <summary>
/// GPT-2 on int8 (dynamic quantization) and bf16 weights against fp32: the block projections and the tied LM head's own copy
/// of wte run packed, the embedding gather and the key/value cache stay fp32. Last-token logits keep cosine ≥ 0.999 (the
/// issue's bar) on a GPT-2-small-width random model over the fixture's inputs, the fixture's greedy runs keep their tokens,
/// the cache path equals the full forward, and a quantized checkpoint round-trips through save / load / the CLI verbs.
/// </summary>
public class Gpt2QuantizationTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const string Dir = "gpt2-tiny";
    static JsonElement Expected => Fixtures.Expected(Dir);
    static IEnumerable<JsonElement> Cases => Expected.GetProperty("cases").EnumerateArray();

    static Gpt2LMHeadModel Packed(Gpt2LMHeadModel m, string dtype)
    {
        if (dtype == "int8") DynamicQuantization.Quantize(m); else Bf16Inference.Convert(m);
        return m;
    }

    static Gpt2LMHeadModel Fixture(string? dtype = null)
    {
        var m = Gpt2LMHeadModel.FromPretrained(SharedData.Fixture(Dir));
        return dtype == null ? m : Packed(m, dtype);
    }

    // GPT-2 small's width, heads and FFN; two layers and an 8192-token vocabulary keep the test fast.
    static readonly Gpt2Config RealSize = new() { NLayer = 2, NPositions = 128, VocabSize = 8192 };

    /// <summary>Last-token logits [B, V] of every row (the prediction generate uses), through the cache path.</summary>
    static float[] LastLogits(Gpt2LMHeadModel m, CausalLMInput input)
    {
        using var _ = Autograd.NoGrad();
        return m.NextTokenLogits(input, m.NewCache(input.BatchSize, input.SequenceLength));
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("bf16")]
    public void Real_size_random_gpt2_keeps_last_token_logits_at_cosine_0999_on_every_fixture_input(string dtype)
    {
        var m = new Gpt2LMHeadModel(RealSize, seed: 5);
        m.Eval();
        var inputs = Cases.Select(c => (Name: c.GetProperty("name").GetString(), Input: Gpt2Tests.InputOf(c))).ToArray();
        var fp32 = inputs.Select(x => LastLogits(m, x.Input)).ToArray();
        Packed(m, dtype);
        double worst = 1;
        for (int i = 0; i < inputs.Length; i++)
        {
            double cos = DynamicQuantizationTests.MinTokenCosine(fp32[i], LastLogits(m, inputs[i].Input), RealSize.VocabSize, null);
            worst = Math.Min(worst, cos);
            Assert.True(cos >= 0.999, $"{dtype} case {inputs[i].Name}: last-token logits cosine {cos:F6}");
        }
        output.WriteLine($"{dtype}: worst last-token logits cosine {worst:F6}");
    }

    /// <remarks>The tiny fixture is deliberately extreme (initializer_range 0.2, width 32, perturbed LayerNorms); its last-token
    /// logits still keep the issue's bar (measured worst: int8 0.99973, bf16 0.99997).</remarks>
    [Theory]
    [InlineData("int8", 0.999)]
    [InlineData("bf16", 0.999)]
    public void Tiny_fixture_keeps_last_token_logits_at_cosine_0999_on_every_case(string dtype, double bar)
    {
        var fp32 = Fixture();
        var packed = Fixture(dtype);
        double worst = 1;
        foreach (var c in Cases)
        {
            var input = Gpt2Tests.InputOf(c);
            double cos = DynamicQuantizationTests.MinTokenCosine(LastLogits(fp32, input), LastLogits(packed, input), fp32.Config.VocabSize, null);
            worst = Math.Min(worst, cos);
            Assert.True(cos >= bar, $"{dtype} case {c.GetProperty("name").GetString()}: last-token logits cosine {cos:F6}");
        }
        output.WriteLine($"{dtype}: worst last-token logits cosine {worst:F6}");
    }

    /// <remarks>
    /// A greedy run may only leave transformers' tokens at a step where fp32 itself nearly ties: the first differing token must
    /// come at a step whose recorded top-1 − top-2 score margin is below <paramref name="margin"/> (the fixture's
    /// steps_top2). Measured on the tiny fixture's extreme weights: int8 keeps 7 of the 12 greedy sequences whole and leaves the
    /// others at margins 0.012–0.030, bf16 keeps 10 of 12 and leaves 2 at margin 0.009; the bars are 0.05 and 0.02.
    /// </remarks>
    [Theory]
    [InlineData("int8", 0.05)]
    [InlineData("bf16", 0.02)]
    public void Fixture_greedy_runs_keep_every_token_up_to_a_near_tie(string dtype, double margin)
    {
        var m = Fixture(dtype);
        var g = Expected.GetProperty("generation");
        var prompts = g.GetProperty("prompts").EnumerateArray().Select(p => Gpt2Tests.Ints(p.GetProperty("input_ids"))).ToArray();
        int identical = 0, total = 0;
        using var _ = Autograd.NoGrad();
        foreach (var run in g.GetProperty("runs").EnumerateArray())
        {
            string name = run.GetProperty("name").GetString()!;
            if (!name.StartsWith("greedy", StringComparison.Ordinal)) continue;
            var config = Gpt2Tests.ConfigOf(run.GetProperty("kwargs"));
            var outputs = run.GetProperty("outputs").EnumerateArray().ToArray();
            IReadOnlyList<int[]> got;
            if (name == "greedy_batch_left_pad")
            {
                var ids = run.GetProperty("batch_input_ids").EnumerateArray().Select(Gpt2Tests.Ints).ToArray();
                var mask = run.GetProperty("batch_attention_mask").EnumerateArray().Select(Gpt2Tests.Ints).ToArray();
                got = Generator.Generate(m, ids, config, mask).Sequences;
            }
            else got = prompts.Select(p => Generator.Generate(m, [p], config).Sequences[0]).ToArray();
            for (int i = 0; i < outputs.Length; i++)
            {
                var expected = Gpt2Tests.Ints(outputs[i].GetProperty("sequence"));
                int newTokens = outputs[i].GetProperty("new_tokens").GetArrayLength(), start = expected.Length - newTokens;
                total++;
                int diff = Enumerable.Range(0, Math.Min(expected.Length, got[i].Length)).FirstOrDefault(k => expected[k] != got[i][k], -1);
                if (diff < 0 && expected.Length == got[i].Length) { identical++; continue; }
                if (diff < 0) diff = Math.Min(expected.Length, got[i].Length);   // one stopped early (EOS) where the other did not
                Assert.True(diff >= start, $"{dtype} {name} row {i}: the prompt changed");
                var step = outputs[i].GetProperty("steps_top2")[diff - start];
                double m2 = step[1].GetDouble() - step[3].GetDouble();
                output.WriteLine($"{dtype} {name} row {i}: first differing new token {diff - start} at fp32 margin {m2:F4}");
                Assert.True(m2 < margin, $"{dtype} {name} row {i}: new token {diff - start} differs although fp32's margin is {m2:F4} ≥ {margin}");
            }
        }
        output.WriteLine($"{dtype}: {identical} of {total} greedy sequences identical");
    }

    /// <remarks>Activations are quantized (or rounded) per row, so a row's result does not depend on the other rows of the call:
    /// one token at a time through the cache gives the full forward's logits up to float summation order (1e-4 absolute).</remarks>
    [Theory]
    [InlineData("int8")]
    [InlineData("bf16")]
    public void Cached_decode_on_packed_weights_equals_the_full_forward(string dtype)
    {
        var m = Fixture(dtype);
        var c = Cases.First(x => x.GetProperty("name").GetString() == "contractions_numbers");
        var full = Gpt2Tests.InputOf(c);
        int t = full.SequenceLength, v = m.Config.VocabSize;
        using var _ = Autograd.NoGrad();
        var expected = m.Forward(full).Logits.Contiguous().ToArray();
        var cache = m.NewCache(1, t);
        for (int i = 0; i < t; i++)
        {
            var step = m.NextTokenLogits(new CausalLMInput([full.InputIds[i]], 1, 1), cache);
            for (int j = 0; j < v; j++)
                Assert.True(Math.Abs(step[j] - expected[i * v + j]) <= 1e-4, $"{dtype} position {i} logit {j}: {step[j]} vs {expected[i * v + j]}");
        }
    }

    [Fact]
    public void Quantized_checkpoint_stores_int8_conv1d_weights_in_their_layout_and_the_head_copy_and_reloads_identically()
    {
        var q = Fixture("int8");
        var outDir = Path.Combine(Path.GetTempPath(), "sf-gpt2-int8-" + Guid.NewGuid().ToString("N"));
        try
        {
            q.SavePretrained(outDir);
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
            Assert.Equal(DynamicQuantization.Method, config["quantization_config"]!["quant_method"]!.GetValue<string>());
            Assert.Equal("decoder_linear_and_lm_head", config["quantization_config"]!["modules"]!.GetValue<string>());
            using (var sd = CheckpointLoader.Load(Path.Combine(outDir, "model.safetensors")))
            {
                var w = sd["transformer.h.0.attn.c_attn.weight"];
                Assert.Equal(DType.I8, w.DType);
                Assert.Equal(new[] { 32, 96 }, w.Shape);                                   // Conv1D [in, out], as the fp32 file
                Assert.Equal(new[] { 1, 96 }, sd["transformer.h.0.attn.c_attn.weight_scale"].Shape);
                Assert.Equal(DType.I8, sd["lm_head.weight"].DType);
                Assert.Equal(new[] { 2000, 32 }, sd["lm_head.weight"].Shape);
                Assert.Equal(new[] { 2000 }, sd["lm_head.weight_scale"].Shape);
                Assert.Equal(DType.F32, sd["transformer.wte.weight"].DType);        // the embedding gather stays exact
                // Dequantized weight = scale[column] · q[row, column] must be the weights the model multiplies by.
                var deq = q.Transformer.H[0].Attn.CAttn.Int8Weight!.Dequantize();
                var stored = w.ToInt64(); var scales = sd["transformer.h.0.attn.c_attn.weight_scale"].ToFloat32();
                for (int k = 0; k < 32; k++)
                    for (int n = 0; n < 96; n++) Assert.Equal(deq[n * 32 + k], scales[n] * stored[k * 96 + n]);
            }
            var back = Gpt2LMHeadModel.FromPretrained(outDir);
            Assert.True(DynamicQuantization.IsQuantized(back));
            Assert.Empty(back.LoadReport!.Missing);
            Assert.Empty(back.LoadReport.Unexpected);
            foreach (var c in Cases)
            {
                var input = Gpt2Tests.InputOf(c);
                Assert.Equal(LastLogits(q, input), LastLogits(back, input));
            }
        }
        finally { if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true); }
    }

    [Fact]
    public async Task Quantize_verb_accepts_gpt2_and_generate_runs_the_quantized_checkpoint()
    {
        var outDir = Path.Combine(Path.GetTempPath(), "sf-gpt2-int8-" + Guid.NewGuid().ToString("N"));
        try
        {
            var stdout = new StringWriter(); var stderr = new StringWriter();
            Assert.Equal(0, QuantizeCommand.Execute(SharedData.Fixture(Dir), outDir, stdout, stderr));
            Assert.Contains("GPT2LMHeadModel", stdout.ToString());

            var g = Expected.GetProperty("generation");
            var prompt = g.GetProperty("prompts")[0].GetProperty("text").GetString()!;
            var expected = Generator.Generate(Fixture("int8"), [Gpt2Tests.Ints(g.GetProperty("prompts")[0].GetProperty("input_ids"))],
                Gpt2Tests.ConfigOf(g.GetProperty("runs")[0].GetProperty("kwargs"))).Sequences[0];
            var text = new StringWriter();
            Assert.Equal(0, await GenerateCommand.ExecuteAsync(new GenerateCommand.Settings(outDir, prompt, MaxNewTokens: 20, Json: true), text));
            var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var ids = lines[..^1].Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt32()).ToArray();
            Assert.Equal(expected[^ids.Length..], ids);

            Assert.Equal(1, QuantizeCommand.Execute(outDir, outDir + "-again", new StringWriter(), stderr));
            Assert.Contains("already int8-quantized", stderr.ToString());
        }
        finally { if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true); }
    }

    [Fact]
    public void Export_refuses_a_quantized_gpt2_checkpoint()
    {
        var outDir = Path.Combine(Path.GetTempPath(), "sf-gpt2-int8-" + Guid.NewGuid().ToString("N"));
        try
        {
            Fixture("int8").SavePretrained(outDir);
            var e = Assert.Throws<Sharpformer.Training.Workflows.ModelExportException>(() => Sharpformer.Training.Workflows.ModelExport.Export(outDir, outDir + "-export"));
            Assert.Contains("int8-quantized", e.Message);
            Assert.False(Directory.Exists(outDir + "-export"));
        }
        finally { if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true); }
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("bf16")]
    public void Packed_gpt2_refuses_training(string dtype)
    {
        var m = Fixture(dtype);
        m.Train();
        Assert.Throws<NotSupportedException>(() => m.Forward(CausalLMInput.FromIds([5, 6, 7])));
    }
}
