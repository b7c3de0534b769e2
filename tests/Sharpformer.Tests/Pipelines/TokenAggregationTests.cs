using Sharpformer.Pipelines;

namespace Sharpformer.Tests.Pipelines;

/// <summary>transformers 4.30 token-classification rules on small hand-made cases whose answers follow from the rules.</summary>
public class TokenAggregationTests
{
    static readonly string[] Labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"];

    // One-hot-ish probability vector peaking at label k with probability p (the rest shared).
    static float[] P(int k, float p)
    {
        var v = Enumerable.Repeat((1 - p) / 4, 5).ToArray();
        v[k] = p;
        return v;
    }

    static List<PreEntity> Gather(string text, (int Id, string Token, int Start, int End, float[] Scores)[] toks, int unk = 100)
    {
        var ids = new List<int> { 101 }; var tokens = new List<string> { "[CLS]" }; var sc = new List<float[]> { P(0, 1) };
        var st = new List<int> { 0 }; var en = new List<int> { 0 }; var special = new List<bool> { true };
        foreach (var t in toks) { ids.Add(t.Id); tokens.Add(t.Token); sc.Add(t.Scores); st.Add(t.Start); en.Add(t.End); special.Add(false); }
        ids.Add(102); tokens.Add("[SEP]"); sc.Add(P(0, 1)); st.Add(0); en.Add(0); special.Add(true);
        return TokenAggregation.GatherPreEntities(text, ids, tokens, sc, st, en, special, unk);
    }

    // "Angela Merkel met" → angela | me ##rk ##el | met
    static List<PreEntity> Merkel(float[] me, float[] rk, float[] el) => Gather("Angela Merkel met",
    [
        (1, "angela", 0, 6, P(1, 0.6f)), (2, "me", 7, 9, me), (3, "##rk", 9, 11, rk), (4, "##el", 11, 13, el), (5, "met", 14, 17, P(0, 0.9f)),
    ]);

    [Fact]
    public void Gather_MarksSubwordsByLength_AndSkipsSpecials_AndTakesUnkWordsFromText()
    {
        var pre = Gather("Zürich ☃ x", [(1, "zu", 0, 2, P(0, .9f)), (2, "##rich", 2, 6, P(0, .9f)), (100, "[UNK]", 7, 8, P(0, .9f)), (3, "x", 9, 10, P(0, .9f))]);
        Assert.Equal([1, 2, 3, 4], pre.Select(p => p.Index));
        Assert.Equal([false, true, false, false], pre.Select(p => p.IsSubword));
        Assert.Equal("☃", pre[2].Word);   // [UNK] → the original text
        // "zu" covers "Zü": same length (2) → a word start, although accents differ.
        Assert.False(pre[0].IsSubword);
    }

    [Fact]
    public void Gather_FallbackHeuristic_ForTokenizersWithoutWordKnowledge()
    {
        var pre = TokenAggregation.GatherPreEntities("ab cd", [101, 1, 2, 3, 102], ["[CLS]", "a", "##b", "cd", "[SEP]"],
            [P(0, 1), P(0, 1), P(0, 1), P(0, 1), P(0, 1)], [0, 0, 1, 3, 0], [0, 1, 2, 5, 0], [true, false, false, false, true], 100,
            wordAwareTokenizer: false);
        Assert.Equal([false, true, false], pre.Select(p => p.IsSubword));
    }

    [Fact]
    public void None_ListsEveryNonOToken_WithIndexAndOffsets()
    {
        var pre = Merkel(P(1, .5f), P(2, .4f), P(0, .7f));
        var r = TokenAggregation.Predictions(pre, Labels);
        Assert.Equal(
        [
            new TokenPrediction("B-PER", .6f, 1, "angela", 0, 6), new TokenPrediction("B-PER", .5f, 2, "me", 7, 9),
            new TokenPrediction("I-PER", .4f, 3, "##rk", 9, 11),
        ], r);
    }

