using System.Text.Json.Nodes;
using Sharpformer.Data;
using Sharpformer.Tensors;
using Sharpformer.Training.Workflows;
using Xunit.Abstractions;

namespace Sharpformer.Tests.Training;

/// <summary>
/// Issue 11's claim "bf16 training matches fp32 training curves on the seed model within noise", on a fixed AG News slice:
/// the Keras-tutorial transformer trained by the one seed-model workflow (what <c>train --architecture seed-transformer</c>
/// runs), bf16 entered the way the CLI's <c>--bf16</c> enters it. "Noise" is measured, not assumed: the spread between fp32
/// runs that differ only in their seed.
/// </summary>
[Collection(nameof(Tensors.ThreadCountCollection))]
public sealed class MixedPrecisionTrainingTests(ITestOutputHelper output) : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-bf16-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    const int LogEvery = 16;

    /// <summary>train_loss per <see cref="LogEvery"/> steps (each the mean over its window).</summary>
    double[] Curve(IReadOnlyList<TextExample> train, LabelSet labels, int seed, bool bf16)
    {
        string dir = Path.Combine(_root, $"s{seed}-{(bf16 ? "bf16" : "fp32")}");
        var options = new SeedTrainingOptions
        {
            Epochs = 3, Seed = seed, BatchSize = 32, MaxTokens = 1000, SequenceLength = 32, LoggingSteps = LogEvery, DisableProgressBar = true,
        };
        using (ExecutionScope.Enter(new ExecutionOptions(Threads: 2, Bf16: bf16)))
            SeedTextClassifier.Train(train, null, labels, dir, options);
        return File.ReadLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(o => o["kind"]!.GetValue<string>() == "log").Select(o => o["train_loss"]!.GetValue<double>()).ToArray();
    }

    static double MeanAbsDiff(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    [Fact]
    public void Bf16SeedModelLossCurveStaysWithinTheSpreadOfFp32Seeds()
    {
        var all = AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv"));
        var train = all.Take(2048).ToList();   // 64 steps per epoch, 192 steps in all
        var fp32 = new[] { Curve(train, AgNews.Labels, 0, false), Curve(train, AgNews.Labels, 1, false), Curve(train, AgNews.Labels, 2, false) };
        var bf16 = Curve(train, AgNews.Labels, 0, true);
        output.WriteLine("fp32 s0 " + string.Join(" ", fp32[0].Select(v => v.ToString("F4"))));
        output.WriteLine("fp32 s1 " + string.Join(" ", fp32[1].Select(v => v.ToString("F4"))));
        output.WriteLine("fp32 s2 " + string.Join(" ", fp32[2].Select(v => v.ToString("F4"))));
        output.WriteLine("bf16 s0 " + string.Join(" ", bf16.Select(v => v.ToString("F4"))));
        Assert.Equal(192 / LogEvery, bf16.Length);
        // Noise = how far apart fp32 runs that differ only in the seed are (mean |Δ| per logged window, largest of the three
        // pairs: two or three pairs are a small sample of that spread). bf16 perturbs the trajectory as another seed does
        // (measured on this slice: 0.012 against seed pairs of up to 0.117; at 64 tokens × 256 steps 0.040 against 0.039 / 0.058 / 0.059), so its distance to its fp32
        // twin must not exceed it.
        double seedSpread = new[] { MeanAbsDiff(fp32[0], fp32[1]), MeanAbsDiff(fp32[0], fp32[2]), MeanAbsDiff(fp32[1], fp32[2]) }.Max();
        double precision = MeanAbsDiff(fp32[0], bf16);
        output.WriteLine($"mean |fp32 s0 - bf16 s0| = {precision:F4}; largest mean |fp32 si - fp32 sj| = {seedSpread:F4}");
        Assert.True(precision > 0, "bf16 gave exactly the fp32 curve — the bf16 path did not run");
        Assert.True(precision <= seedSpread, $"bf16 moved the curve by {precision:F4} on average, more than another seed does ({seedSpread:F4})");
        Assert.True(fp32[0][^1] < fp32[0][0] - 0.1, "the slice is too small for the model to learn anything, so the comparison says nothing");
    }
}
