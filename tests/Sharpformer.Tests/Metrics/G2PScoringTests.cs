using Sharpformer.Metrics;

namespace Sharpformer.Tests.Metrics;

/// <summary>The CMUdict G2P scoring rules (SOURCE.md) against hand-computed values.</summary>
public class G2PScoringTests
{
    static string[] P(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void WerCountsWordsMatchingNoReferenceAndPerSumsEditsToTheClosestReference()
    {
        string[][] predicted = [P("K AE T"), P("T AH M AA T OW"), P("K AE T S"), P(""), P("B AO L")];
        IReadOnlyList<string[]>[] references =
        [
            [P("K AE1 T")],                                   // correct after stripping stress: 0 edits, length 3
            [P("T AH0 M EY1 T OW2"), P("T AH0 M AA1 T OW2")], // equals the second reference: 0 edits, length 6
            [P("K AE1 T")],                                   // one insertion: 1 edit, length 3
            [P("AH0"), P("EY1 B")],                           // empty prediction: 1 edit to AH (length 1) beats 2 to EY B
            [P("B AA1 L"), P("B AO1 L Z")],                   // 1 edit to either: the first closest counts, length 3
        ];
        var s = G2PScoring.Score(predicted, references);
        Assert.Equal(5, s.Words);
        Assert.Equal(3, s.WordErrors);
        Assert.Equal(3, s.PhonemeEdits);
        Assert.Equal(16, s.ReferencePhonemes);
        Assert.Equal(0.6, s.Wer, 12);
        Assert.Equal(3.0 / 16, s.Per, 12);
    }

    [Fact]
    public void PredictedStressDigitsAreIgnoredToo()
    {
        var s = G2PScoring.Score([P("HH AH0 L OW1")], [[P("HH AH L OW")]]);
        Assert.Equal(0, s.WordErrors);
        Assert.Equal(0, s.PhonemeEdits);
    }

    [Theory]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("", "abc", 3)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("same", "same", 0)]
    public void EditDistanceIsLevenshtein(string a, string b, int expected) =>
        Assert.Equal(expected, G2PScoring.EditDistance(a.ToCharArray(), b.ToCharArray()));

    [Fact]
    public void MismatchedCountsAreRejected() =>
        Assert.Throws<ArgumentException>(() => G2PScoring.Score([P("A")], []));
}
