using Sharpformer.Pipelines;

namespace Sharpformer.Tests.Pipelines;

public class PostprocessingTests
{
    [Fact]
    public void Softmax_MatchesDoubleReference_AndIsStableForLargeLogits()
    {
        var rng = new Random(1);
        for (int n = 1; n < 70; n += 7)
        {
            var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 40 - 20)).ToArray();
            var p = Scores.Softmax(x);
            double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
            for (int i = 0; i < n; i++) Assert.Equal(Math.Exp(x[i] - max) / sum, p[i], 1e-6);
        }
        var big = Scores.Softmax([1000f, 1000f, -1000f]);
        Assert.Equal([0.5f, 0.5f, 0f], big);
    }

    [Fact]
    public void Sigmoid_IsLogistic()
    {
        var p = Scores.Sigmoid([0f, 2f, -3f, 50f, -50f]);
        double[] expected = [0.5, 1 / (1 + Math.Exp(-2)), 1 / (1 + Math.Exp(3)), 1, 0];
        for (int i = 0; i < p.Length; i++) Assert.Equal(expected[i], p[i], 1e-7);
    }

    [Fact]
    public void TopK_EqualsStableSortPrefix_IncludingTies()
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = rng.Next(1, 60), k = rng.Next(0, n + 3);
            var x = Enumerable.Range(0, n).Select(_ => (float)rng.Next(0, 12)).ToArray();   // many ties
            var expected = Enumerable.Range(0, n).OrderByDescending(i => x[i]).ThenBy(i => i).Take(k).ToArray();
            Assert.Equal(expected, Scores.TopK(x, k));
        }
    }

    [Fact]
    public void ConvertTokensToString_And_Decode_FollowHfSlowTokenizer()
    {
        Assert.Equal("hugging face", TokenAggregation.ConvertTokensToString(["hu", "##gging", "face"]));
        Assert.Equal("' s staff", TokenAggregation.ConvertTokensToString(["'", "s", "staff"]));
        Assert.Equal("##die", TokenAggregation.ConvertTokensToString(["##die"]));
        Assert.Equal("the capital of france is morocco.", Sharpformer.Tokenization.BertTokenizer.CleanUp("the capital of france is morocco .", rust: false));
        Assert.Equal("isn't it, i'm sure they're here? yes!", Sharpformer.Tokenization.BertTokenizer.CleanUp("isn ' t it , i 'm sure they 're here ? yes !", rust: false));
    }

    [Fact]
    public void CodePointLength_CountsSurrogatePairsOnce()
    {
        Assert.Equal(3, TokenAggregation.CodePointLength("a😀b"));
        Assert.Equal(4, TokenAggregation.CodePointLength("café"));
    }
}
