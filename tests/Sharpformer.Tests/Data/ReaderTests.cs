using System.Text.Json;
using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public class CsvReaderTests
{
    static List<CsvRow> Parse(string text, char delimiter = ',') => CsvReader.Parse(new StringReader(text), "mem.csv", delimiter).ToList();

    [Fact]
    public void QuotedFieldsDoubledQuotesEmbeddedDelimitersAndNewlines()
    {
        var rows = Parse("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\nlast,\"\",");
        Assert.Equal(3, rows.Count);
        Assert.Equal(["a", "b,c", "say \"hi\""], rows[0].Fields);
        Assert.Equal(["two\nlines", "", "x"], rows[1].Fields);
        Assert.Equal(["last", "", ""], rows[2].Fields);
        Assert.Equal([1, 2, 4], rows.Select(r => r.Line).ToArray());
        Assert.All(rows, r => Assert.False(r.IsMalformed));
    }

    [Fact]
    public void BackslashesAreOrdinaryCharacters() =>
        Assert.Equal(["a\\nb", "\\$5"], Parse("\"a\\nb\",\\$5\n")[0].Fields);

    [Fact]
    public void OtherDelimitersAndEmptyLines()
    {
        var rows = Parse("x\ty\n\n\"1\t2\"\t3\n", '\t');
        Assert.Equal(["x", "y"], rows[0].Fields);
        Assert.Equal([""], rows[1].Fields);
        Assert.Equal(["1\t2", "3"], rows[2].Fields);
    }

    [Theory]
    [InlineData("ok\n\"open field\nnever closed\n", 2, "never closed")]
    [InlineData("ok\nab\"c,d\n", 2, "quote inside unquoted field 1")]
    [InlineData("a,\"b\"x,c\nok\n", 1, "after the closing quote of field 2")]
    public void MalformedRowsCarryTheirStartLine(string text, int line, string reason)
    {
        var bad = Parse(text).Single(r => r.IsMalformed);
        Assert.Equal(line, bad.Line);
        Assert.Contains(reason, bad.Error);
    }

    [Fact]
    public void ParsingResumesAfterAMalformedLine()
    {
        var rows = Parse("a\"b,c\nd,e\n");
        Assert.True(rows[0].IsMalformed);
        Assert.Equal(["d", "e"], rows[1].Fields);
        Assert.Equal(2, rows[1].Line);
    }

    [Fact]
    public void InvalidUtf8IsReportedWithFileAndLine()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "latin1.csv");
        File.WriteAllBytes(path, [(byte)'a', (byte)'\n', (byte)'b', 0xE9, (byte)'\n']);
        var e = Assert.Throws<DataFormatException>(() => CsvReader.ReadFile(path));
        Assert.Contains("latin1.csv:2:", e.Message);
        Assert.Contains("UTF-8", e.Message);
    }
}

public class DelimitedTextTests
{
    [Fact]
    public void ColumnsByNameWithLabelNamesFromTheData()
    {
        var csv = "id,title,body,topic\n1,Hello,World,b\n2,\"A, B\",C,a\n3,X,Y,b\n";
        var r = DelimitedText.Read(new StringReader(csv), "m.csv", new DelimitedTextOptions { TextColumns = ["title", "body"], LabelColumn = "topic" });
        Assert.Equal(["a", "b"], r.Labels!.Names);
        Assert.Equal([new TextExample("Hello World", 1), new TextExample("A, B C", 0), new TextExample("X Y", 1)], r.ToArray());
    }

    [Fact]
    public void ColumnsByIndexWithIntegerLabelsAndOffset()
    {
        var r = DelimitedText.Read(new StringReader("\"3\",\"t\",\"d\"\n\"1\",\"u\",\"e\"\n"), "ag.csv", new DelimitedTextOptions
        {
            TextColumns = [1, 2], LabelColumn = 0, HasHeader = false, LabelValues = LabelValues.Ids, LabelOffset = 1, Labels = new LabelSet(["W", "S", "B", "T"]),
        });
        Assert.Equal([new TextExample("t d", 2), new TextExample("u e", 0)], r.ToArray());
    }

    [Fact]
    public void ErrorsNameFileAndLine()
    {
        var opts = new DelimitedTextOptions { TextColumns = ["text"], LabelColumn = "label", Labels = new LabelSet(["pos", "neg"]) };
        var unknown = Assert.Throws<UnknownLabelException>(() => DelimitedText.Read(new StringReader("text;label\ngood;pos\nmeh;neutral\n"), "s.csv", opts with { Delimiter = ';' }));
        Assert.StartsWith("s.csv:3: unknown label 'neutral'", unknown.Message);
        var width = Assert.Throws<DataFormatException>(() => DelimitedText.Read(new StringReader("text,label\ngood,pos\nbad\n"), "s.csv", opts));
        Assert.StartsWith("s.csv:3: expected 2 fields", width.Message);
        var column = Assert.Throws<DataFormatException>(() => DelimitedText.Read(new StringReader("txt,label\ngood,pos\n"), "s.csv", opts));
        Assert.Contains("header has no column 'text'", column.Message);
        var ids = Assert.Throws<DataFormatException>(() => DelimitedText.Read(new StringReader("text,label\na,2\n"), "s.csv", opts with { LabelValues = LabelValues.Ids }));
        Assert.StartsWith("s.csv:2: label 2 gives id 2, outside 0..1", ids.Message);
        var skipped = DelimitedText.Read(new StringReader("text,label\na,pos\nb,x\nc\nd,neg\n"), "s.csv", opts, new ReadOptions(SkipMalformed: true));
        Assert.Equal([0, 1], skipped.Select(e => e.Label).ToArray());
        Assert.Equal([3, 4], skipped.Skipped.Select(s => s.Line).Order().ToArray());
    }
}

