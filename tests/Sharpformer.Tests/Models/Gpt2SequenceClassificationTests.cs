using System.Text.Json;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tensors;
using Sharpformer.Tests.Tensors;
using Sharpformer.Tokenization;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Models;

/// <summary>
/// GPT2ForSequenceClassification and GPT-2 features. The shared fixtures hold no classifier outputs, so the head is checked
/// by hand against transformers' GPT2Model hidden states of the gpt2-tiny fixture (right-padded batch, atol 1e-4): logits[b] =
/// score.weight · h[b, (ids ≠ pad) − 1] — transformers 4.30's rule; its gradients against central finite differences.
/// </summary>
public sealed class Gpt2SequenceClassificationTests : IDisposable
{
    const string Dir = "gpt2-tiny";
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-gpt2cls-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    static JsonElement Case(string name) => Fixtures.Expected(Dir).GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);
    static int[][] Rows(JsonElement e) => e.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
    static float[][][] Hidden(JsonElement c) => c.GetProperty("outputs").GetProperty("last_hidden_state").EnumerateArray()
        .Select(b => b.EnumerateArray().Select(t => t.EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray()).ToArray();

    static LabelSet ThreeLabels => new(["a", "b", "c"]);

    // The fixture's right-padded batch: rows of 4, 2 and 5 real tokens, padded with id 0 (<|endoftext|>, also EOS).
    static (CausalLMInput Input, int[] Last, float[][][] Hidden) RightPadded()
    {
        var c = Case("batch_right_pad");
        var ids = Rows(c.GetProperty("input_ids")); var mask = Rows(c.GetProperty("attention_mask"));
        var input = new CausalLMInput(ids.SelectMany(r => r).ToArray(), ids.Length, ids[0].Length, mask.SelectMany(r => r).ToArray());
        return (input, ids.Select(r => r.Count(x => x != 0) - 1).ToArray(), Hidden(c));
    }

    [Fact]
    public void LoadGptForTaskSetsLabelsAndEosAsPadAndInitialisesOnlyTheScoreLayer()
    {
        var m = FineTuning.LoadGptForTask(SharedData.Fixture(Dir), ThreeLabels, seed: 4);
        Assert.Equal(0, m.Config.PadTokenId);
        Assert.Equal(["a", "b", "c"], m.Config.Labels);
        Assert.Equal(["score.weight"], m.LoadReport!.Missing);
        Assert.Empty(m.LoadReport.Unexpected);
        Assert.Equal([3, 32], m.Score.Weight.Value.ShapeArray);
        Assert.Null(m.Score.Bias);
        Assert.False(m.Training);

        var fresh = FineTuning.LoadGptForTask(SharedData.Fixture(Dir), ThreeLabels, seed: 4, randomInit: true);
        Assert.Equal(m.NamedParameters().Select(p => p.Name), fresh.NamedParameters().Select(p => p.Name));
        Assert.Equal(m.Config.ToJsonString(), fresh.Config.ToJsonString());
        Assert.False(m.Transformer.Wte.Weight.Value.ToArray().AsSpan().SequenceEqual(fresh.Transformer.Wte.Weight.Value.ToArray()));
    }

    [Fact]
    public void LogitsAreTheScoreOfEachRowsLastNonPadTokenOnTransformersHiddenStates()
    {
        var m = FineTuning.LoadGptForTask(SharedData.Fixture(Dir), ThreeLabels, seed: 4);
        var (input, last, hidden) = RightPadded();
        Assert.Equal([3, 1, 4], m.LastTokenPositions(input));
        Assert.Equal(last, m.LastTokenPositions(input));
        var w = m.Score.Weight.Value.ToArray();
        float[] cached, autograd;
        using (Autograd.NoGrad()) cached = m.Forward(input).Logits.ToArray();
        autograd = m.Forward(input).Logits.ToArray();
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
            {
                double want = 0;
                for (int j = 0; j < 32; j++) want += (double)w[c * 32 + j] * hidden[b][last[b]][j];
                Assert.True(Math.Abs(cached[b * 3 + c] - want) <= 1e-4, $"row {b} label {c}: {cached[b * 3 + c]} vs {want} (inference path)");
                Assert.True(Math.Abs(autograd[b * 3 + c] - want) <= 1e-4, $"row {b} label {c}: {autograd[b * 3 + c]} vs {want} (autograd path)");
            }
        // The loss is the mean cross-entropy of those logits.
        int[] labels = [2, 0, 1];
        double ce = 0;
        for (int b = 0; b < 3; b++)
        {
            var row = autograd.Skip(b * 3).Take(3).Select(x => (double)x).ToArray();
            double max = row.Max();
            ce += Math.Log(row.Sum(x => Math.Exp(x - max))) + max - row[labels[b]];
        }
        Assert.Equal(ce / 3, m.Forward(input, SequenceLabels.FromIds(labels)).Loss!.Item(), 5);
    }

    [Fact]
    public void WithoutAPadTokenIdOnlyASingleRowIsAccepted()
    {
        var config = Gpt2Config.Load(SharedData.Fixture(Dir)) with { PadTokenId = null };
        var m = new Gpt2ForSequenceClassification(config, seed: 1);
        var (input, _, _) = RightPadded();
        Assert.Throws<ModelInputException>(() => m.LastTokenPositions(input));
        Assert.Equal([2], m.LastTokenPositions(CausalLMInput.FromIds([5, 6, 7])));
    }

    [Fact]
    public void ScoreAndDecoderGradientsEqualFiniteDifferences()
    {
        var m = FineTuning.LoadGptForTask(SharedData.Fixture(Dir), ThreeLabels, seed: 4);
        var (input, _, _) = RightPadded();
        Assert.False(m.Training);   // dropout off: the function is deterministic
        GradCheck.Check(_ => m.Forward(input).Logits,
            [m.Score.Weight.Value, m.Transformer.LnF.Weight.Value, m.Transformer.H[1].Ln2.Bias.Value], step: 1e-2f, abs: 2e-3, rel: 2e-2);
    }

    [Fact]
    public void SavedClassifierHasHfNamesAndReloadsToTheSameLogits()
    {
        var m = FineTuning.LoadGptForTask(SharedData.Fixture(Dir), ThreeLabels, seed: 4);
        string dir = Path.Combine(_root, "cls");
        m.SavePretrained(dir);
        using (var sd = CheckpointLoader.Load(Path.Combine(dir, "model.safetensors")))
        {
            Assert.Contains("score.weight", sd.Keys);
            Assert.DoesNotContain("score.bias", sd.Keys);
            Assert.Contains("transformer.wte.weight", sd.Keys);
        }
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json"))).RootElement;
        Assert.Equal("GPT2ForSequenceClassification", config.GetProperty("architectures")[0].GetString());
        Assert.Equal(0, config.GetProperty("pad_token_id").GetInt32());
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")));
        var back = Gpt2ForSequenceClassification.FromPretrained(dir);
        Assert.Empty(back.LoadReport!.Missing);
        var (input, _, _) = RightPadded();
        using var _ = Autograd.NoGrad();
        Assert.Equal(m.Forward(input).Logits.ToArray(), back.Forward(input).Logits.ToArray());
    }

    // Frozen GPT-2 features of the fixture's texts equal transformers' last_hidden_state at the last real token (LastToken)
    // and its masked mean (MaskedMean); the texts are tokenised and right-padded here as the fixture was.
    [Fact]
    public void GptFeaturesPoolTransformersHiddenStates()
    {
        var c = Case("batch_right_pad");
        var texts = c.GetProperty("text").EnumerateArray().Select(t => t.GetString()!).ToList();
        var mask = Rows(c.GetProperty("attention_mask"));
        var hidden = Hidden(c);
        var decoder = Gpt2Model.FromPretrained(SharedData.Fixture(Dir));
        var tokenizer = ByteLevelBpeTokenizer.FromDirectory(SharedData.Fixture(Dir));
        foreach (var pooling in new[] { Pooling.LastToken, Pooling.MaskedMean })
        {
            var features = FeatureExtraction.ExtractGpt(decoder, tokenizer, texts, new FeatureOptions { Pooling = pooling, BatchSize = 3 });
            for (int b = 0; b < texts.Count; b++)
            {
                int n = mask[b].Sum();
                for (int j = 0; j < 32; j++)
                {
                    double want = pooling == Pooling.LastToken ? hidden[b][n - 1][j] : Enumerable.Range(0, n).Average(t => (double)hidden[b][t][j]);
                    Assert.True(Math.Abs(features[b][j] - want) <= 1e-4, $"{pooling} text {b} dim {j}: {features[b][j]} vs {want}");
                }
            }
        }
        Assert.Throws<NotSupportedException>(() => FeatureExtraction.ExtractGpt(decoder, tokenizer, texts, new FeatureOptions { Pooling = Pooling.Cls }));
    }
}
