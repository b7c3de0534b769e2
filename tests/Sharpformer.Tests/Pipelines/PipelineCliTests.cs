using System.Text.Json;
using Sharpformer.Cli;
using Sharpformer.Tests.Visualization;

namespace Sharpformer.Tests.Pipelines;

/// <summary>The classify / ner / embed / fill-mask / attention verbs in-process, against the fixtures' HF records.</summary>
public class PipelineCliTests
{
    static (int Code, string Out, string Err) Cli(string stdin, params string[] args)
    {
        var output = new StringWriter(); var error = new StringWriter();
        int code = CliHost.Invoke(args, new StringReader(stdin), output, error);
        return (code, output.ToString(), error.ToString());
    }

    static string Dir(string name) => SharedData.Fixture(name);

    [Fact]
    public void Ner_Json_PrintsOneHfArrayPerText_ForEveryAggregation()
    {
        const string dir = "bert-tiny-cased-tokcls";
        var tcp = Fixtures.Expected(dir).GetProperty("token_classification_pipeline");
        var texts = tcp.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        foreach (var strategy in new[] { "simple", "first", "average", "max" })
        {
            var (code, stdout, stderr) = Cli("", ["ner", "--model", Dir(dir), "--aggregation", strategy, "--json", "--batch-size", "3", texts[1], texts[2], texts[6]]);
            Assert.True(code == 0, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, lines.Length);
            int[] which = [1, 2, 6];
            for (int i = 0; i < 3; i++)
            {
                var actual = JsonDocument.Parse(lines[i]).RootElement;
                var expected = tcp.GetProperty("fast_path_emulated").GetProperty(strategy)[which[i]];
                Assert.Equal(expected.GetArrayLength(), actual.GetArrayLength());
                for (int e = 0; e < actual.GetArrayLength(); e++)
                {
                    Assert.Equal(["entity_group", "score", "word", "start", "end"], actual[e].EnumerateObject().Select(p => p.Name));
                    Assert.Equal(expected[e].GetProperty("word").GetString(), actual[e].GetProperty("word").GetString());
                    Assert.Equal(Fixtures.Utf16Index(texts[which[i]], expected[e].GetProperty("start").GetInt32()), actual[e].GetProperty("start").GetInt32());
                    Assert.Equal(expected[e].GetProperty("score").GetSingle(), actual[e].GetProperty("score").GetSingle(), 1e-5);
                }
            }
        }
    }

    [Fact]
    public void Ner_None_FromStdin_HasIndexAndEntity()
    {
        const string dir = "distilbert-tiny-uncased-tokcls";
        var tcp = Fixtures.Expected(dir).GetProperty("token_classification_pipeline");
        var texts = tcp.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var (code, stdout, stderr) = Cli(texts[0] + "\n\n" + texts[3] + "\n", ["ner", "--model", Dir(dir), "--aggregation", "none", "--json"]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);   // the empty line is skipped
        var actual = JsonDocument.Parse(lines[1]).RootElement;
        var expected = tcp.GetProperty("fast_path_emulated").GetProperty("none")[3];
        Assert.Equal(expected.GetArrayLength(), actual.GetArrayLength());
        Assert.Equal(["entity", "score", "index", "word", "start", "end"], actual[0].EnumerateObject().Select(p => p.Name));
        for (int e = 0; e < actual.GetArrayLength(); e++)
        {
            Assert.Equal(expected[e].GetProperty("entity").GetString(), actual[e].GetProperty("entity").GetString());
            Assert.Equal(expected[e].GetProperty("index").GetInt32(), actual[e].GetProperty("index").GetInt32());
        }
        var human = Cli("", ["ner", "--model", Dir(dir), texts[0]]);
        Assert.Equal(0, human.Code);
        Assert.Contains(tcp.GetProperty("fast_path_emulated").GetProperty("simple")[0][0].GetProperty("word").GetString()!, human.Out);
    }

    [Fact]
    public void Classify_FromFile_Json_And_HumanReadable()
    {
        const string dir = "distilbert-tiny-uncased-seqcls";
        var tc = Fixtures.Expected(dir).GetProperty("text_classification_pipeline");
        var texts = tc.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var file = Path.GetTempFileName();
        File.WriteAllLines(file, texts);
        var (code, stdout, stderr) = Cli("", ["classify", "--model", Dir(dir), "--file", file, "--json", "--top-k", "0", "--threads", "1"]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(texts.Length, lines.Length);
        for (int i = 0; i < texts.Length; i++)
        {
            var actual = JsonDocument.Parse(lines[i]).RootElement;
            var expected = tc.GetProperty("top_k_none")[i];
            for (int k = 0; k < 4; k++)
            {
                Assert.Equal(expected[k].GetProperty("label").GetString(), actual[k].GetProperty("label").GetString());
                Assert.Equal(expected[k].GetProperty("score").GetSingle(), actual[k].GetProperty("score").GetSingle(), 1e-5);
            }
        }
        var human = Cli("", ["classify", "--model", Dir(dir), texts[0]]);
        var best = tc.GetProperty("default")[0][0];
        Assert.Contains(best.GetProperty("label").GetString()!, human.Out);
        Assert.Contains(best.GetProperty("score").GetSingle().ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture), human.Out);
    }

    [Fact]
    public void FillMask_Json_OneMaskIsAList_SeveralMasksAListPerMask()
    {
        const string dir = "bert-tiny-uncased-mlm";
        var fm = Fixtures.Expected(dir).GetProperty("mlm").GetProperty("fill_mask_pipeline");
        var texts = fm.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var (code, stdout, stderr) = Cli("", ["fill-mask", "--model", Dir(dir), "--json", "--top-k", "5", .. texts]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < texts.Length; i++) AssertSame(fm.GetProperty("outputs")[i], JsonDocument.Parse(lines[i]).RootElement);
    }

