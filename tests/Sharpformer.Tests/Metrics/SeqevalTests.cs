using Sharpformer.Metrics;

namespace Sharpformer.Tests.Metrics;

// Expected values are the outputs documented in seqeval's README and docstrings (github.com/chakki-works/seqeval),
// plus cases derived by hand from its get_entities rules.
public class SeqevalTests
{
    static IReadOnlyList<IReadOnlyList<string>> S(params string[][] sentences) => sentences;

    [Fact]
    public void ReadmeExample()
    {
        var yTrue = S(["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]);
        var yPred = S(["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]);
        var r = Seqeval.Evaluate(yTrue, yPred);
        Assert.Equal(0.5, r.F1, 1e-15);
        Assert.Equal(0.5, r.Precision, 1e-15);
        Assert.Equal(0.5, r.Recall, 1e-15);
        Assert.Equal(0.8, Seqeval.TokenAccuracy(yTrue, yPred), 1e-15);
        Assert.Equal(["MISC", "PER"], r.Types.Select(t => t.Name).ToArray());
        Assert.Equal(new ClassScores("MISC", 0, 0, 0, 1), r["MISC"]);
        Assert.Equal(new ClassScores("PER", 1, 1, 1, 1), r["PER"]);
        Assert.Equal(0.5, r.Macro.F1, 1e-15);
        Assert.Equal(0.5, r.Weighted.F1, 1e-15);
        var table = r.ToString();
        Assert.Contains("        MISC      0.00      0.00      0.00         1", table);
        Assert.Contains("         PER      1.00      1.00      1.00         1", table);
        Assert.Contains("   micro avg      0.50      0.50      0.50         2", table);
        Assert.Contains("weighted avg      0.50      0.50      0.50         2", table);
    }

    [Fact]
    public void StrictModeReadmeExample()
    {
        var yTrue = S(["B-NP", "I-NP", "O"]);
        var yPred = S(["I-NP", "I-NP", "O"]);
        Assert.Equal(new ClassScores("NP", 1, 1, 1, 1), Seqeval.Evaluate(yTrue, yPred)["NP"]);
        var strict = Seqeval.Evaluate(yTrue, yPred, EntityMode.StrictIob2);
        Assert.Equal(new ClassScores("NP", 0, 0, 0, 1), strict["NP"]);
    }

    [Fact]
    public void GetEntitiesDocstringExample()
    {
        Assert.Equal([new EntitySpan("PER", 0, 1), new EntitySpan("LOC", 3, 3)], Seqeval.GetEntities(["B-PER", "I-PER", "O", "B-LOC"]));
    }

    [Theory]
    [InlineData("I-PER I-PER O", "PER:0-1")]                 // IOB1: I after O starts a chunk
    [InlineData("I-PER B-PER", "PER:0-0 PER:1-1")]          // IOB1: B separates adjacent same-type chunks
    [InlineData("B-PER I-LOC I-LOC", "PER:0-0 LOC:1-2")]     // type change ends and starts
    [InlineData("B-PER I-PER B-PER I-PER", "PER:0-1 PER:2-3")]
    [InlineData("O I-MISC B-MISC O B-ORG", "MISC:1-1 MISC:2-2 ORG:4-4")]
    [InlineData("S-PER B-LOC I-LOC E-LOC O", "PER:0-0 LOC:1-3")] // IOBES
    [InlineData("O O", "")]
    public void LenientChunking(string tags, string expected)
    {
        var spans = Seqeval.GetEntities(tags.Split(' '));
        Assert.Equal(expected, string.Join(" ", spans.Select(s => $"{s.Type}:{s.Start}-{s.End}")));
    }

    [Theory]
    [InlineData("I-PER I-PER O", "")]
    [InlineData("B-PER I-PER I-LOC B-LOC", "PER:0-1 LOC:3-3")]
    [InlineData("B-PER B-PER I-PER", "PER:0-0 PER:1-2")]
    [InlineData("O B-ORG I-ORG", "ORG:1-2")]
    public void StrictIob2Chunking(string tags, string expected)
    {
        var spans = Seqeval.GetEntitiesStrictIob2(tags.Split(' '));
        Assert.Equal(expected, string.Join(" ", spans.Select(s => $"{s.Type}:{s.Start}-{s.End}")));
    }

    [Fact]
    public void StrictModeRejectsNonIob2Prefixes() =>
        Assert.Throws<FormatException>(() => Seqeval.Evaluate(S(["S-PER"]), S(["O"]), EntityMode.StrictIob2));

    [Fact]
    public void HandComputedMultiTypeCase()
    {
        // true: PER(0-1) LOC(3) | ORG(0-2) LOC(4);  pred: PER(0-1) LOC(3-4) | ORG(0-2) MISC(4)
        var yTrue = S(["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O", "B-LOC"]);
        var yPred = S(["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"]);
        var r = Seqeval.Evaluate(yTrue, yPred);
        Assert.Equal(["LOC", "MISC", "ORG", "PER"], r.Types.Select(t => t.Name).ToArray());
        Assert.Equal(new ClassScores("LOC", 0, 0, 0, 2), r["LOC"]);
        Assert.Equal(new ClassScores("MISC", 0, 0, 0, 0), r["MISC"]);
        Assert.Equal(0.5, r.Precision, 1e-15);   // 2 of 4 predicted
        Assert.Equal(0.5, r.Recall, 1e-15);      // 2 of 4 true
        Assert.Equal(0.5, r.Macro.Precision, 1e-15); // (0 + 0 + 1 + 1) / 4
        Assert.Equal(0.5, r.Weighted.F1, 1e-15);     // (2·0 + 0·0 + 1·1 + 1·1) / 4
    }

    [Fact]
    public void EntitiesDoNotCrossSentences()
    {
        // One I-PER at the end of a sentence and one at the start of the next are two entities, as in seqeval
        // (which joins sentences with an O between them).
        var r = Seqeval.Evaluate(S(["O", "I-PER"], ["I-PER", "O"]), S(["O", "I-PER"], ["I-PER", "O"]));
        Assert.Equal(2, r["PER"].Support);
    }

    [Fact]
    public void TokenIdsWithIgnoredPositionsBecomeTagSequences()
    {
        string[] names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"];
        int[] labels = [-100, 1, 2, -100, 0, -100, /* row 2 */ -100, 3, -100, -100, -100, -100];
        int[] preds = [0, 1, 2, 2, 5, 0, /* row 2 */ 0, 3, 4, 0, 0, 0];
        var (t, p) = Seqeval.FromTokenIds(preds, labels, 6, names);
        Assert.Equal([["B-PER", "I-PER", "O"], ["B-ORG"]], t.Select(s => s.ToArray()).ToArray());
        Assert.Equal([["B-PER", "I-PER", "B-LOC"], ["B-ORG"]], p.Select(s => s.ToArray()).ToArray());
        var r = Seqeval.Evaluate(t, p);
        Assert.Equal(2.0 / 3, r.Precision, 1e-15);
        Assert.Equal(1.0, r.Recall);
    }
}
