using Sharpformer.Data;
using Sharpformer.Metrics;

namespace Sharpformer.Tests.Data;

// Counts are the verified figures in shared/data/*/SOURCE.md (and the well-known CoNLL-2003 statistics).
public class AgNewsTests
{
    [Fact]
    public void TestSplitHas7600RowsWith1900PerClass()
    {
        var test = AgNews.ReadTest(SharedData.DataFile("ag_news", "test.csv"));
        Assert.Equal(7600, test.Count);
        Assert.Equal(0, test.SkippedCount);
        Assert.Equal([1900, 1900, 1900, 1900], Enumerable.Range(0, 4).Select(c => test.Count(e => e.Label == c)).ToArray());
        Assert.Equal(["World", "Sports", "Business", "Sci/Tech"], test.Labels!.Names);
        // Row 1: class 3 → Business (2); title + " " + description, spaces kept as in the file.
        Assert.Equal(new TextExample("Fears for T N pension after talks Unions representing workers at Turner   Newall say they are 'disappointed' after talks with stricken parent firm Federal Mogul.", 2), test[0]);
        // Backslash sequences stay literal, as in Hugging Face's ag_news.
        Assert.StartsWith("The Race is On: Second Private Team Sets Launch Date for Human Spaceflight (SPACE.com) SPACE.com - TORONTO, Canada -- A second\\team", test[1].Text);
        Assert.Equal(808, test.Count(e => e.Text.Contains('\\')));
        Assert.Equal(281, test.Count(e => e.Text.Contains('"'))); // doubled quotes decoded
        Assert.Equal(new TextExample("EBay gets into rentals EBay plans to buy the apartment and home rental service Rent.com for \\$415 million, adding to its already exhaustive breadth of offerings.", 2), test[^1]);
    }

    [Fact]
    public void TrainSubsetHas14551RowsWithTheDocumentedLabelCounts()
    {
        var train = AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv"));
        Assert.Equal(14551, train.Count);
        Assert.Equal([3665, 3647, 3678, 3561], Enumerable.Range(0, 4).Select(c => train.Count(e => e.Label == c)).ToArray());
        Assert.StartsWith("Update 1: Vivendi, Messier Are Fined \\$1.35 Million Vivendi Universal", train[0].Text);
        Assert.Equal(new TextExample("Kreme-Filled Earnings Krispy Kreme shareholders hope for a break from the badness in this week's earnings report.", 2), train[^1]);
    }

    [Fact]
    public void MalformedRowsNameFileAndLine()
    {
        using var dir = new TempDir();
        var path = dir.Write("bad_test.csv", "\"1\",\"ok\",\"fine\"\n\"5\",\"bad class\",\"x\"\n\"2\",\"two fields\"\n\"3\",\"multi\nline\",\"y\"\n\"4\",\"broken \"quote\",\"z\"\n");
        var e = Assert.Throws<DataFormatException>(() => AgNews.ReadTest(path));
        Assert.Equal(2, e.Line);
        Assert.Contains("bad_test.csv:2:", e.Message);
        Assert.Contains("'5'", e.Message);

        var skipped = AgNews.ReadTest(path, new ReadOptions(SkipMalformed: true));
        Assert.Equal(2, skipped.Count);
        Assert.Equal("multi\nline y", skipped[1].Text);
        Assert.Equal(3, skipped.SkippedCount);
        Assert.Equal([2, 3, 6], skipped.Skipped.Select(s => s.Line).ToArray());
        Assert.Contains("after the closing quote", skipped.Skipped[2].Reason);
    }

    [Fact]
    public void TrainSubsetNeedsItsHeader()
    {
        using var dir = new TempDir();
        var path = dir.Write("noheader.csv", "0,\"text\"\n");
        var e = Assert.Throws<DataFormatException>(() => AgNews.ReadTrainSubset(path));
        Assert.Contains("noheader.csv:1:", e.Message);
    }

    [Fact]
    public void MissingFileIsATypedError()
    {
        var e = Assert.Throws<SharpformerException>(() => AgNews.ReadTest("/nonexistent/agnews.csv"));
        Assert.Contains("/nonexistent/agnews.csv", e.Message);
    }
}

public class ConllTests
{
    static string Iob1(string split) => SharedData.DataFile("conll2003", "original_iob1", split);
    static string Iob2(string split) => SharedData.DataFile("conll2003", "hf_iob2", split);

    static int[] EntityCounts(IReadOnlyList<TokenExample> sentences)
    {
        var counts = new Dictionary<string, int>();
        foreach (var s in sentences)
            foreach (var e in Seqeval.GetEntities(s.Tags))
                counts[e.Type] = counts.GetValueOrDefault(e.Type) + 1;
        return [counts["PER"], counts["ORG"], counts["LOC"], counts["MISC"]];
    }