    // Same JSON structure, field names and order; numbers within 1e-5.
    static void AssertSame(JsonElement expected, JsonElement actual)
    {
        Assert.Equal(expected.ValueKind, actual.ValueKind);
        switch (expected.ValueKind)
        {
            case JsonValueKind.Array:
                Assert.Equal(expected.GetArrayLength(), actual.GetArrayLength());
                for (int i = 0; i < expected.GetArrayLength(); i++) AssertSame(expected[i], actual[i]);
                break;
            case JsonValueKind.Object:
                Assert.Equal(expected.EnumerateObject().Select(p => p.Name), actual.EnumerateObject().Select(p => p.Name));
                foreach (var p in expected.EnumerateObject()) AssertSame(p.Value, actual.GetProperty(p.Name));
                break;
            case JsonValueKind.Number:
                Assert.Equal(expected.GetDouble(), actual.GetDouble(), 1e-5);
                break;
            default:
                Assert.Equal(expected.GetRawText(), actual.GetRawText());
                break;
        }
    }

    [Fact]
    public void Embed_PrintsUnitVectors_WhenNormalized()
    {
        var (code, stdout, stderr) = Cli("", ["embed", "--model", Dir("bert-tiny-uncased-seqcls"), "--normalize", "--json", "hello world", "another text"]);
        Assert.True(code == 0, stderr);
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var v = JsonDocument.Parse(line).RootElement.EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(64, v.Length);
            Assert.Equal(1.0, Math.Sqrt(v.Sum(x => x * x)), 1e-5);
        }
    }

    [Theory]
    [InlineData("empty or only whitespace", "ner", "--model", "{tokcls}", "   ")]
    [InlineData("empty or only whitespace", "classify", "--model", "{seqcls}", "")]
    [InlineData("--aggregation bogus is unknown", "ner", "--model", "{tokcls}", "--aggregation", "bogus", "x")]
    [InlineData("no tokenizer", "ner", "--model", "{notok}", "x")]
    [InlineData("no [MASK] token", "fill-mask", "--model", "{mlm}", "no mask")]
    [InlineData("needs a *ForSequenceClassification", "classify", "--model", "{tokcls}", "x")]
    [InlineData("--top-k must be", "fill-mask", "--model", "{mlm}", "--top-k", "0", "a [MASK]")]
    [InlineData("neither a model directory", "embed", "--model", "/no/such/model", "x")]
    public void BadInput_OneLineError_NonZeroExit_NoStackTrace(string message, params string[] args)
    {
        var notok = Directory.CreateTempSubdirectory("sf-notok-").FullName;
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Dir("bert-tiny-uncased-tokcls") + "/" + f, Path.Combine(notok, f));
        args = args.Select(a => a.Replace("{tokcls}", Dir("bert-tiny-uncased-tokcls")).Replace("{seqcls}", Dir("bert-tiny-uncased-seqcls"))
            .Replace("{mlm}", Dir("bert-tiny-uncased-mlm")).Replace("{notok}", notok)).ToArray();
        var (code, stdout, stderr) = Cli("", args);
        Assert.NotEqual(0, code);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain(" at ", stderr);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void HugeText_IsRejectedWithALimitMessage()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, new string('a', 1 << 20) + "\n");
        var (code, _, stderr) = Cli("", ["classify", "--model", Dir("bert-tiny-uncased-seqcls"), "--file", file]);
        Assert.Equal(1, code);
        Assert.Contains("1048576 characters; the limit is 100000", stderr);
    }

    [Fact]
    public void Attention_WritesSvgAndHtml()
    {
        var dir = Directory.CreateTempSubdirectory("sf-attn-cli-").FullName;
        var svg = Path.Combine(dir, "a.svg");
        var (code, stdout, stderr) = Cli("", ["attention", "--model", Dir("bert-tiny-uncased-seqcls"), "Café <naïve> & résumé", "--layer", "0", "--head", "2", "--out", svg]);
        Assert.True(code == 0, stderr);
        Assert.Contains("wrote", stdout);
        var doc = System.Xml.Linq.XDocument.Load(svg);
        Assert.Contains(doc.Descendants(), e => e.Value == "layer 0, head 2" || e.Value.EndsWith("layer 0, head 2", StringComparison.Ordinal));
        Assert.Contains(doc.Descendants(), e => e.Value == "<");
        var html = Path.Combine(dir, "a.html");
        Assert.Equal(0, Cli("", ["attention", "--model", Dir("distilbert-tiny-uncased-seqcls"), "hello there", "--all-heads", "--out", html]).Code);
        Assert.Contains("\"head\":-2", File.ReadAllText(html));
        var grid = Path.Combine(dir, "g.svg");
        Assert.Equal(0, Cli("", ["attention", "--model", Dir("distilbert-tiny-uncased-seqcls"), "hello there", "--all-heads", "--out", grid]).Code);
        Assert.Equal(4 * 16, System.Xml.Linq.XDocument.Load(grid).Descendants().Count(e => e.Name.LocalName == "rect" && e.Elements().Any(c => c.Name.LocalName == "title")));
        var bad = Cli("", ["attention", "--model", Dir("bert-tiny-uncased-seqcls"), "x", "--layer", "5", "--out", svg]);
        Assert.Contains("--layer 5 is out of range", bad.Err);
        Assert.Contains("use a .svg or .html", Cli("", ["attention", "--model", Dir("bert-tiny-uncased-seqcls"), "x", "--out", Path.Combine(dir, "a.png")]).Err);
    }
}
