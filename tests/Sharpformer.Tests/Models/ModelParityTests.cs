using Sharpformer.Models;
using Sharpformer.Tensors;
using Xunit.Abstractions;

namespace Sharpformer.Tests.Models;

/// <summary>
/// Every number in every fixture expected.json (transformers 4.30.2 outputs) against our models, through both the kernel
/// fast path (eval + NoGrad) and the autograd path, within 1e-5 absolute. Failures name dir, case, quantity and element.
/// </summary>
public sealed class ModelParityTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-5;

    public static TheoryData<string, bool> DirsAndPaths()
    {
        var data = new TheoryData<string, bool>();
        foreach (var d in FixtureModels.Dirs) { data.Add(d, true); data.Add(d, false); }
        return data;
    }

    internal static T Run<T>(bool fast, Func<T> forward)
    {
        if (!fast) return forward();
        using (Autograd.NoGrad()) return forward();
    }

    [Theory, MemberData(nameof(DirsAndPaths))]
    public void HeadOutputsMatchTransformers(string dir, bool fastPath)
    {
        var exp = FixtureModels.Expected(dir);
        var model = FixtureModels.Model(dir, baseModel: false);
        Assert.Equal(exp.ModelClass, model.Architecture);
        var check = new ParityCheck(dir + (fastPath ? " [fast]" : " [autograd]"), Tolerance);
        foreach (var c in exp.Cases) CheckHead(check, model, c, fastPath);
        check.AssertAll(output);
    }

    internal static void CheckHead(ParityCheck check, PretrainedModel model, FixtureCase c, bool fastPath)
    {
        var outputs = c.Outputs;
        switch (model.Head!.Kind)
        {
            case HeadKind.SequenceClassification:
                {
                    var o = Run(fastPath, () => model.Run(c.Input));
                    check.Compare(c.Name, "logits", outputs.GetProperty("logits"), o.Logits!);
                    check.Compare(c.Name, "last_hidden_state", outputs.GetProperty("last_hidden_state"), o.Encoder.LastHiddenState);
                    break;
                }
            case HeadKind.TokenClassification:
                {
                    var o = Run(fastPath, () => model.Run(c.Input));
                    check.Compare(c.Name, "logits", outputs.GetProperty("logits"), o.Logits!);
                    check.Compare(c.Name, "last_hidden_state", outputs.GetProperty("last_hidden_state"), o.Encoder.LastHiddenState);
                    break;
                }
            case HeadKind.MaskedLM:
                {
                    var o = Run(fastPath, () => model.Run(c.Input));
                    check.Compare(c.Name, "last_hidden_state", outputs.GetProperty("last_hidden_state"), o.Encoder.LastHiddenState);
                    var logits = o.Logits!.Contiguous().ToArray();
                    int b = c.Input.BatchSize, s = c.Input.SequenceLength, v = o.Logits!.Dim(-1);
                    var argmax = new float[b * s]; var max = new float[b * s]; var lse = new float[b * s];
                    for (int t = 0; t < b * s; t++)
                    {
                        var row = logits.AsSpan(t * v, v);
                        int best = 0;
                        for (int j = 1; j < v; j++) if (row[j] > row[best]) best = j;
                        double sum = 0;
                        for (int j = 0; j < v; j++) sum += Math.Exp(row[j] - row[best]);
                        argmax[t] = best; max[t] = row[best]; lse[t] = (float)(row[best] + Math.Log(sum));
                    }
                    var (expArgmax, _) = FixtureModels.Flatten(outputs.GetProperty("logits_argmax"));
                    for (int t = 0; t < b * s; t++)
                        check.Exact(c.Name, "logits_argmax", expArgmax[t] == argmax[t], $"{FixtureModels.Index(t, [b, s])}: got {argmax[t]}, expected {expArgmax[t]}");
                    check.Compare(c.Name, "logits_max", outputs.GetProperty("logits_max"), max, [b, s]);
                    check.Compare(c.Name, "logits_logsumexp", outputs.GetProperty("logits_logsumexp"), lse, [b, s]);
                    break;
                }
            default: throw new InvalidOperationException($"{model.Architecture} has no head check.");
        }
    }

    [Theory, MemberData(nameof(DirsAndPaths))]
    public void BaseModelOutputsMatchTransformers(string dir, bool fastPath)
    {
        var exp = FixtureModels.Expected(dir);
        var model = (TransformerEncoder)FixtureModels.Model(dir, baseModel: true);
        var check = new ParityCheck(dir + (fastPath ? " [fast]" : " [autograd]"), Tolerance);
        foreach (var c in exp.Cases)
        {
            var e = c.BaseOutputs;
            bool full = e.TryGetProperty("hidden_states", out var expStates);
            var o = Run(fastPath, () => model.Forward(c.Input, full ? ForwardOptions.All : ForwardOptions.Default));
            check.Compare(c.Name, "last_hidden_state", e.GetProperty("last_hidden_state"), o.LastHiddenState);
            if (e.TryGetProperty("pooler_output", out var pooled))
            {
                Assert.NotNull(o.PoolerOutput);
                check.Compare(c.Name, "pooler_output", pooled, o.PoolerOutput!);
            }
            else Assert.Null(o.PoolerOutput);
            if (!full) { Assert.Null(o.HiddenStates); Assert.Null(o.Attentions); continue; }
            check.Compare(c.Name, "hidden_states", expStates, Stack(o.HiddenStates!), StackShape(o.HiddenStates!));
            check.Compare(c.Name, "attentions", e.GetProperty("attentions"), Stack(o.Attentions!), StackShape(o.Attentions!));
        }
        check.AssertAll(output);
    }

    static float[] Stack(IReadOnlyList<Tensor> ts) => ts.SelectMany(t => t.Contiguous().ToArray()).ToArray();
    static int[] StackShape(IReadOnlyList<Tensor> ts) => [ts.Count, .. ts[0].ShapeArray];

    [Theory, InlineData(true), InlineData(false)]
    public void PyTorchBinGivesTheSameOutputs(bool fastPath)
    {
        const string dir = "bert-tiny-uncased-seqcls";
        var exp = FixtureModels.Expected(dir);
        Assert.True(exp.HasBin);
        var model = FixtureModels.Model(dir, baseModel: false, CheckpointPreference.PyTorchBinOnly);
        Assert.EndsWith("pytorch_model.bin", model.LoadReport!.Source);
        Assert.True(model.LoadReport.IsComplete, string.Join("\n", model.LoadReport.Warnings()));
        var check = new ParityCheck(dir + " (.bin)", Tolerance);
        foreach (var c in exp.Cases) CheckHead(check, model, c, fastPath);
        var baseModel = (TransformerEncoder)FixtureModels.Model(dir, baseModel: true, CheckpointPreference.PyTorchBinOnly);
        foreach (var c in exp.Cases)
        {
            var o = Run(fastPath, () => baseModel.Forward(c.Input));
            check.Compare(c.Name, "base last_hidden_state", c.BaseOutputs.GetProperty("last_hidden_state"), o.LastHiddenState);
            check.Compare(c.Name, "base pooler_output", c.BaseOutputs.GetProperty("pooler_output"), o.PoolerOutput!);
        }
        check.AssertAll(output);
    }

    [Theory, InlineData(true), InlineData(false)]
    public void MaskLogitsAndTop5MatchTransformers(bool fastPath)
    {
        const string dir = "bert-tiny-uncased-mlm";
        var exp = FixtureModels.Expected(dir);
        var model = FixtureModels.Model(dir, baseModel: false);
        var check = new ParityCheck(dir + " mlm.cases", Tolerance);
        int n = 0;
        foreach (var c in exp.Root.GetProperty("mlm").GetProperty("cases").EnumerateArray())
        {
            string name = $"mlm.cases[{n++}]";
            var input = FixtureExpectation.ToInput(c.GetProperty("encoding"));
            var logits = Run(fastPath, () => model.Run(input)).Logits!;
            int v = logits.Dim(-1);
            var all = logits.Contiguous().ToArray();
            var positions = c.GetProperty("mask_positions").EnumerateArray().Select(p => p.GetInt32()).ToArray();
            var expLogits = c.GetProperty("mask_logits").EnumerateArray().ToArray();
            var expTop5 = c.GetProperty("mask_top5_ids_by_logit").EnumerateArray().ToArray();
            Assert.Equal(positions.Length, expLogits.Length);
            for (int m = 0; m < positions.Length; m++)
            {
                var row = all.AsSpan(positions[m] * v, v).ToArray();
                check.Compare(name, $"mask_logits[{m}]", expLogits[m], row, [v]);
                var top5 = Enumerable.Range(0, v).OrderByDescending(j => row[j]).Take(5).ToArray();
                var want = expTop5[m].EnumerateArray().Select(x => x.GetInt32()).ToArray();
                check.Exact(name, "mask_top5_ids_by_logit", top5.SequenceEqual(want), $"mask {m}: got [{string.Join(", ", top5)}], expected [{string.Join(", ", want)}]");
            }
        }
        check.AssertAll(output);
    }
}
