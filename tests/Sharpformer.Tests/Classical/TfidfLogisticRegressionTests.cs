using Sharpformer.Classical;
using Sharpformer.Data;

namespace Sharpformer.Tests.Classical;

// Expected values: scikit-learn 1.2.1 on the emotion files (CountVectorizer() / TfidfVectorizer() defaults,
// LogisticRegression(C, max_iter=1000)).
public class TfidfLogisticRegressionTests
{
    static (string[] Texts, int[] Labels) Read(string file)
    {
        var data = Emotion.Read(SharedData.DataFile("emotion", file));
        return (data.Select(e => e.Text).ToArray(), data.Select(e => e.Label).ToArray());
    }

    [Fact]
    public void CountVectorizerDefaultsMatchScikitLearn()
    {
        var (texts, _) = Read("train.txt");
        var v = new CountVectorizer();
        var x = v.FitTransform(texts);
        Assert.Equal(15186, v.Vocabulary.Count);
        Assert.Equal(249634, x.NonZeros);
        Assert.Equal(["aa", "aaaaaaand", "aaaaand"], v.Vocabulary.Take(3));
        Assert.Equal(["zumba", "zz"], v.Vocabulary.TakeLast(2));
        var minDf = new CountVectorizer(new CountVectorizerOptions(MinDf: 3));
        Assert.Equal(237515, minDf.FitTransform(texts).NonZeros);
        Assert.Equal(5163, minDf.Vocabulary.Count);
        // 979: the 979th and 980th most frequent terms differ in count, so no tie decides the cut (sklearn's
        // argsort breaks ties in no documented order).
        var limited = new CountVectorizer(new CountVectorizerOptions(MinDf: 3, MaxFeatures: 979));
        Assert.Equal(204617, limited.FitTransform(texts).NonZeros);
        Assert.Equal(["feel", "ok"], new CountVectorizer().Tokenize("I feel a OK")); // one-letter words are not tokens
    }

    [Theory]
    [InlineData(1.0, 0.6165)]
    [InlineData(10.0, 0.7485)]
    public void EmotionBaselineMatchesScikitLearnAccuracy(double c, double sklearnAccuracy)
    {
        // Trained on the 2,000-row validation split to keep the test fast; evaluated on the test split.
        var (train, yTrain) = Read("val.txt");
        var (test, yTest) = Read("test.txt");
        var model = new TfidfLogisticRegression(new TfidfLogisticRegressionOptions(Classifier: new LogisticRegressionOptions(C: c, MaxIterations: 1000))).Fit(train, yTrain);
        Assert.True(model.Classifier.Optimization!.Converged);
        Assert.Equal(4780, model.Vectorizer.Vocabulary.Count);
        double accuracy = Sharpformer.Metrics.ClassificationMetrics.Accuracy(yTest, model.Predict(test));
        Assert.InRange(accuracy, sklearnAccuracy - 0.002, sklearnAccuracy + 0.002); // same optimum, different stopping point
    }
}
