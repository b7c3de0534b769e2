using System.Text.Json;
using Sharpformer.Nn;
using Sharpformer.Optim;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Optim;

/// <summary>Checks against ../shared/fixtures/training (HF transformers 4.30.2 + torch AdamW + linear warmup schedule).</summary>
public class HfTrainingFixtureTests
{
    static JsonElement Load(string name) => JsonDocument.Parse(File.ReadAllText(SharedData.Fixture("training", name))).RootElement;

    /// <summary>A module tree built from dotted parameter names; segments named "LayerNorm" become real LayerNorm modules.</summary>
    sealed class Tree : Module
    {
        readonly Dictionary<string, Tree> _kids = [];
        public void Add(string[] path, int at)
        {
            if (at == path.Length - 1) { RegisterParameter(path[at], Tensor.Zeros(1)); return; }
            if (path[at] == "LayerNorm")
            {
                if (!_kids.ContainsKey(path[at])) { RegisterModule(path[at], new LayerNorm(VarBuilder.Fresh(), 1, 1e-5f)); _kids[path[at]] = null!; }
                return;
            }
            if (!_kids.TryGetValue(path[at], out var kid)) _kids[path[at]] = kid = RegisterModule(path[at], new Tree());
            kid.Add(path, at + 1);
        }
    }

    [Theory]
    [InlineData("bert-tiny-seqcls-train.json")]
    [InlineData("bert-tiny-tokcls-train.json")]
    public void LinearWarmupLearningRatesMatchHf(string file)
    {
        var root = Load(file);
        var hp = root.GetProperty("hyperparameters");
        var opt = new AdamW([new Parameter(Tensor.Zeros(1))], learningRate: (float)hp.GetProperty("lr").GetDouble(),
            weightDecay: (float)hp.GetProperty("weight_decay").GetDouble());
        var sched = LrScheduler.LinearWithWarmup(opt, hp.GetProperty("num_warmup_steps").GetInt64(), hp.GetProperty("num_training_steps").GetInt64());
        foreach (var step in root.GetProperty("steps").EnumerateArray())
        {
            Assert.Equal(step.GetProperty("lr").GetDouble(), opt.Groups[0].LearningRate, 9);
            sched.Step();
        }
    }

    [Theory]
    [InlineData("bert-tiny-seqcls-train.json")]
    [InlineData("bert-tiny-tokcls-train.json")]
    public void WeightDecayGroupingMatchesHfTrainer(string file)
    {
        var root = Load(file);
        var decay = root.GetProperty("weight_decay_param_names").EnumerateArray().Select(e => e.GetString()!).ToHashSet();
        var noDecay = root.GetProperty("no_weight_decay_param_names").EnumerateArray().Select(e => e.GetString()!).ToHashSet();
        var tree = new Tree();
        foreach (var n in decay.Concat(noDecay).OrderBy(n => n, StringComparer.Ordinal)) tree.Add(n.Split('.'), 0);
        var got = ParameterGroups.DescribeHuggingFaceWeightDecay(tree);
        Assert.Equal(decay.Count + noDecay.Count, got.Count);
        foreach (var (name, d) in got) Assert.True(d ? decay.Contains(name) : noDecay.Contains(name), $"{name}: decay={d}");
    }
}
