using System.Text.Json;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

/// <summary>Head losses (chosen as HF chooses them), training-mode behaviour and gradients against PyTorch's.</summary>
public sealed class ModelHeadTests
{
    static FixtureCase Case(string dir, string name) => FixtureModels.Expected(dir).Cases.Single(c => c.Name == name);

    static double LogSoftmaxAt(float[] row, int target)
    {
        double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
        return row[target] - max - Math.Log(sum);
    }

    [Fact]
    public void SingleLabelLossIsCrossEntropyOfTheLogits()
    {
        var model = FixtureModels.Model("bert-tiny-uncased-seqcls", false);
        var input = Case("bert-tiny-uncased-seqcls", "padded_batch").Input;
        int[] labels = [2, 0, 3];
        var o = model.Run(input, labels: SequenceLabels.FromIds(labels));
        var logits = o.Logits!.ToArray();
        double expected = -Enumerable.Range(0, 3).Average(b => LogSoftmaxAt(logits[(b * 4)..(b * 4 + 4)], labels[b]));
        Assert.Equal(expected, o.Loss!.Item(), 5);
        Assert.Equal(ProblemType.SingleLabelClassification, HeadLosses.ResolveProblemType(null, 4, SequenceLabels.FromIds(labels)));
    }

    [Fact]
    public void FloatLabelsWithSeveralClassesMeanMultiLabelBinaryCrossEntropy()
    {
        var model = FixtureModels.Model("bert-tiny-uncased-seqcls", false);
        var input = Case("bert-tiny-uncased-seqcls", "padded_batch").Input;
        float[] targets = [1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0];
        var o = model.Run(input, labels: SequenceLabels.FromValues(targets));
        var x = o.Logits!.ToArray();
        double expected = Enumerable.Range(0, 12).Average(i => Math.Max(x[i], 0) - x[i] * targets[i] + Math.Log(1 + Math.Exp(-Math.Abs(x[i]))));
        Assert.Equal(expected, o.Loss!.Item(), 5);
        Assert.Throws<ModelInputException>(() => model.Run(input, labels: SequenceLabels.FromValues(1, 0, 1)));
    }

    [Fact]
    public void OneLabelMeansRegressionWithMse()
    {
        var model = (BertForSequenceClassification)AutoModel.FromPretrained(SharedData.Fixture("bert-tiny-uncased-seqcls"),
            new ModelLoadOptions { NumLabels = 1, IgnoreMismatchedSizes = true, Seed = 11 });
        var input = Case("bert-tiny-uncased-seqcls", "padded_batch").Input;
        float[] targets = [0.5f, -1f, 2f];
        var o = model.Run(input, labels: SequenceLabels.FromValues(targets));
        var x = o.Logits!.ToArray();
        Assert.Equal([3, 1], o.Logits!.ShapeArray);
        Assert.Equal(Enumerable.Range(0, 3).Average(i => (x[i] - targets[i]) * (double)(x[i] - targets[i])), o.Loss!.Item(), 5);
        Assert.Equal(ProblemType.Regression, HeadLosses.ResolveProblemType(null, 1, SequenceLabels.FromIds(1, 2, 3)));
        Assert.Equal(ProblemType.Regression, HeadLosses.ResolveProblemType("regression", 4, SequenceLabels.FromIds(1, 2, 3)));
    }

    [Fact]
    public void TokenLossIgnoresMinus100()
    {
        var model = FixtureModels.Model("distilbert-tiny-uncased-tokcls", false);
        var input = Case("distilbert-tiny-uncased-tokcls", "padded_batch").Input;
        var labels = input.AttentionMask!.Select((m, i) => m == 0 || i % 17 == 0 ? -100 : i % 9).ToArray();
        var o = model.Run(input, labels: SequenceLabels.FromIds(labels));
        var logits = o.Logits!.ToArray();
        var kept = Enumerable.Range(0, labels.Length).Where(i => labels[i] != -100).ToList();
        double expected = -kept.Average(i => LogSoftmaxAt(logits[(i * 9)..(i * 9 + 9)], labels[i]));
        Assert.Equal(expected, o.Loss!.Item(), 5);
        Assert.Throws<ModelInputException>(() => model.Run(input, labels: SequenceLabels.FromIds(labels[1..])));
        Assert.Throws<ModelInputException>(() => model.Run(input, labels: SequenceLabels.FromIds(labels.Select(_ => 9).ToArray())));
    }

