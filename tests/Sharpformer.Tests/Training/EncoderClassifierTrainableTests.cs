using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Training;

/// <summary>The gradients the adapter leaves on the model equal plain autograd gradients, with and without dropout, and AdamW steps through the adapter (gradients zeroed in place) equal a hand-written loop.</summary>
public class EncoderClassifierTrainableTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // What the trainer does per step: TrainStep inside a scope over a pool that lives as long as the loop. After two
    // warm-up steps, the fixture BERT's step allocates only the graph's bookkeeping; its tensors come from the pool.
    [Fact]
    public void WarmedUpTrainStepInAScopeAllocatesUnderATenthOfAnUnscopedStep()
    {
        var dir = SharedData.Fixture("bert-tiny-uncased-seqcls");
        var texts = AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv")).Take(8).ToList();
        var tok = Sharpformer.Tokenization.BertTokenizer.FromDirectory(dir);
        var batch = FineTuning.EncodeTexts(tok, texts, 32, true).Collate(Enumerable.Range(0, 8).ToArray());
        (long Bytes, float Loss) Measure(TensorPool? pool)
        {
            var model = FineTuning.LoadForTask(dir, false, AgNews.Labels, 3, 0.1); model.Train();
            var tr = new EncoderClassifierTrainable(model);
            var rng = new TrainingRandom(5);
            float loss = 0;
            void Step() { using var scope = pool?.Scope(); loss = tr.TrainStep(batch, rng, 1f); }
            Step(); Step();
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 4; i++) Step();
            return ((GC.GetAllocatedBytesForCurrentThread() - before) / 4, loss);
        }
        var unscoped = Measure(null);
        var scoped = Measure(new TensorPool());
        output.WriteLine($"bytes per step: unscoped {unscoped.Bytes}, scoped {scoped.Bytes}");
        Assert.Equal(unscoped.Loss, scoped.Loss);   // same seeds, same gradients accumulated: the same sixth loss
        Assert.True(scoped.Bytes * 10 < unscoped.Bytes, $"scoped step allocates {scoped.Bytes} bytes, unscoped {unscoped.Bytes}");
    }

    [Fact]
    public void AdapterGradientsEqualAutogradAndStepsMatchAManualLoop()
    {
        var dir = SharedData.Fixture("bert-tiny-uncased-seqcls");
        var texts = AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv")).Take(8).ToList();
        var tok = Sharpformer.Tokenization.BertTokenizer.FromDirectory(dir);
        var data = FineTuning.EncodeTexts(tok, texts, 32, true);
        var batch = data.Collate(Enumerable.Range(0, 8).ToArray());
        foreach (double drop in new[] { 0.0, 0.1 })
        {
            var m1 = FineTuning.LoadForTask(dir, false, AgNews.Labels, 3, drop); m1.Train();
            m1.UseRandom(new TrainingRandom(5));
            var loss = m1.Run(new EncoderInput(batch.InputIds, 8, batch.Seq, batch.TypeIds, batch.AttentionMask), labels: SequenceLabels.FromIds(batch.Labels!)).Loss!;
            loss.Backward();
            var plain = m1.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray());
            var m2 = FineTuning.LoadForTask(dir, false, AgNews.Labels, 3, drop); m2.Train();
            var tr = new EncoderClassifierTrainable(m2);
            tr.TrainStep(batch, new TrainingRandom(5), 1f);
            var bad = new List<string>();
            foreach (var (name, p) in m2.NamedParameters())
            {
                double maxd = p.Grad!.ToArray().Zip(plain[name]).Max(z => Math.Abs(z.First - z.Second));
                if (maxd > 1e-6) bad.Add($"{drop} {name} {maxd}");
            }
            Assert.True(bad.Count == 0, string.Join("\n", bad));
            // Three AdamW steps both ways: gradients dropped (Module.ZeroGrad) vs zeroed in place (as the trainer does).
            var o1 = new Sharpformer.Optim.AdamW(m1.Parameters(), 1e-3, 0.9, 0.999, 1e-8, 0f);
            var p2 = TrainingOptimizer.TrainableParameters(tr.Module).Select(p => p.Parameter).ToList();
            var o2 = new Sharpformer.Optim.AdamW(p2, 1e-3, 0.9, 0.999, 1e-8, 0f);
            var r1 = new TrainingRandom(9); var r2 = new TrainingRandom(9);
            m1.UseRandom(r1);
            var l1 = new List<float>(); var l2 = new List<float>();
            TrainingOptimizer.ZeroGradients(p2);
            m1.ZeroGrad();
            for (int step = 0; step < 3; step++)
            {
                var l = m1.Run(new EncoderInput(batch.InputIds, 8, batch.Seq, batch.TypeIds, batch.AttentionMask), labels: SequenceLabels.FromIds(batch.Labels!)).Loss!;
                l1.Add(l.Item()); l.Backward();
                o1.Step();
                m1.ZeroGrad();
                l2.Add(tr.TrainStep(batch, r2, 1f));
                o2.Step();
                TrainingOptimizer.ZeroGradients(p2);
            }
            Assert.True(l1.SequenceEqual(l2), $"{drop}: {string.Join(",", l1)} vs {string.Join(",", l2)}");
        }
    }
}
