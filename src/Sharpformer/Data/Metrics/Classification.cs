using System.Globalization;
using System.Text;

namespace Sharpformer.Metrics;

/// <summary>Precision, recall, F-score and support of one class (or an average over classes).</summary>
public sealed record ClassScores(string Name, double Precision, double Recall, double F1, int Support);

/// <summary>
/// Per-class scores and their averages, like scikit-learn's <c>classification_report(output_dict=True)</c>.
/// </summary>
/// <param name="Classes">One row per label, in label order.</param>
/// <param name="Accuracy">Fraction of exact matches.</param>
/// <param name="Micro">Scores from the pooled TP/FP/FN counts (for single-label multiclass with every label listed
/// it equals accuracy).</param>
/// <param name="Macro">Unweighted means over the listed labels.</param>
/// <param name="Weighted">Means weighted by support.</param>
public sealed record ClassificationReport(IReadOnlyList<ClassScores> Classes, double Accuracy, ClassScores Micro, ClassScores Macro, ClassScores Weighted)
{
    public ClassScores this[string name] => Classes.FirstOrDefault(c => c.Name == name)
        ?? throw new KeyNotFoundException($"No class '{name}' in the report; classes are [{string.Join(", ", Classes.Select(c => c.Name))}].");

    /// <summary>A fixed-width table in the layout of scikit-learn's text report.</summary>
    public override string ToString() => ReportTable.Format(Classes, [("accuracy", null), ("", Micro), ("macro avg", Macro), ("weighted avg", Weighted)], Accuracy);
}