    [Fact]
    public void MlmLossIsCrossEntropyOverLabelledPositions()
    {
        var model = FixtureModels.Model("bert-tiny-uncased-mlm", false);
        var input = Case("bert-tiny-uncased-mlm", "fox").Input;
        var labels = Enumerable.Repeat(-100, input.TokenCount).ToArray();
        labels[2] = input.InputIds[2]; labels[5] = input.InputIds[5];
        var o = model.Run(input, labels: SequenceLabels.FromIds(labels));
        var logits = o.Logits!.ToArray(); int v = o.Logits!.Dim(-1);
        double expected = -new[] { 2, 5 }.Average(i => LogSoftmaxAt(logits[(i * v)..((i + 1) * v)], labels[i]));
        Assert.Equal(expected, o.Loss!.Item(), 4);
    }

    [Fact]
    public void DropoutIsActiveOnlyInTrainingMode()
    {
        var dir = SharedData.Fixture("bert-tiny-uncased-seqcls");
        var model = (BertForSequenceClassification)AutoModel.FromPretrained(dir);
        var input = Case("bert-tiny-uncased-seqcls", "fox").Input;
        var eval1 = model.Run(input).Logits!.ToArray();
        model.Train();
        var train1 = model.Run(input).Logits!.ToArray();
        var train2 = model.Run(input).Logits!.ToArray();
        Assert.NotEqual(eval1, train1);
        Assert.NotEqual(train1, train2);
        model.Eval();
        Assert.Equal(eval1, model.Run(input).Logits!.ToArray());
        float[] fast;
        using (Autograd.NoGrad()) fast = model.Run(input).Logits!.ToArray();
        // The kernel fast path sums in another order (bias and residual before the GEMM): equal within float rounding.
        Assert.All(fast.Zip(eval1), p => Assert.Equal(p.Second, p.First, 1e-5f));
    }

    /// <summary>
    /// transformers' own step-0 gradients (training fixture: dropout 0, 8 sequences, CrossEntropy) — the autograd path
    /// of the whole model, loss included, against PyTorch's backward.
    /// </summary>
    [Fact]
    public void GradientsMatchPyTorchOnTheTrainingFixture()
    {
        var doc = JsonDocument.Parse(File.ReadAllBytes(SharedData.Fixture("training", "bert-tiny-seqcls-train.json"))).RootElement;
        var dir = SharedData.Fixture("bert-tiny-uncased-seqcls");
        var config = BertConfig.Load(dir) with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };
        var model = new BertForSequenceClassification(config);
        using (var sd = CheckpointLoader.Load(dir)) Assert.True(model.LoadCheckpoint(sd).IsComplete);
        model.Train();
        var input = FixtureExpectation.ToInput(doc.GetProperty("batch"));
        var labels = doc.GetProperty("labels").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var loss = model.Run(input, labels: SequenceLabels.FromIds(labels)).Loss!;
        var step0 = doc.GetProperty("steps")[0];
        Assert.Equal(step0.GetProperty("loss").GetDouble(), loss.Item(), 5);
        loss.Backward();

        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray());
        double norm = Math.Sqrt(grads.Values.Sum(g => g.Sum(x => (double)x * x)));
        Assert.Equal(step0.GetProperty("grad_norm_before_clip").GetDouble(), norm, 4);
        int compared = 0;
        foreach (var p in doc.GetProperty("step0_grads_before_clipping").EnumerateObject())
        {
            if (p.Name.Contains("key.bias")) continue; // its true gradient is 0: values are rounding noise (fixture README)
            var g = grads[p.Name];
            Assert.Equal(p.Value.GetProperty("l2").GetDouble(), Math.Sqrt(g.Sum(x => (double)x * x)), 1e-4 * Math.Max(1, p.Value.GetProperty("l2").GetDouble()));
            if (p.Value.TryGetProperty("values", out var values))
            {
                var (exp, _) = FixtureModels.Flatten(values);
                for (int i = 0; i < exp.Length; i++)
                    Assert.True(Math.Abs(exp[i] - g[i]) <= 1e-6 + 1e-4 * Math.Abs(exp[i]), $"{p.Name}[{i}]: got {g[i]}, PyTorch {exp[i]}");
            }
            compared++;
        }
        Assert.True(compared >= 5);
    }
}

/// <summary>Inference allocates no autograd state; the DistilBERT MLM head (no fixture) is tied and round-trips.</summary>
public sealed class ModelInferenceTests
{
    [Fact]
    public void NoGradForwardRecordsNoGraph()
    {
        var model = FixtureModels.Model("bert-tiny-uncased-seqcls", false);
        var input = FixtureModels.Expected("bert-tiny-uncased-seqcls").Cases[0].Input;
        ModelOutput o;
        using (Autograd.NoGrad()) o = model.Run(input, ForwardOptions.All, SequenceLabels.FromIds(1));
        var all = new[] { o.Logits!, o.Loss!, o.Encoder.LastHiddenState, o.Encoder.PoolerOutput! }.Concat(o.Encoder.HiddenStates!).Concat(o.Encoder.Attentions!);
        Assert.All(all, t => { Assert.False(t.RequiresGrad); Assert.True(t.IsLeaf); });
        var withGrad = model.Run(input);
        Assert.True(withGrad.Logits!.RequiresGrad);
    }