public class JsonLinesTests
{
    [Fact]
    public void TextWithStringOrIntegerLabels()
    {
        var named = JsonLines.ReadText(new StringReader("{\"text\":\"a\",\"label\":\"neg\"}\n\n{\"text\":\"b\",\"label\":\"pos\"}\n"), "x.jsonl");
        Assert.Equal(["neg", "pos"], named.Labels!.Names);
        Assert.Equal([new TextExample("a", 0), new TextExample("b", 1)], named.ToArray());
        var ids = JsonLines.ReadText(new StringReader("{\"premise\":\"p\",\"hyp\":\"h\",\"y\":2}\n"), "x.jsonl",
            new JsonLinesTextOptions { TextFields = ["premise", "hyp"], LabelField = "y", TextJoiner = " | " });
        Assert.Equal(new TextExample("p | h", 2), ids[0]);
    }

    [Fact]
    public void TokensWithIntegerTagsNamedByALabelSet()
    {
        var r = JsonLines.ReadTokens(new StringReader("{\"tokens\":[\"EU\",\"rejects\"],\"ner_tags\":[3,0]}\n"), "c.jsonl",
            new JsonLinesTokenOptions { Labels = LabelSet.Conll2003Ner });
        Assert.Equal(["EU", "rejects"], r[0].Words);
        Assert.Equal(["B-ORG", "O"], r[0].Tags);
    }

    [Fact]
    public void ErrorsNameFileAndLine()
    {
        var bad = Assert.Throws<DataFormatException>(() => JsonLines.ReadText(new StringReader("{\"text\":\"a\",\"label\":1}\n{\"text\":\"a\",\"label\":1\n"), "x.jsonl"));
        Assert.StartsWith("x.jsonl:2: invalid JSON", bad.Message);
        var missing = Assert.Throws<DataFormatException>(() => JsonLines.ReadText(new StringReader("{\"txt\":\"a\",\"label\":1}\n"), "x.jsonl"));
        Assert.StartsWith("x.jsonl:1: field 'text' is missing", missing.Message);
        var count = Assert.Throws<DataFormatException>(() => JsonLines.ReadTokens(new StringReader("{\"tokens\":[\"a\"],\"ner_tags\":[\"O\",\"O\"]}\n"), "t.jsonl"));
        Assert.StartsWith("t.jsonl:1: 1 words but 2 tags", count.Message);
        var unknown = Assert.Throws<UnknownLabelException>(() => JsonLines.ReadTokens(new StringReader("{\"tokens\":[\"a\"],\"ner_tags\":[\"B-FOO\"]}\n"), "t.jsonl",
            new JsonLinesTokenOptions { Labels = LabelSet.Conll2003Ner }));
        Assert.Equal(1, unknown.Line);
    }
}

public class LabelSetTests
{
    [Fact]
    public void IdsNamesAndInsideIds()
    {
        var l = LabelSet.Conll2003Ner;
        Assert.Equal(3, l.Id("B-ORG"));
        Assert.Equal("I-MISC", l[8]);
        Assert.Equal(4, l.InsideId(3));  // B-ORG → I-ORG
        Assert.Equal(4, l.InsideId(4));
        Assert.Equal(0, l.InsideId(0));
        Assert.Equal("O", l.IdToLabel()[0]);
        Assert.Equal(8, l.LabelToId()["I-MISC"]);
        var e = Assert.Throws<UnknownLabelException>(() => l.Id("B-FOO", "f.txt", 12));
        Assert.StartsWith("f.txt:12: unknown label 'B-FOO'", e.Message);
        Assert.Throws<KeyNotFoundException>(() => new LabelSet(["O", "B-X"]).InsideId(1));
        Assert.Throws<ArgumentException>(() => new LabelSet(["a", "a"]));
    }
}

public class JsonLinesLogTests
{
    [Fact]
    public void AppendsOneFlushedObjectPerLine()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "logs", "train.jsonl");
        using (var log = new JsonLinesLog(path))
        {
            log.Write(new { step = 1, loss = 0.5 });
            // Flushed per line: readable while the log is still open.
            using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            Assert.Equal("{\"step\":1,\"loss\":0.5}", reader.ReadLine());
        }
        using (var log = new JsonLinesLog(path)) log.Write(new Dictionary<string, object> { ["step"] = 2, ["lr"] = 1e-5 });
        var lines = File.ReadAllLines(path);
        Assert.Equal(2, lines.Length);
        Assert.Equal(2, JsonDocument.Parse(lines[1]).RootElement.GetProperty("step").GetInt32());
        using var again = new JsonLinesLog(path, append: false);
        Assert.Throws<ArgumentException>(() => again.Write(42));
        again.Write(new { loss = double.NaN });
        Assert.Equal("{\"loss\":\"NaN\"}", File.ReadAllLines(path).Single());
    }
}
