using System.Xml.Linq;
using Sharpformer.Visualization;

namespace Sharpformer.Tests.Visualization;

public class AttentionRenderingTests
{
    /// <summary>Real attention probabilities: BertModel layer/head maps recorded by transformers for the "accents" case.</summary>
    internal static (string[] Tokens, int Layers, int Heads, float[] Data) Recorded(string caseName = "accents")
    {
        var c = Fixtures.Case("bert-tiny-uncased-seqcls", caseName);
        var tokens = c.GetProperty("encoding").GetProperty("tokens")[0].EnumerateArray().Select(t => t.GetString()!).ToArray();
        var att = c.GetProperty("base_model_outputs").GetProperty("attentions");
        int layers = att.GetArrayLength(), heads = att[0][0].GetArrayLength(), n = tokens.Length;
        var data = new float[layers * heads * n * n];
        int p = 0;
        foreach (var layer in att.EnumerateArray())
            foreach (var head in layer[0].EnumerateArray())
                foreach (var row in head.EnumerateArray())
                    foreach (var v in row.EnumerateArray()) data[p++] = v.GetSingle();
        return (tokens, layers, heads, data);
    }

    static float[,] Head(float[] data, int n, int heads, int layer, int head)
    {
        var m = new float[n, n];
        int o = (layer * heads + head) * n * n;
        for (int q = 0; q < n; q++) for (int k = 0; k < n; k++) m[q, k] = data[o + q * n + k];
        return m;
    }

    [Fact]
    public void Heatmap_HasOneCellPerPair_ColouredByProbability_AndLabelsBothAxes()
    {
        var (tokens, _, heads, data) = Recorded();
        int n = tokens.Length;
        var m = Head(data, n, heads, 1, 2);
        var svg = XDocument.Parse(AttentionSvg.Heatmap(m, tokens, "layer 1, head 2"));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var cells = svg.Descendants(ns + "rect").Where(r => r.Element(ns + "title") != null).ToList();
        Assert.Equal(n * n, cells.Count);
        // Cell (q, k) is the k-th of row q and carries the probability's colour.
        for (int q = 0; q < n; q++)
            for (int k = 0; k < n; k++)
                Assert.Equal(AttentionSvg.Color(m[q, k]), cells[q * n + k].Attribute("fill")!.Value);
        var labels = svg.Descendants(ns + "text").Select(t => t.Value).ToList();
        foreach (var t in tokens) Assert.Equal(2 * tokens.Count(u => u == t), labels.Count(l => l == t));   // once per axis
        Assert.Contains("layer 1, head 2", labels);
    }

    [Fact]
    public void Colour_RampsFromWhiteToDeepBlue()
    {
        Assert.Equal("#ffffff", AttentionSvg.Color(0f));
        Assert.Equal("#08306b", AttentionSvg.Color(1f));
        Assert.Equal("#08306b", AttentionSvg.Color(7f));
        Assert.Equal("#506d96", AttentionSvg.Color(0.5f));   // √0.5 of the way
        Assert.Equal("#a8b6cb", AttentionSvg.Color(0.125f));
    }

    [Fact]
    public void TokenText_IsEscaped_SoMarkupInTokensCannotBreakTheSvgOrHtml()
    {
        string[] tokens = ["[CLS]", "<script>x</script>", "a&b", "\"q\"", "x\u0001y", "[SEP]"];
        var m = new float[6, 6];
        for (int i = 0; i < 6; i++) m[i, (i + 1) % 6] = 1f;
        var svg = AttentionSvg.Heatmap(m, tokens, "<b>title</b>");
        Assert.DoesNotContain("<script>", svg);
        Assert.DoesNotContain("<b>", svg);
        var doc = XDocument.Parse(svg); // well-formed XML despite the hostile tokens
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Contains(doc.Descendants(ns + "text"), t => t.Value == "<script>x</script>");
        Assert.Contains(doc.Descendants(ns + "text"), t => t.Value == "x\uFFFDy");

        var html = AttentionHtml.Render(tokens, 1, 1, Enumerable.Range(0, 36).Select(i => (float)(i % 7) / 7).ToArray(), "<i>t</i>");
        Assert.DoesNotContain("<script>x", html);
        Assert.DoesNotContain("</script>\",", html);
        Assert.Contains("\\u003Cscript\\u003E", html);
    }

    [Fact]
    public void Grid_DrawsEveryHead_WithItsTitle()
    {
        var (tokens, _, heads, data) = Recorded();
        int n = tokens.Length;
        var maps = Enumerable.Range(0, heads).Select(h => Head(data, n, heads, 0, h)).ToList();
        var svg = XDocument.Parse(AttentionSvg.Grid(maps, maps.Select((_, h) => $"head {h}").ToList(), tokens, columns: 2));
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(heads * n * n, svg.Descendants(ns + "rect").Count(r => r.Element(ns + "title") != null));
        for (int h = 0; h < heads; h++) Assert.Contains(svg.Descendants(ns + "text"), t => t.Value == $"head {h}");
    }

    [Fact]
    public void Shapes_AreChecked()
    {
        Assert.Throws<ArgumentException>(() => AttentionSvg.Heatmap(new float[2, 3], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => AttentionSvg.Heatmap(new float[2, 2], ["a"]));
        Assert.Throws<ArgumentException>(() => AttentionHtml.Render(["a", "b"], 1, 2, new float[7]));
    }

    [BrowserFact]
    public void Html_RendersInChromium_AsANonTrivialHeatmap()
    {
        var (tokens, layers, heads, data) = Recorded();
        var dir = Directory.CreateTempSubdirectory("sf-attn-").FullName;
        var html = Path.Combine(dir, "attention.html");
        VisualizationFile.WriteAllText(html, AttentionHtml.Render(tokens, layers, heads, data, "bert-tiny: accents", initialLayer: 1, initialHead: -2));
        var png = Chromium.Screenshot(html, Path.Combine(dir, "attention.png"), 1200, 900);
        Assert.True(new FileInfo(png).Length > 5_000, $"screenshot {png} is only {new FileInfo(png).Length} bytes");
        var img = PngImage.Read(png);
        Assert.Equal((1200, 900), (img.Width, img.Height));
        Assert.True(img.DistinctColors() > 30, $"screenshot {png} has only {img.DistinctColors()} colours");
        // The blue ramp of the heatmap cells covers a visible part of the page.
        double blue = img.FractionMatching((r, g, b) => b - r >= 15);
        Assert.True(blue > 0.05, $"only {blue:P1} of {png} is heatmap-blue");
        // The DOM the script built: all heads of layer 1 drawn as n×n cells each.
        var dom = Chromium.DumpDom(html);
        Assert.Equal(heads, System.Text.RegularExpressions.Regex.Matches(dom, "<svg").Count);
        Assert.Contains("layer 1, head 3", dom);
    }

    [BrowserFact]
    public void Svg_RendersInChromium()
    {
        var (tokens, _, heads, data) = Recorded();
        int n = tokens.Length;
        var dir = Directory.CreateTempSubdirectory("sf-attn-").FullName;
        var svgPath = Path.Combine(dir, "head.svg");
        VisualizationFile.WriteAllText(svgPath, AttentionSvg.Heatmap(Head(data, n, heads, 0, 1), tokens, "layer 0, head 1"));
        var img = PngImage.Read(Chromium.Screenshot(svgPath, Path.Combine(dir, "head.png"), 800, 800));
        Assert.True(img.DistinctColors() > 20);
        Assert.True(img.FractionMatching((r, g, b) => b - r >= 15) > 0.05);
    }
}