    [Fact]
    public void DistilBertMaskedLMIsTiedInitialisedAndRoundTrips()
    {
        var dir = SharedData.Fixture("distilbert-tiny-uncased-seqcls");
        var config = DistilBertConfig.Load(dir) with { Architectures = ["DistilBertForMaskedLM"] };
        var model = (DistilBertForMaskedLM)AutoModel.FromConfig(config, new ModelLoadOptions { Seed = 4 });
        LoadReport report;
        using (var sd = Sharpformer.Checkpoints.CheckpointLoader.Load(dir)) report = model.LoadCheckpoint(sd);
        Assert.Equal(["vocab_layer_norm.bias", "vocab_layer_norm.weight", "vocab_projector.bias", "vocab_transform.bias", "vocab_transform.weight"], report.Missing.Order());
        Assert.Equal(["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"], report.Unexpected.Order());
        Assert.DoesNotContain(model.NamedParameters(), p => p.Name == "vocab_projector.weight");
        model.Eval();
        var input = FixtureModels.Expected("distilbert-tiny-uncased-seqcls").Cases[0].Input;
        float[] logits;
        using (Autograd.NoGrad()) logits = model.Run(input).Logits!.ToArray();
        Assert.Equal(input.TokenCount * 30522, logits.Length);

        // logits = LN(gelu(W·h + b))·Eᵀ + bias, with E the word embeddings (the tie).
        var h = model.DistilBert.Forward(input).LastHiddenState;
        var x = model.HeadNorm!.Forward(model.HeadDense!.Forward(h).Gelu()).ToArray();
        var e = model.DistilBert.Embeddings.WordEmbeddings.Weight.Value.ToArray();
        for (int t = 0; t < input.TokenCount; t += 2)
            foreach (int j in new[] { 0, 999, 30521 })
            {
                double dot = 0;
                for (int i = 0; i < 64; i++) dot += x[t * 64 + i] * e[j * 64 + i];
                Assert.Equal(dot, logits[t * 30522 + j], 4);
            }

        var outDir = Path.Combine(Path.GetTempPath(), "sf-distil-mlm-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.SavePretrained(outDir);
            using (var saved = Sharpformer.Checkpoints.CheckpointLoader.Load(outDir)) Assert.False(saved.ContainsKey("vocab_projector.weight"));
            var reloaded = (DistilBertForMaskedLM)AutoModel.FromPretrained(outDir);
            Assert.True(reloaded.LoadReport!.IsComplete, string.Join("\n", reloaded.LoadReport.Warnings()));
            using (Autograd.NoGrad()) Assert.Equal(logits, reloaded.Run(input).Logits!.ToArray());
        }
        finally { if (Directory.Exists(outDir)) Directory.Delete(outDir, true); }
    }
}

/// <summary>The fast path's chunking (whole sequences per chunk of ~512 tokens) against the autograd path on a batch of several chunks.</summary>
public sealed class FastPathChunkingTests
{
    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("distilbert-tiny-uncased-seqcls")]
    public void MultiChunkBatchEqualsTheModulePath(string dir)
    {
        var model = (TransformerEncoder)FixtureModels.Model(dir, baseModel: true);
        var rng = new Random(3);
        const int batch = 11, seq = 128; // 4 sequences per chunk → 3 chunks, the last one partial
        var ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(1000, 30000)).ToArray();
        var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < seq - (i / seq) * 5 ? 1 : 0).ToArray();
        var input = new EncoderInput(ids, batch, seq, attentionMask: mask);
        EncoderOutput fast;
        using (Autograd.NoGrad()) fast = model.Forward(input, ForwardOptions.All);
        var slow = model.Forward(input, ForwardOptions.All);
        static void Close(Tensor a, Tensor b, string what)
        {
            var x = a.Contiguous().ToArray(); var y = b.Contiguous().ToArray();
            Assert.Equal(a.ShapeArray, b.ShapeArray);
            double worst = x.Zip(y).Max(p => Math.Abs(p.First - p.Second));
            Assert.True(worst <= 1e-5, $"{what}: worst |Δ| {worst:E3}");
        }
        Close(fast.LastHiddenState, slow.LastHiddenState, "last_hidden_state");
        if (fast.PoolerOutput != null) Close(fast.PoolerOutput, slow.PoolerOutput!, "pooler_output");
        for (int l = 0; l < fast.HiddenStates!.Count; l++) Close(fast.HiddenStates[l], slow.HiddenStates![l], $"hidden_states[{l}]");
        for (int l = 0; l < fast.Attentions!.Count; l++) Close(fast.Attentions[l], slow.Attentions![l], $"attentions[{l}]");
    }
}
