using Sharpformer.Data;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Data;

/// <summary>Bad training input gets one line naming the file, the line and the fix (issue 10, item 8).</summary>
public class TrainingInputErrorTests
{
    const string ConllWithUnknownTag = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP B-FOO\n";

    [Fact]
    public void Conll_TagOutsideTheLabelSet_ThrowsUnknownTagNamingFileAndLine()
    {
        var e = Assert.Throws<UnknownTagException>(() =>
            Conll.Read(new StringReader(ConllWithUnknownTag), "train.txt", new ConllOptions(Labels: LabelSet.Conll2003Ner)));
        Assert.Equal(("train.txt", 7, "B-FOO"), (e.File, e.Line, e.Tag));
        Assert.StartsWith("train.txt:7: unknown tag 'B-FOO' (known: O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC)", e.Message);
    }

    [Fact]
    public void Conll_UnknownTagWithSkipMalformed_DropsOnlyThatSentence()
    {
        var r = Conll.Read(new StringReader(ConllWithUnknownTag), "train.txt", new ConllOptions(Labels: LabelSet.Conll2003Ner), new ReadOptions(SkipMalformed: true));
        Assert.Equal(["EU", "rejects"], Assert.Single(r).Words);
        Assert.Equal(7, Assert.Single(r.Skipped).Line);
    }

    [Fact]
    public void TrainTokenClassifier_UnknownConllTag_PrintsOneLineErrorNotAStackTrace()
    {
        using var dir = new TempDir();
        string train = dir.Write("train.txt", ConllWithUnknownTag);
        var stderr = new StringWriter();
        int rc = Sharpformer.Cli.CliHost.Invoke(["train", "token-classifier", "--model", dir.Path, "--train", train, "--output", Path.Combine(dir.Path, "out")],
            TextReader.Null, new StringWriter(), stderr);
        Assert.Equal(1, rc);
        var lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith($"error: {train}:7: unknown tag 'B-FOO' (known: O, B-PER,", Assert.Single(lines));
    }

    [Fact]
    public void AlignLabels_UnknownTagName_IsAnArgumentExceptionListingTheKnownTags()
    {
        var e = Assert.Throws<ArgumentException>(() => LabelAlignment.AlignLabelsWithTokens([null, 0, null], ["B-FOO"], LabelSet.Conll2003Ner));
        Assert.Contains("'B-FOO' (known: O, B-PER", e.Message);
    }

    [Fact]
    public void Detect_LabelTextHeaderWithNamedLabels_IsCsvNotAgNews()
    {
        using var dir = new TempDir();
        string file = dir.Write("reviews.csv", "label,text\npositive,great film\nnegative,\"dull, long\"\n");
        Assert.Equal(TextFileFormat.Csv, TextClassificationFiles.Detect(file));
        var read = TextClassificationFiles.Read(file);
        Assert.Equal(["negative", "positive"], read.Labels!.Names);
        Assert.Equal([("great film", 1), ("dull, long", 0)], read.Select(x => (x.Text, x.Label)));
    }

    [Fact]
    public void Detect_AgNewsTrainSubsetLayout_IsStillAgNewsSubset()
    {
        Assert.Equal(TextFileFormat.AgNewsSubset, TextClassificationFiles.Detect(SharedData.DataFile("ag_news", "train_subset.csv")));
        Assert.Equal(TextFileFormat.AgNewsOfficial, TextClassificationFiles.Detect(SharedData.DataFile("ag_news", "test.csv")));
    }

    [Fact]
    public void AgNewsSubset_LabelThatIsNotAClassId_ErrorNamesLineAndSaysFormatCsv()
    {
        using var dir = new TempDir();
        string file = dir.Write("mine.csv", "label,text\n2,\"stocks fell\"\npositive,\"great film\"\n");
        var e = Assert.Throws<DataFormatException>(() => AgNews.ReadTrainSubset(file));
        Assert.Equal(3, e.Line);
        Assert.StartsWith($"{file}:3: label 'positive' is not an AG News class id 0..3.", e.Message);
        Assert.Contains("--format csv", e.Message);
    }

    [Fact]
    public void AgNewsTest_HeaderRow_ErrorNamesLineOneAndSaysFormatCsv()
    {
        using var dir = new TempDir();
        string file = dir.Write("test.csv", "label,text,extra\n\"3\",\"Title\",\"Body\"\n");
        var e = Assert.Throws<DataFormatException>(() => AgNews.ReadTest(file));
        Assert.Equal(1, e.Line);
        Assert.Contains("header row", e.Message);
        Assert.Contains("--format csv", e.Message);
    }

    [Fact]
    public void AgNewsTest_ClassTitleDescriptionHeader_IsSkipped()
    {
        using var dir = new TempDir();
        string file = dir.Write("test.csv", "\"class\",\"title\",\"description\"\n\"3\",\"Title\",\"Body\"\n");
        var read = AgNews.ReadTest(file);
        Assert.Equal(("Title Body", 2), (Assert.Single(read).Text, read[0].Label));
    }
}
