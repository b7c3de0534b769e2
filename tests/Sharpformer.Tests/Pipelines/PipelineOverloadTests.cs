using Sharpformer.Pipelines;

namespace Sharpformer.Tests.Pipelines;

/// <summary>
/// Every pipeline takes the same input shapes: <c>Run(string)</c> and <c>Run(IReadOnlyList&lt;string&gt;)</c> (string[], List),
/// and element i of the list result equals <c>Run(texts[i])</c>; per-call choices go in an options record.
/// </summary>
public class PipelineOverloadTests
{
    static readonly string[] Texts = ["Angela Merkel met Emmanuel Macron in Paris.", "The cat sat on the mat.", "Stocks fell sharply on Tuesday."];

    [Fact]
    public void TextClassification_AcceptsAStringArray_AndEachElementEqualsTheSingleTextResult()
    {
        var p = TextClassificationPipeline.FromPretrained(SharedData.Fixture("bert-tiny-uncased-seqcls"));
        var options = new TextClassificationOptions { TopK = 2 };
        IReadOnlyList<IReadOnlyList<LabelScore>> fromArray = p.Run(Texts, options);
        var fromList = p.Run(new List<string>(Texts), options);
        var fromInputs = p.Run(Texts.Select(t => new TextInput(t)).ToList(), topK: 2);
        for (int i = 0; i < Texts.Length; i++)
        {
            IReadOnlyList<LabelScore> one = p.Run(Texts[i], options);
            Assert.Equal(2, one.Count);
            Assert.Equal(one, fromArray[i], (a, b) => a.Label == b.Label && Math.Abs(a.Score - b.Score) <= 1e-6);
            Assert.Equal(one, fromList[i], (a, b) => a.Label == b.Label && Math.Abs(a.Score - b.Score) <= 1e-6);
            Assert.Equal(one, fromInputs[i], (a, b) => a.Label == b.Label && Math.Abs(a.Score - b.Score) <= 1e-6);
        }
        Assert.Single(p.Run(Texts[0]));   // default TopK = 1
        Assert.Equal(4, p.Run(Texts[0], new TextClassificationOptions { TopK = null }).Count);
    }

    [Fact]
    public void TokenClassification_AcceptsAStringArray_AndEachElementEqualsTheSingleTextResult()
    {
        var p = TokenClassificationPipeline.FromPretrained(SharedData.Fixture("bert-tiny-cased-tokcls"));
        var options = new TokenClassificationOptions { Aggregation = AggregationStrategy.Average };
        IReadOnlyList<IReadOnlyList<TokenEntity>> fromArray = p.Run(Texts, options);
        var tokens = p.RunTokens(Texts);
        for (int i = 0; i < Texts.Length; i++)
        {
            IReadOnlyList<TokenEntity> one = p.Run(Texts[i], options);
            Assert.Equal(one.Select(e => (e.EntityGroup, e.Word, e.Start, e.End)), fromArray[i].Select(e => (e.EntityGroup, e.Word, e.Start, e.End)));
            Assert.Equal(one.Select(e => e.Score), fromArray[i].Select(e => e.Score), (a, b) => Math.Abs(a - b) <= 1e-6);
            Assert.Equal(p.RunTokens(Texts[i]).Select(t => (t.Entity, t.Index)), tokens[i].Select(t => (t.Entity, t.Index)));
        }
        Assert.Equal(p.Run(Texts[0], AggregationStrategy.Simple).Select(e => e.Word), p.Run(Texts[0]).Select(e => e.Word));   // default Simple
        Assert.Throws<ArgumentException>(() => p.Run(Texts, new TokenClassificationOptions { Aggregation = AggregationStrategy.None }));
    }

    [Fact]
    public void FeatureExtraction_AcceptsAStringArray_AndEachElementEqualsTheSingleTextResult()
    {
        var p = FeatureExtractionPipeline.FromPretrained(SharedData.Fixture("bert-tiny-uncased-seqcls"));
        IReadOnlyList<float[]> fromArray = p.Run(Texts);
        for (int i = 0; i < Texts.Length; i++)
        {
            float[] one = p.Run(Texts[i]);
            Assert.Equal(64, one.Length);
            Assert.Equal(one, fromArray[i], (a, b) => Math.Abs(a - b) <= 1e-5f);
        }
    }

    [Fact]
    public void FillMask_AcceptsAStringArray_AndEachElementEqualsTheSingleTextResult()
    {
        var p = FillMaskPipeline.FromPretrained(SharedData.Fixture("bert-tiny-uncased-mlm"));
        string[] texts = ["The capital of France is [MASK].", "Paris is the [MASK] of [MASK]."];
        var options = new FillMaskOptions { TopK = 3 };
        IReadOnlyList<IReadOnlyList<IReadOnlyList<FillMaskCandidate>>> fromArray = p.Run(texts, options);
        for (int i = 0; i < texts.Length; i++)
        {
            IReadOnlyList<IReadOnlyList<FillMaskCandidate>> one = p.Run(texts[i], options);
            Assert.Equal(i + 1, one.Count);   // one list of candidates per [MASK]
            for (int m = 0; m < one.Count; m++)
            {
                Assert.Equal(3, one[m].Count);
                Assert.Equal(one[m].Select(c => (c.Token, c.Sequence)), fromArray[i][m].Select(c => (c.Token, c.Sequence)));
            }
        }
        Assert.Equal(5, p.Run(texts[0])[0].Count);   // default TopK = 5
        Assert.Equal(["mp"], p.Run(texts[0], new FillMaskOptions { Targets = ["mp"] })[0].Select(c => c.TokenStr));
    }
}
