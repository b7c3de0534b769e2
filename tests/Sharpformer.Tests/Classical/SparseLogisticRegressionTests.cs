using System.Text.RegularExpressions;
using Sharpformer.Classical;
using Sharpformer.Data;

namespace Sharpformer.Tests.Classical;

public partial class SparseLogisticRegressionTests
{
    [Fact]
    public void SparseRowsGiveTheSameModelAsDenseRows()
    {
        var rng = new SplitMix64(4);
        int n = 60, d = 12;
        var dense = new double[n, d];
        var sparse = new SparseRows(d);
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 3;
            var idx = new List<int>();
            var val = new List<float>();
            for (int j = 0; j < d; j++)
            {
                if (rng.NextDouble() < 0.6) continue;
                float v = (float)(rng.NextDouble() * 2 + (j % 3 == y[i] ? 1 : 0));
                dense[i, j] = v; idx.Add(j); val.Add(v);
            }
            sparse.Add(idx.ToArray(), val.ToArray());
        }
        var a = new LogisticRegression().Fit(dense, y);
        var b = new LogisticRegression().Fit(sparse, y);
        for (int k = 0; k < 3; k++) for (int j = 0; j < d; j++) Assert.Equal(a.Coefficients[k, j], b.Coefficients[k, j], 1e-9);
        Assert.Equal(a.Predict(dense), b.Predict(sparse));
        Assert.Equal(a.Optimization!.Iterations, b.Optimization!.Iterations);
    }

    [Fact]
    public void BadSparseRowsAreRejected()
    {
        var rows = new SparseRows(3);
        Assert.Throws<ArgumentException>(() => rows.Add([3], [1f]));
        Assert.Throws<ArgumentException>(() => rows.Add([1, 1], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => rows.Add([0], [float.NaN]));
        Assert.Throws<ArgumentException>(() => rows.Add([0, 1], [1f]));
    }

    [GeneratedRegex("[a-z0-9]+")]
    private static partial Regex Word();

    /// <summary>Bag-of-words on AG News (features as in agnews_bow_reference.py); sklearn 1.2.1 test accuracy at the
    /// converged optimum (C = 0.1, 144 iterations) is 0.8810526315789474.</summary>
    [Fact]
    public void AgNewsBagOfWordsMatchesScikitLearnAccuracy()
    {
        var train = AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv"));
        var test = AgNews.ReadTest(SharedData.DataFile("ag_news", "test.csv"));
        static string[] Tokens(string text) => Word().Matches(text.ToLowerInvariant()).Select(m => m.Value).ToArray();
        var df = new Dictionary<string, int>();
        foreach (var e in train) foreach (var t in Tokens(e.Text).Distinct()) df[t] = df.GetValueOrDefault(t) + 1;
        var vocab = df.Where(kv => kv.Value >= 2).Select(kv => kv.Key).Order(StringComparer.Ordinal).Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);
        Assert.Equal(16805, vocab.Count);
        SparseRows Featurize(IEnumerable<TextExample> examples)
        {
            var rows = new SparseRows(vocab.Count);
            foreach (var e in examples)
            {
                var counts = Tokens(e.Text).Where(vocab.ContainsKey).GroupBy(t => vocab[t]).OrderBy(g => g.Key).ToArray();
                rows.Add(counts.Select(g => g.Key).ToArray(), counts.Select(g => (float)g.Count()).ToArray());
            }
            return rows;
        }
        var xTrain = Featurize(train);
        Assert.Equal(466682, xTrain.NonZeros);
        var model = new LogisticRegression(new LogisticRegressionOptions(C: 0.1, MaxIterations: 1000)).Fit(xTrain, train.Select(e => e.Label).ToArray());
        Assert.True(model.Optimization!.Converged, model.Optimization.Stop.ToString());
        var predicted = model.Predict(Featurize(test));
        double accuracy = Sharpformer.Metrics.ClassificationMetrics.Accuracy(test.Select(e => e.Label).ToArray(), predicted);
        // Same convex optimum, different stopping point: allow 0.2 % (15 of 7,600 test texts).
        Assert.InRange(accuracy, 0.8810526315789474 - 0.002, 0.8810526315789474 + 0.002);
    }
}