    [Theory]
    [InlineData("eng.train", "train.txt", 14041, 203621, 6600, 6321, 7140, 3438)]
    [InlineData("eng.testa", "valid.txt", 3250, 51362, 1842, 1341, 1837, 922)]
    [InlineData("eng.testb", "test.txt", 3453, 46435, 1617, 1661, 1668, 702)]
    public void SplitsHaveTheKnownCountsAndIob1ConvertsToTheHfFiles(string original, string hf, int sentences, int tokens, int per, int org, int loc, int misc)
    {
        var iob1 = Conll.Read(Iob1(original), new ConllOptions(Tags: ConllTags.ToIob2));
        var iob2 = Conll.Read(Iob2(hf));
        Assert.Equal(sentences, iob1.Count);
        Assert.Equal(sentences, iob2.Count);
        Assert.Equal(tokens, iob1.Sum(s => s.Words.Count));
        Assert.Equal([per, org, loc, misc], EntityCounts(iob2));
        for (int i = 0; i < sentences; i++)
        {
            Assert.Equal(iob2[i].Words, iob1[i].Words);
            Assert.Equal(iob2[i].Tags, iob1[i].Tags);
        }
        // No I- tag starts an entity in IOB2 and every tag is in HF's label list.
        var unknown = iob2.SelectMany(s => s.Tags).Where(t => !LabelSet.Conll2003Ner.Contains(t)).Distinct().ToArray();
        Assert.Empty(unknown);
        // Lenient chunking reads IOB1 directly with the same entities.
        Assert.Equal([per, org, loc, misc], EntityCounts(Conll.Read(Iob1(original))));
    }

    [Fact]
    public void FirstSentenceOfTrain()
    {
        var s = Conll.Read(Iob2("train.txt"))[0];
        Assert.Equal(["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], s.Words);
        Assert.Equal(["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"], s.Tags);
    }

    [Fact]
    public void Iob1ToIob2Rules()
    {
        Assert.Equal(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG"],
            TagScheme.Iob1ToIob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "I-ORG"]));
        Assert.Equal(["B-PER", "B-MISC"], TagScheme.Iob1ToIob2(["I-PER", "I-MISC"]));
        string[] iob2 = ["B-PER", "I-PER", "B-PER", "O"];
        Assert.Equal(iob2, TagScheme.Iob1ToIob2(iob2)); // idempotent on IOB2
    }

    [Fact]
    public void MalformedLinesNameFileAndLine()
    {
        var text = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP\n\nGerman JJ I-NP I-MISC\n\nx NN I-NP WRONG\n";
        var e = Assert.Throws<DataFormatException>(() => Conll.Read(new StringReader(text), "eng.bad"));
        Assert.Equal(4, e.Line);
        Assert.StartsWith("eng.bad:4:", e.Message);
        Assert.Contains("expected 4", e.Message);
        var r = Conll.Read(new StringReader(text), "eng.bad", options: new ReadOptions(SkipMalformed: true));
        Assert.Single(r);                       // the broken sentences are dropped whole
        Assert.Equal(["German"], r[0].Words);
        Assert.Equal([4, 8], r.Skipped.Select(s => s.Line).ToArray());
        Assert.Contains("'WRONG' is not a chunk tag", r.Skipped[1].Reason);
    }
}

public class EmotionTests
{
    [Theory]
    [InlineData("train.txt", 16000, 4666, 5362, 1304, 2159, 1937, 572)]
    [InlineData("val.txt", 2000, 550, 704, 178, 275, 212, 81)]
    [InlineData("test.txt", 2000, 581, 695, 159, 275, 224, 66)]
    public void SplitsHaveTheDocumentedCounts(string file, int rows, int sadness, int joy, int love, int anger, int fear, int surprise)
    {
        var data = Emotion.Read(SharedData.DataFile("emotion", file));
        Assert.Equal(rows, data.Count);
        Assert.Equal([sadness, joy, love, anger, fear, surprise], Enumerable.Range(0, 6).Select(c => data.Count(e => e.Label == c)).ToArray());
    }

    [Fact]
    public void FirstTrainLine() =>
        Assert.Equal(new TextExample("i didnt feel humiliated", 0), Emotion.Read(SharedData.DataFile("emotion", "train.txt"))[0]);

    [Fact]
    public void UnknownLabelNamesValueFileAndLine()
    {
        var e = Assert.Throws<UnknownLabelException>(() => Emotion.Read(new StringReader("i am happy;joy\ni am bored;boredom\n"), "emo.txt"));
        Assert.Equal(2, e.Line);
        Assert.Equal("boredom", e.Value);
        Assert.StartsWith("emo.txt:2: unknown label 'boredom'", e.Message);
        var noSemi = Assert.Throws<DataFormatException>(() => Emotion.Read(new StringReader("fine;joy\nno separator\n"), "emo.txt"));
        Assert.Contains("emo.txt:2:", noSemi.Message);
        var skipped = Emotion.Read(new StringReader("a;joy\nb;nope\nc\nd;fear\n"), "emo.txt", options: new ReadOptions(SkipMalformed: true));
        Assert.Equal([1, 4], skipped.Select(x => x.Label).ToArray());
        Assert.Equal(2, skipped.SkippedCount);
    }

    [Fact]
    public void LabelSetFromDataIsSorted()
    {
        var labels = LabelSet.FromValues(File.ReadLines(SharedData.DataFile("emotion", "val.txt")).Select(l => l[(l.LastIndexOf(';') + 1)..]));
        Assert.Equal(["anger", "fear", "joy", "love", "sadness", "surprise"], labels.Names);
        var data = Emotion.Read(SharedData.DataFile("emotion", "val.txt"), labels);
        Assert.Equal(704, data.Count(e => e.Label == labels.Id("joy")));
    }
}
