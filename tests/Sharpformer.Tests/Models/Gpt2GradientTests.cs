using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;
using Xunit;

namespace Sharpformer.Tests.Models;

/// <summary>
/// GPT-2's autograd path (the one training uses): its losses equal transformers' on every fixture case, and the gradients
/// of the loss with respect to weights of every kind equal central finite differences — on the gpt2-tiny fixture model and
/// on a random config with scale_attn_by_inverse_layer_idx (the 1/(l + 1) factor the autograd path folds into the queries).
/// </summary>
public class Gpt2GradientTests
{
    const string Dir = "gpt2-tiny";
    static JsonElement Expected => Fixtures.Expected(Dir);

    static int[] Ints(JsonElement e) => Flatten(e).Select(x => x.GetInt32()).ToArray();
    static IEnumerable<JsonElement> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [e];

    static CausalLMInput InputOf(JsonElement c)
    {
        var rows = c.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray();
        var mask = Ints(c.GetProperty("attention_mask"));
        var pos = c.GetProperty("position_ids_passed");
        return new CausalLMInput(rows.SelectMany(r => r).ToArray(), rows.Length, rows[0].Length, mask, pos.ValueKind == JsonValueKind.Null ? null : Ints(pos));
    }

    [Fact]
    public void Autograd_losses_equal_transformers_on_every_fixture_case_within_rtol_1e_5()
    {
        var m = Gpt2LMHeadModel.FromPretrained(SharedData.Fixture(Dir));
        Assert.True(Autograd.IsEnabled);
        int compared = 0;
        foreach (var c in Expected.GetProperty("cases").EnumerateArray())
        {
            var o = c.GetProperty("outputs");
            var input = InputOf(c);
            var checks = new List<(string Field, int[] Labels)> { ("loss", Ints(c.GetProperty("labels"))) };
            if (o.TryGetProperty("loss_labels_equal_input_ids", out _)) checks.Add(("loss_labels_equal_input_ids", input.InputIds));
            if (o.TryGetProperty("loss_valid_rows", out _)) checks.Add(("loss_valid_rows", Ints(c.GetProperty("labels_valid_rows"))));
            foreach (var (field, labels) in checks)
            {
                var expected = o.GetProperty(field);
                float loss = m.Forward(input, null, null, labels).Loss!.Item();
                if (expected.ValueKind == JsonValueKind.Null) { Assert.True(float.IsNaN(loss)); continue; }
                float e = expected.GetSingle();
                Assert.True(Math.Abs(loss - e) <= 1e-5 * Math.Abs(e) + 1e-6, $"{c.GetProperty("name").GetString()} {field}: {loss} vs transformers {e}");
                compared++;
            }
        }
        Assert.True(compared >= 15, $"only {compared} losses compared");
    }

    [Fact]
    public void Loss_gradients_of_the_fixture_model_equal_finite_differences_for_every_kind_of_weight()
    {
        var m = Gpt2LMHeadModel.FromPretrained(SharedData.Fixture(Dir));
        var c = Expected.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == "batch_left_pad_position_ids");
        CheckLossGradients(m, InputOf(c), Ints(c.GetProperty("labels_valid_rows")));
    }

    [Fact]
    public void Loss_gradients_with_scale_attn_by_inverse_layer_idx_equal_finite_differences_and_the_autograd_logits_equal_the_cached_path()
    {
        var config = new Gpt2Config
        {
            VocabSize = 40, NPositions = 16, NEmbd = 12, NLayer = 3, NHead = 3, ActivationFunction = "gelu",
            ScaleAttnByInverseLayerIdx = true, InitializerRange = 0.3, BosTokenId = 0, EosTokenId = 0,
        };
        var m = new Gpt2LMHeadModel(config, seed: 5);
        m.Eval();   // dropout off: the function must be deterministic
        var rng = new Random(3);
        var ids = Enumerable.Range(0, 2 * 7).Select(_ => rng.Next(config.VocabSize)).ToArray();
        int[] mask = [0, 0, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 1, 1, 1];
        int[] pos = [1, 1, 0, 1, 2, 3, 4, /**/ 0, 1, 2, 3, 4, 5, 6];
        var input = new CausalLMInput(ids, 2, 7, mask, pos);
        var labels = ids.Select((x, i) => mask[i] == 0 || (i % 7 > 0 && mask[i - 1] == 0) ? -100 : x).ToArray();

        var autograd = m.Forward(input).Logits.Contiguous().ToArray();
        float[] cached;
        using (Autograd.NoGrad()) cached = m.Forward(input, null, m.NewCache(2, 7)).Logits.Contiguous().ToArray();
        for (int i = 0; i < ids.Length; i++)
        {
            if (mask[i] == 0) continue;   // pad rows differ by design (finfo.min vs the kernel's masking); see the fixture README
            for (int v = 0; v < config.VocabSize; v++)
                Assert.True(Math.Abs(autograd[i * config.VocabSize + v] - cached[i * config.VocabSize + v]) <= 1e-5, $"position {i} token {v}");
        }
        CheckLossGradients(m, input, labels);
    }

    /// <summary>
    /// For each weight tensor, the element with the largest |∂L/∂w| and two random ones: autograd vs (L(w + h) − L(w − h)) / 2h of
    /// the float32 loss (h = 1e-2; the loss is O(1–10), so rounding contributes ≈ 1e-5 and curvature ≈ h²): |Δ| ≤ 2e-4 + 2 %.
    /// </summary>
    static void CheckLossGradients(Gpt2LMHeadModel m, CausalLMInput input, int[] labels)
    {
        const float h = 1e-2f;
        foreach (var p in m.Parameters()) p.ZeroGrad();
        m.Forward(input, null, null, labels).Loss!.Backward();
        var rng = new Random(11);
        int checkedWeights = 0;
        string[] wanted = ["wte", "wpe", "ln_1.weight", "ln_1.bias", "c_attn.weight", "c_attn.bias", "attn.c_proj.weight", "ln_2.bias", "c_fc.weight", "mlp.c_proj.bias", "ln_f.weight"];
        foreach (var (name, p) in m.NamedParameters())
        {
            if (!wanted.Any(w => name.Contains(w, StringComparison.Ordinal))) continue;
            var grad = p.Grad!.ToArray();
            var values = p.Value.AsSpan();
            int largest = 0;
            for (int i = 1; i < grad.Length; i++) if (Math.Abs(grad[i]) > Math.Abs(grad[largest])) largest = i;
            Assert.True(grad[largest] != 0f, $"{name}: all-zero gradient");
            foreach (int i in new[] { largest, rng.Next(grad.Length), rng.Next(grad.Length) })
            {
                float w = values[i];
                p.Value.AsSpan()[i] = w + h; double up = Loss(m, input, labels);
                p.Value.AsSpan()[i] = w - h; double down = Loss(m, input, labels);
                p.Value.AsSpan()[i] = w;
                double numeric = (up - down) / (2 * h);
                Assert.True(Math.Abs(grad[i] - numeric) <= 2e-4 + 2e-2 * Math.Abs(numeric), $"{name}[{i}]: autograd {grad[i]} vs finite difference {numeric}");
                checkedWeights++;
            }
        }
        Assert.True(checkedWeights >= 3 * 11, $"only {checkedWeights} weights checked");
    }

    // The same autograd forward the gradient came from (no cache, autograd on); nothing is backpropagated.
    static double Loss(Gpt2LMHeadModel m, CausalLMInput input, int[] labels) => m.Forward(input, null, null, labels).Loss!.Item();
}
