using Sharpformer.Classical;
using Sharpformer.Data;
using Sharpformer.Metrics;

namespace Sharpformer.Tests.Classical;

public class LexicalTokenClassifierTests
{
    [Theory]
    [InlineData("Washington", "Xx")]
    [InlineData("U.S.", "X.X.")]
    [InlineData("1996", "d")]
    [InlineData("3-1", "d-d")]
    [InlineData("McDonald's", "XxXx'x")]
    [InlineData("", "")]
    public void Shape_CollapsesRunsOfUpperLowerAndDigits(string word, string shape) => Assert.Equal(shape, LexicalTokenClassifier.Shape(word));

    [Fact]
    public void FeaturesOfAWord_AreItsFormShapeAffixesFlagsAndItsNeighbours()
    {
        var c = new LexicalTokenClassifier();
        Assert.Equal(
            ["w=eu", "shape=X", "p1=e", "s1=u", "p2=eu", "s2=eu", "title@start", "upper", "w-1=<s>", "w+1=rejects", "shape+1=x"],
            c.FeaturesOf(["EU", "rejects"], 0));
        Assert.Equal(
            ["w=1996", "shape=d", "p1=1", "s1=6", "p2=19", "s2=96", "p3=199", "s3=996", "digit", "w-1=in", "shape-1=x", "w+1=</s>"],
            c.FeaturesOf(["in", "1996"], 1));
        Assert.Equal(["w=a", "shape=x", "p1=a", "s1=a"], new LexicalTokenClassifier(new(Window: 0)).FeaturesOf(["x", "a"], 1));
    }

    /// <summary>
    /// The classifier is exactly "indicator vectors → LogisticRegression": fitting the same regression on a matrix built
    /// here from <see cref="LexicalTokenClassifier.FeaturesOf"/> (the slow twin: dense, column per feature in ordinal
    /// order, min-count applied by hand) gives the same predictions on held-out CoNLL sentences.
    /// </summary>
    [Fact]
    public void Fit_EqualsLogisticRegressionOnTheIndicatorMatrix_AndScoresLikeSeqeval()
    {
        var train = Conll.Read(SharedData.DataFile("conll2003", "hf_iob2/train.txt")).Examples.Take(150).ToArray();
        var test = Conll.Read(SharedData.DataFile("conll2003", "hf_iob2/valid.txt")).Examples.Take(50).ToArray();
        var options = new LexicalTokenClassifierOptions(MinCount: 2, Classifier: new LogisticRegressionOptions(C: 1, MaxIterations: 200));
        var model = new LexicalTokenClassifier(options).Fit(train.Select(e => e.Words).ToArray(), train.Select(e => e.Tags).ToArray());
        var predicted = model.Predict(test.Select(e => e.Words).ToArray());

        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var e in train)
            for (int i = 0; i < e.Words.Count; i++)
                foreach (var f in model.FeaturesOf(e.Words, i)) counts[f] = counts.GetValueOrDefault(f) + 1;
        var columns = counts.Where(kv => kv.Value >= 2).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(columns.Count, model.FeatureCount);
        var tags = train.SelectMany(e => e.Tags).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(tags, model.Tags);
        double[,] Dense(IEnumerable<TokenExample> sentences)
        {
            var rows = sentences.SelectMany(e => Enumerable.Range(0, e.Words.Count).Select(i => model.FeaturesOf(e.Words, i).ToHashSet())).ToList();
            var x = new double[rows.Count, columns.Count];
            for (int r = 0; r < rows.Count; r++)
                for (int j = 0; j < columns.Count; j++) x[r, j] = rows[r].Contains(columns[j]) ? 1 : 0;
            return x;
        }
        var reference = new LogisticRegression(options.Classifier).Fit(Dense(train), train.SelectMany(e => e.Tags).Select(t => tags.IndexOf(t)).ToArray());
        var referenceTags = reference.Predict(Dense(test)).Select(k => tags[k]).ToArray();
        Assert.Equal(referenceTags, predicted.SelectMany(t => t));

        // Trained on 150 sentences only, yet better than tagging everything O, and some entities found exactly.
        var gold = test.Select(e => e.Tags).ToArray();
        double allO = (double)gold.SelectMany(t => t).Count(t => t == "O") / gold.Sum(t => t.Count);
        Assert.True(Seqeval.TokenAccuracy(gold, predicted) > allO + 0.02, $"token accuracy {Seqeval.TokenAccuracy(gold, predicted)} vs all-O {allO}");
        Assert.True(Seqeval.Evaluate(gold, predicted).Micro.Support > 0 && Seqeval.Evaluate(gold, predicted).F1 > 0.2);
    }

    [Fact]
    public void BadInput_IsRejectedWithClearErrors()
    {
        var c = new LexicalTokenClassifier();
        Assert.Contains("Fit the classifier", Assert.Throws<InvalidOperationException>(() => c.Predict([["a"]])).Message);
        Assert.Contains("Sentence 0: 2 words but 1 tags", Assert.Throws<ArgumentException>(() => c.Fit([["a", "b"]], [["O"]])).Message);
        Assert.Contains("No feature", Assert.Throws<ArgumentException>(() => new LexicalTokenClassifier(new(MinCount: 5)).Fit([["a"]], [["O"]])).Message);
    }
}