    [Fact]
    public void Simple_GroupsBThenI_SplitsOnNewB_AndAveragesScores()
    {
        var pre = Merkel(P(1, .5f), P(2, .4f), P(2, .3f));
        var r = TokenAggregation.Entities(pre, AggregationStrategy.Simple, Labels);
        // angela (B-PER) | me (B-PER) ##rk ##el (I-PER) → two PER groups; the second's word is rebuilt from pieces.
        Assert.Equal(2, r.Count);
        Assert.Equal(new TokenEntity("PER", .6f, "angela", 0, 6), r[0]);
        Assert.Equal("PER", r[1].EntityGroup);
        Assert.Equal("merkel", r[1].Word);
        Assert.Equal((7, 13), (r[1].Start, r[1].End));
        Assert.Equal((.5 + .4 + .3) / 3, r[1].Score, 1e-6);
    }

    [Fact]
    public void Simple_ITagOfAnotherTypeStartsANewGroup_AndBareLabelsCountAsI()
    {
        string[] labels = ["O", "B-PER", "I-ORG", "DATE"];
        float[] V(int k) { var v = new float[4]; v[k] = 1; return v; }
        var pre = TokenAggregation.GatherPreEntities("a b c d e", [101, 1, 2, 3, 4, 5, 102], ["[CLS]", "a", "b", "c", "d", "e", "[SEP]"],
            [V(0), V(1), V(2), V(3), V(3), V(0), V(0)], [0, 0, 2, 4, 6, 8, 0], [0, 1, 3, 5, 7, 9, 0],
            [true, false, false, false, false, false, true], 100);
        var r = TokenAggregation.Entities(pre, AggregationStrategy.Simple, labels);
        Assert.Equal(
        [
            new TokenEntity("PER", 1, "a", 0, 1), new TokenEntity("ORG", 1, "b", 2, 3), new TokenEntity("DATE", 1, "c d", 4, 7),
        ], r);
    }

    [Fact]
    public void First_UsesTheFirstPiece()
    {
        var pre = Merkel(P(3, .5f), P(1, .9f), P(1, .9f));
        var r = TokenAggregation.Entities(pre, AggregationStrategy.First, Labels);
        Assert.Equal([new TokenEntity("PER", .6f, "angela", 0, 6), new TokenEntity("ORG", .5f, "merkel", 7, 13)], r);
    }

    [Fact]
    public void Max_UsesThePieceWithTheHighestScore()
    {
        var pre = Merkel(P(3, .5f), P(1, .9f), P(4, .7f));
        var r = TokenAggregation.Entities(pre, AggregationStrategy.Max, Labels);
        // angela B-PER, merkel B-PER (from ##rk) → separate groups because the second is a B.
        Assert.Equal([new TokenEntity("PER", .6f, "angela", 0, 6), new TokenEntity("PER", .9f, "merkel", 7, 13)], r);
    }

    [Fact]
    public void Average_TakesArgmaxOfMeanVector_AndScoreIsThatMean()
    {
        var me = new float[] { .1f, .1f, .5f, .2f, .1f };
        var rk = new float[] { .1f, .1f, .1f, .6f, .1f };
        var el = new float[] { .1f, .1f, .4f, .3f, .1f };
        var pre = Merkel(me, rk, el);
        var r = TokenAggregation.Entities(pre, AggregationStrategy.Average, Labels);
        // mean = [.1, .1, .333, .367, .1] → B-ORG with .3667; "angela" (B-PER) stays its own group.
        Assert.Equal(2, r.Count);
        Assert.Equal(("ORG", "merkel", 7, 13), (r[1].EntityGroup, r[1].Word, r[1].Start, r[1].End));
        Assert.Equal((.2 + .6 + .3) / 3, r[1].Score, 1e-6);
    }

    [Fact]
    public void IgnoreLabels_CanBeChanged()
    {
        var pre = Merkel(P(1, .5f), P(2, .4f), P(2, .3f));
        var r = TokenAggregation.Entities(pre, AggregationStrategy.Simple, Labels, ignoreLabels: ["PER"]);
        Assert.Equal([new TokenEntity("O", .9f, "met", 14, 17)], r);
        Assert.Throws<ArgumentException>(() => TokenAggregation.Entities(pre, AggregationStrategy.None, Labels));
    }
}
