using Sharpformer.Metrics;

namespace Sharpformer.Tests.Metrics;

// Expected values: scikit-learn 1.2.1 (precision_recall_fscore_support / classification_report / confusion_matrix,
// zero_division=0), on the examples from sklearn's own docstrings plus a seeded random case (RandomState(0)).
public class ClassificationMetricsTests
{
    const double Tol = 1e-12;

    [Fact]
    public void F1ScoreDocstringExample()
    {
        int[] yTrue = [0, 1, 2, 0, 1, 2], yPred = [0, 2, 1, 0, 0, 1];
        var r = ClassificationMetrics.Report(yTrue, yPred);
        Assert.Equal(0.26666666666666666, r.Macro.F1, Tol);
        Assert.Equal(0.3333333333333333, r.Micro.F1, Tol);
        Assert.Equal(0.26666666666666666, r.Weighted.F1, Tol);
        Assert.Equal(0.2222222222222222, r.Macro.Precision, Tol);
        Assert.Equal([0.8, 0.0, 0.0], r.Classes.Select(c => c.F1).ToArray());
        Assert.Equal([2, 2, 2], r.Classes.Select(c => c.Support).ToArray());
        Assert.Equal(2.0 / 3, r.Classes[0].Precision, Tol);
    }

    [Fact]
    public void ClassificationReportDocstringExample()
    {
        var r = ClassificationMetrics.Report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], names: ["class 0", "class 1", "class 2"]);
        Assert.Equal(0.5, r["class 0"].Precision, Tol);
        Assert.Equal(0.66666666666666663, r["class 0"].F1, Tol);
        Assert.Equal(0.0, r["class 1"].F1);
        Assert.Equal(0.80000000000000004, r["class 2"].F1, Tol);
        Assert.Equal(0.6, r.Accuracy, Tol);
        Assert.Equal(0.55555555555555547, r.Macro.Recall, Tol);
        Assert.Equal(0.48888888888888893, r.Macro.F1, Tol);
        Assert.Equal(0.69999999999999996, r.Weighted.Precision, Tol);
        Assert.Equal(0.61333333333333340, r.Weighted.F1, Tol);
        var table = r.ToString();
        Assert.Contains("     class 2      1.00      0.67      0.80         3", table);
        Assert.Contains("weighted avg      0.70      0.60      0.61         5", table);
        Assert.Contains("    accuracy                          0.60         5", table);
    }

    [Fact]
    public void LabelsOnlyPredictedOrOnlyTrueScoreZero()
    {
        int[] yTrue = [0, 0, 1, 1, 3], yPred = [0, 2, 1, 1, 1];
        var r = ClassificationMetrics.Report(yTrue, yPred);
        Assert.Equal([0, 1, 2, 3], r.Classes.Select(c => int.Parse(c.Name)).ToArray());
        Assert.Equal(0.41666666666666663, r.Macro.Precision, Tol);
        Assert.Equal(0.375, r.Macro.Recall, Tol);
        Assert.Equal(0.3666666666666667, r.Macro.F1, Tol);
        Assert.Equal(0.6666666666666666, r.Weighted.Precision, Tol);
        Assert.Equal(0.5866666666666667, r.Weighted.F1, Tol);
        Assert.Equal(0.6, r.Micro.F1, Tol);
        var sub = ClassificationMetrics.Report(yTrue, yPred, labels: [0, 1]);
        Assert.Equal(0.8333333333333333, sub.Macro.Precision, Tol);
        Assert.Equal(0.7333333333333334, sub.Macro.F1, Tol);
        Assert.Equal(0.75, sub.Micro.F1, Tol);
        var half = ClassificationMetrics.Report(yTrue, yPred, beta: 0.5);
        Assert.Equal(0.83333333333333337, half.Classes[0].F1, 1e-8);
        Assert.Equal(0.71428571, half.Classes[1].F1, 1e-8);
    }

    [Fact]
    public void SeededRandomCaseMatchesScikitLearn()
    {
        int[] a = [4, 0, 3, 3, 3, 1, 3, 2, 4, 0, 0, 4, 2, 1, 0, 1, 1, 0, 1, 4, 3, 0, 3, 0, 2, 3, 0, 1, 3, 3, 3, 0, 1, 1, 1, 0, 2, 4, 3, 3];
        int[] b = [2, 0, 3, 3, 3, 1, 3, 2, 4, 2, 1, 4, 3, 3, 0, 1, 3, 4, 1, 4, 3, 1, 2, 1, 4, 3, 0, 1, 3, 3, 3, 0, 0, 0, 3, 0, 3, 0, 4, 0];
        var r = ClassificationMetrics.Report(a, b);
        Assert.Equal(0.503968253968254, r.Macro.Precision, Tol);
        Assert.Equal(0.5088888888888888, r.Macro.Recall, Tol);
        Assert.Equal(0.5028156054471844, r.Macro.F1, Tol);
        Assert.Equal(0.5478174603174603, r.Weighted.Precision, Tol);
        Assert.Equal(0.5449530732425469, r.Weighted.F1, Tol);
        Assert.Equal(0.55, r.Micro.F1, Tol);
        Assert.Equal(0.55, ClassificationMetrics.Accuracy(a, b), Tol);
        Assert.Equal([10, 9, 4, 12, 5], r.Classes.Select(c => c.Support).ToArray());
    }

    [Fact]
    public void ConfusionMatrixDocstringExample()
    {
        var m = ConfusionMatrix.Compute([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3, ["ant", "bird", "cat"]);
        Assert.Equal(new long[,] { { 2, 0, 0 }, { 0, 0, 1 }, { 1, 0, 2 } }, m.Counts);
        Assert.Equal(2.0 / 3, m.NormalizedByTrue()[2, 2], Tol);
        Assert.Equal("true\\pred   ant bird  cat\nant           2    0    0\nbird          0    0    1\ncat           1    0    2\n", m.ToString());
    }

    [Fact]
    public void MismatchedInputsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => ClassificationMetrics.Accuracy([1, 2], [1]));
        var e = Assert.Throws<ArgumentException>(() => ConfusionMatrix.Compute([0, 3], [0, 1], 3));
        Assert.Contains("Example 1", e.Message);
    }
}