internal static class ReportTable
{
    public static string Format(IReadOnlyList<ClassScores> rows, IReadOnlyList<(string Label, ClassScores? Row)> averages, double? accuracy)
    {
        int width = Math.Max(12, rows.Select(r => r.Name.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.Append(' ', width).Append(string.Format(ci, " {0,9} {1,9} {2,9} {3,9}", "precision", "recall", "f1-score", "support")).Append('\n').Append('\n');
        foreach (var r in rows) sb.Append(Row(r.Name, r, width)).Append('\n');
        sb.Append('\n');
        int total = rows.Sum(r => r.Support);
        foreach (var (label, row) in averages)
        {
            if (row is null)
            {
                if (accuracy is { } a) sb.Append(label.PadLeft(width)).Append(string.Format(ci, " {0,9} {1,9} {2,9:F2} {3,9}", "", "", a, total)).Append('\n');
                continue;
            }
            if (label.Length == 0) continue;
            sb.Append(Row(label, row, width)).Append('\n');
        }
        return sb.ToString();
    }

    static string Row(string name, ClassScores r, int width) =>
        name.PadLeft(width) + string.Format(CultureInfo.InvariantCulture, " {0,9:F2} {1,9:F2} {2,9:F2} {3,9}", r.Precision, r.Recall, r.F1, r.Support);
}

/// <summary>Single-label classification metrics with scikit-learn semantics.</summary>
public static class ClassificationMetrics
{
    /// <summary>Fraction of positions where prediction equals truth (sklearn <c>accuracy_score</c>).</summary>
    public static double Accuracy(IReadOnlyList<int> yTrue, IReadOnlyList<int> yPred)
    {
        CheckLengths(yTrue, yPred);
        if (yTrue.Count == 0) throw new ArgumentException("Accuracy of zero examples is undefined.", nameof(yTrue));
        int correct = 0;
        for (int i = 0; i < yTrue.Count; i++) if (yTrue[i] == yPred[i]) correct++;
        return (double)correct / yTrue.Count;
    }

    /// <summary>
    /// Per-class precision, recall, F-beta and support, with micro, macro and weighted averages, as scikit-learn's
    /// <c>precision_recall_fscore_support</c> with <c>zero_division=0</c>.
    /// </summary>
    /// <param name="yTrue">True class ids.</param>
    /// <param name="yPred">Predicted class ids.</param>
    /// <param name="labels">Labels to report, in order; default: the sorted union of the ids in yTrue and yPred.</param>
    /// <param name="names">Display names per label id (e.g. a LabelSet's names); default: the id as text.</param>
    /// <param name="beta">β of F-beta (1 = F1).</param>
    /// <remarks>
    /// For class c: P = TP/(TP+FP), R = TP/(TP+FN), F = (1+β²)·TP / ((1+β²)·TP + β²·FN + FP); a 0/0 ratio is 0
    /// (zero_division=0). Macro = unweighted mean over the labels (labels with no support count, as in sklearn);
    /// weighted = Σ support_c·score_c / Σ support_c; micro = the formulas on TP, FP, FN summed over the labels.
    /// </remarks>
    public static ClassificationReport Report(IReadOnlyList<int> yTrue, IReadOnlyList<int> yPred, IReadOnlyList<int>? labels = null,
        IReadOnlyList<string>? names = null, double beta = 1.0)
    {
        CheckLengths(yTrue, yPred);
        if (yTrue.Count == 0) throw new ArgumentException("Cannot score zero examples.", nameof(yTrue));
        labels ??= yTrue.Concat(yPred).Distinct().Order().ToArray();
        var index = new Dictionary<int, int>();
        for (int i = 0; i < labels.Count; i++)
            if (!index.TryAdd(labels[i], i)) throw new ArgumentException($"Label {labels[i]} is listed twice.", nameof(labels));
        int k = labels.Count;
        var tp = new long[k];
        var predCount = new long[k];
        var trueCount = new long[k];
        for (int i = 0; i < yTrue.Count; i++)
        {
            bool t = index.TryGetValue(yTrue[i], out int ti), p = index.TryGetValue(yPred[i], out int pi);
            if (t) trueCount[ti]++;
            if (p) predCount[pi]++;
            if (t && p && ti == pi) tp[ti]++;
        }
        string Name(int label) => names is not null && label >= 0 && label < names.Count ? names[label] : label.ToString(CultureInfo.InvariantCulture);
        var rows = new ClassScores[k];
        for (int c = 0; c < k; c++) rows[c] = Score(Name(labels[c]), tp[c], predCount[c], trueCount[c], beta);
        var micro = Score("micro avg", tp.Sum(), predCount.Sum(), trueCount.Sum(), beta);
        int total = rows.Sum(r => r.Support);
        var macro = new ClassScores("macro avg", rows.Average(r => r.Precision), rows.Average(r => r.Recall), rows.Average(r => r.F1), total);
        var weighted = total == 0
            ? new ClassScores("weighted avg", 0, 0, 0, 0)
            : new ClassScores("weighted avg", rows.Sum(r => r.Precision * r.Support) / total, rows.Sum(r => r.Recall * r.Support) / total,
                rows.Sum(r => r.F1 * r.Support) / total, total);
        return new ClassificationReport(rows, Accuracy(yTrue, yPred), micro, macro, weighted);
    }

    /// <summary>Precision, recall and F-beta from counts; 0/0 → 0 (sklearn zero_division=0).</summary>
    public static ClassScores Score(string name, long truePositives, long predicted, long actual, double beta = 1.0)
    {
        double p = predicted == 0 ? 0 : (double)truePositives / predicted;
        double r = actual == 0 ? 0 : (double)truePositives / actual;
        double b2 = beta * beta;
        double denom = (1 + b2) * truePositives + b2 * (actual - truePositives) + (predicted - truePositives);
        double f = denom == 0 ? 0 : (1 + b2) * truePositives / denom;
        return new ClassScores(name, p, r, f, checked((int)actual));
    }

    internal static void CheckLengths<T>(IReadOnlyList<T> yTrue, IReadOnlyList<T> yPred)
    {
        if (yTrue.Count != yPred.Count)
            throw new ArgumentException($"yTrue has {yTrue.Count} items but yPred has {yPred.Count}; they must match.", nameof(yPred));
    }
}

/// <summary>Confusion matrix: <c>Counts[i, j]</c> = number of examples of true class i predicted as class j (sklearn layout).</summary>
public sealed class ConfusionMatrix
{
    ConfusionMatrix(long[,] counts, IReadOnlyList<string> names)
    {
        Counts = counts;
        Names = names;
    }

    public long[,] Counts { get; }
    public IReadOnlyList<string> Names { get; }
    public int ClassCount => Names.Count;
    public long this[int trueClass, int predictedClass] => Counts[trueClass, predictedClass];

    /// <summary>Counts pairs over class ids 0..numClasses−1; an id outside that range is an error.</summary>
    public static ConfusionMatrix Compute(IReadOnlyList<int> yTrue, IReadOnlyList<int> yPred, int numClasses, IReadOnlyList<string>? names = null)
    {
        ClassificationMetrics.CheckLengths(yTrue, yPred);
        if (numClasses <= 0) throw new ArgumentOutOfRangeException(nameof(numClasses), "Need at least one class.");
        if (names is not null && names.Count != numClasses)
            throw new ArgumentException($"{names.Count} names for {numClasses} classes.", nameof(names));
        var counts = new long[numClasses, numClasses];
        for (int i = 0; i < yTrue.Count; i++)
        {
            int t = yTrue[i], p = yPred[i];
            if ((uint)t >= (uint)numClasses || (uint)p >= (uint)numClasses)
                throw new ArgumentException($"Example {i}: class ids ({t}, {p}) outside 0..{numClasses - 1}.", nameof(yTrue));
            counts[t, p]++;
        }
        return new ConfusionMatrix(counts, names ?? Enumerable.Range(0, numClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
    }

    /// <summary>Row-normalised matrix (each true class sums to 1; an empty row stays 0), sklearn <c>normalize='true'</c>.</summary>
    public double[,] NormalizedByTrue()
    {
        int k = ClassCount;
        var r = new double[k, k];
        for (int i = 0; i < k; i++)
        {
            long sum = 0;
            for (int j = 0; j < k; j++) sum += Counts[i, j];
            if (sum == 0) continue;
            for (int j = 0; j < k; j++) r[i, j] = (double)Counts[i, j] / sum;
        }
        return r;
    }

    /// <summary>A table with true classes as rows and predictions as columns.</summary>
    public override string ToString()
    {
        int k = ClassCount;
        int cell = Math.Max(Names.Max(n => n.Length), Enumerable.Range(0, k).SelectMany(i => Enumerable.Range(0, k).Select(j => Counts[i, j].ToString(CultureInfo.InvariantCulture).Length)).Max()) + 1;
        int first = Math.Max("true\\pred".Length, Names.Max(n => n.Length)) + 1;
        var sb = new StringBuilder();
        sb.Append("true\\pred".PadRight(first));
        foreach (var n in Names) sb.Append(n.PadLeft(cell));
        sb.Append('\n');
        for (int i = 0; i < k; i++)
        {
            sb.Append(Names[i].PadRight(first));
            for (int j = 0; j < k; j++) sb.Append(Counts[i, j].ToString(CultureInfo.InvariantCulture).PadLeft(cell));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
