using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Sharpformer.Visualization;

namespace Sharpformer.Tests.Visualization;

/// <summary>
/// Nothing in an attention picture is cut or drawn over something else: checked on the SVG's geometry with the renderer's
/// conservative text-width estimate, and in Chromium with the real font metrics.
/// </summary>
public class AttentionLayoutTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    const string ShortTitle = "h0";
    const string LongTitle = "bert-tiny-uncased-seqcls: layer 1, average of 4 heads";

    internal static string[] Tokens(int n)
    {
        string[] pool = ["the", "cat", "sat", "on", "mat", "##s", "Washington", "東京", "WWW", "a", "[UNK]", ".", "extraordinarily", "état"];
        var t = new string[n];
        for (int i = 0; i < n; i++) t[i] = i == 0 ? "[CLS]" : i == n - 1 ? "[SEP]" : pool[i % pool.Length];
        return t;
    }

    internal static float[,] Uniform(int n)
    {
        var m = new float[n, n];
        for (int q = 0; q < n; q++) for (int k = 0; k < n; k++) m[q, k] = (q * 7 + k * 3) % (n + 1) / (float)(n + 1);
        return m;
    }

    /// <summary>A text element's box in canvas coordinates: width from the renderer's estimate, height from ascent/descent.</summary>
    sealed record Box(string Text, double Left, double Top, double Right, double Bottom)
    {
        public bool Overlaps(Box o) => Left < o.Right && o.Left < Right && Top < o.Bottom && o.Top < Bottom;
    }

    static IReadOnlyList<Box> TextBoxes(XDocument doc)
    {
        var root = doc.Root!;
        double rootSize = double.Parse(root.Attribute("font-size")!.Value, CultureInfo.InvariantCulture);
        var boxes = new List<Box>();
        foreach (var t in root.Descendants(Svg + "text"))
        {
            double x = D(t, "x"), y = D(t, "y");
            double size = t.Attribute("font-size") is { } fs ? double.Parse(fs.Value, CultureInfo.InvariantCulture) : rootSize;
            bool bold = t.Attribute("font-weight")?.Value == "bold";
            double w = AttentionSvg.EstimateTextWidth(t.Value, size, bold);
            // DejaVu Sans: ascent 0.93 em, descent 0.24 em (a little more than any glyph needs).
            double ascent = 0.93 * size, descent = 0.24 * size;
            string anchor = t.Attribute("text-anchor")?.Value ?? "start";
            double start = anchor switch { "end" => x - w, "middle" => x - w / 2, _ => x };
            var transform = t.Attribute("transform")?.Value;
            if (transform is null) boxes.Add(new Box(t.Value, start, y - ascent, start + w, y + descent));
            else
            {
                // rotate(-90 cx cy) about the text origin: the baseline runs upwards, the ascent points left.
                var m = Regex.Match(transform, @"^rotate\(-90 (\S+) (\S+)\)$");
                Assert.True(m.Success, $"unexpected transform '{transform}'");
                Assert.Equal((x, y), (P(m.Groups[1].Value), P(m.Groups[2].Value)));
                Assert.Equal("start", anchor);
                boxes.Add(new Box(t.Value, x - ascent, y - w, x + descent, y));
            }
        }
        return boxes;
    }

    static double D(XElement e, string name) => P(e.Attribute(name)!.Value);
    static double P(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    internal static void AssertEveryTextInsideAndApart(string svg, string what)
    {
        var doc = XDocument.Parse(svg);
        var root = doc.Root!;
        var viewBox = root.Attribute("viewBox")!.Value.Split(' ').Select(P).ToArray();
        Assert.Equal([0, 0, D(root, "width"), D(root, "height")], viewBox);
        double w = viewBox[2], h = viewBox[3];
        var boxes = TextBoxes(doc);
        foreach (var b in boxes)
            Assert.True(b.Left >= 0 && b.Top >= 0 && b.Right <= w && b.Bottom <= h,
                $"{what}: text '{b.Text}' spans [{b.Left:0.#}, {b.Right:0.#}] × [{b.Top:0.#}, {b.Bottom:0.#}], outside the {w}×{h} canvas");
        for (int i = 0; i < boxes.Count; i++)
            for (int j = i + 1; j < boxes.Count; j++)
                Assert.False(boxes[i].Overlaps(boxes[j]), $"{what}: text '{boxes[i].Text}' overlaps '{boxes[j].Text}' ({boxes[i]} vs {boxes[j]})");
    }

    public static TheoryData<string, int> TitlesAndSizes()
    {
        var data = new TheoryData<string, int>();
        foreach (var title in new[] { ShortTitle, LongTitle })
            foreach (var n in new[] { 2, 3, 5, 9, 16, 64 }) data.Add(title, n);
        return data;
    }

    [Theory]
    [MemberData(nameof(TitlesAndSizes))]
    public void Heatmap_EveryTextLiesInsideTheCanvas_AndNoTwoTextsOverlap(string title, int n) =>
        AssertEveryTextInsideAndApart(AttentionSvg.Heatmap(Uniform(n), Tokens(n), title), $"heatmap n={n} '{title}'");

    [Theory]
    [MemberData(nameof(TitlesAndSizes))]
    public void Grid_EveryTextLiesInsideTheCanvas_AndNoTwoTextsOverlap(string title, int n)
    {
        var maps = Enumerable.Range(0, 4).Select(_ => Uniform(n)).ToList();
        var titles = Enumerable.Range(0, 4).Select(h => $"{title} {h}").ToList();
        AssertEveryTextInsideAndApart(AttentionSvg.Grid(maps, titles, Tokens(n), columns: 3), $"grid n={n} '{title}'");
    }

    [Fact]
    public void Heatmap_ColourBarCaption_SitsBelowItsTickLabels()
    {
        var doc = XDocument.Parse(AttentionSvg.Heatmap(Uniform(2), ["a", "b"], "t"));
        var texts = doc.Descendants(Svg + "text").ToList();
        var caption = texts.Single(t => t.Value.StartsWith("attention probability", StringComparison.Ordinal));
        var ticks = texts.Where(t => t.Value is "0" or "1").ToList();
        Assert.Equal(2, ticks.Count);
        // At least one 12 px line below the ticks' baseline.
        Assert.All(ticks, t => Assert.True(D(caption, "y") - D(t, "y") >= 14, $"caption baseline {D(caption, "y")} vs tick baseline {D(t, "y")}"));
    }

    [Fact]
    public void LongTokens_AreShortenedWithAnEllipsis_AndStillFit()
    {
        string[] tokens = ["[CLS]", new string('W', 80), "東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京東京", "[SEP]"];
        var svg = AttentionSvg.Heatmap(Uniform(4), tokens, "long tokens");
        AssertEveryTextInsideAndApart(svg, "long tokens");
        var labels = XDocument.Parse(svg).Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains(labels, l => l.StartsWith("WWW", StringComparison.Ordinal) && l.EndsWith('…') && l.Length < 80);
        // The full token is kept in the cell tooltips.
        Assert.Contains(XDocument.Parse(svg).Descendants(Svg + "title"), t => t.Value.Contains(new string('W', 80), StringComparison.Ordinal));
    }

    [Fact]
    public void EstimateTextWidth_IsAtLeastDejaVuSansAdvanceWidths()
    {
        // DejaVu Sans advance widths (units per em 2048): "W" 2025, "m" 1995, "a" 1255, "i" 569, "[" 799, "A" 1401, "0" 1303.
        Assert.True(AttentionSvg.EstimateTextWidth("W", 12) >= 2025 / 2048.0 * 12);
        Assert.True(AttentionSvg.EstimateTextWidth("m", 12) >= 1995 / 2048.0 * 12);
        Assert.True(AttentionSvg.EstimateTextWidth("a", 12) >= 1255 / 2048.0 * 12);
        Assert.True(AttentionSvg.EstimateTextWidth("i", 12) >= 569 / 2048.0 * 12);
        Assert.True(AttentionSvg.EstimateTextWidth("[", 12) >= 799 / 2048.0 * 12);
        Assert.True(AttentionSvg.EstimateTextWidth("A0", 12) >= (1401 + 1303) / 2048.0 * 12);
        Assert.Equal(12.0, AttentionSvg.EstimateTextWidth("東", 12), 9);
        Assert.Equal(AttentionSvg.EstimateTextWidth("ab", 14) * 1.12, AttentionSvg.EstimateTextWidth("ab", 14, bold: true), 9);
    }

    // ---- Chromium: real font metrics ----

    /// <summary>
    /// Appended to a page: for every SVG, lists texts and rectangles (cells, colour bar) whose rendered box leaves the SVG's
    /// box, and pairs of texts whose boxes intersect, into body[data-layout] as JSON.
    /// </summary>
    const string LayoutProbe = """
<script>
(function () {
  const problems = [];
  document.querySelectorAll('svg').forEach((svg, s) => {
    const o = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map(t => ({ t: t.textContent, r: t.getBoundingClientRect() }));
    const rects = [...svg.querySelectorAll('rect')].map((e, i) => ({ t: 'rect ' + i, r: e.getBoundingClientRect() }));
    for (const { t, r } of texts.concat(rects))
      if (r.left < o.left - 0.5 || r.right > o.right + 0.5 || r.top < o.top - 0.5 || r.bottom > o.bottom + 0.5)
        problems.push('svg ' + s + ': "' + t + '" [' + [r.left, r.right, r.top, r.bottom].map(Math.round) + '] outside [' + [o.left, o.right, o.top, o.bottom].map(Math.round) + ']');
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i].r, b = texts[j].r;
      const ox = Math.min(a.right, b.right) - Math.max(a.left, b.left), oy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (ox > 0.5 && oy > 0.5) problems.push('svg ' + s + ': "' + texts[i].t + '" overlaps "' + texts[j].t + '"');
    }
  });
  document.body.setAttribute('data-layout', JSON.stringify({ svgs: document.querySelectorAll('svg').length, problems }));
})();
</script>
""";

    internal static (int Svgs, string[] Problems) MeasureInChromium(string html)
    {
        var dir = Directory.CreateTempSubdirectory("sf-layout-").FullName;
        try
        {
            var path = Path.Combine(dir, "page.html");
            File.WriteAllText(path, html.Replace("</body>", LayoutProbe + "</body>", StringComparison.Ordinal));
            var dom = Chromium.DumpDom(path);
            var m = Regex.Match(dom, "data-layout=\"([^\"]*)\"");
            Assert.True(m.Success, "the layout probe did not run");
            using var json = JsonDocument.Parse(System.Net.WebUtility.HtmlDecode(m.Groups[1].Value));
            return (json.RootElement.GetProperty("svgs").GetInt32(),
                json.RootElement.GetProperty("problems").EnumerateArray().Select(p => p.GetString()!).ToArray());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [BrowserFact]
    public void Svg_InChromium_NoTextIsCutOrOverlapped()
    {
        var pages = new List<string>();
        foreach (var n in new[] { 2, 9, 40 })
        {
            pages.Add(AttentionSvg.Heatmap(Uniform(n), Tokens(n), LongTitle));
            pages.Add(AttentionSvg.Heatmap(Uniform(n), Tokens(n), ShortTitle));
        }
        pages.Add(AttentionSvg.Grid([Uniform(3), Uniform(3)], [LongTitle, "head 1"], Tokens(3), columns: 2));
        var html = "<!DOCTYPE html><html><body style=\"margin:0\">" + string.Join("<br>", pages) + "</body></html>";
        var (svgs, problems) = MeasureInChromium(html);
        Assert.Equal(pages.Count, svgs);
        Assert.Empty(problems);
    }

    [BrowserFact]
    public void Html_InChromium_PanelTitlesAndLabelsAreNotCut()
    {
        foreach (var (n, head) in new[] { (2, -1), (30, -2) })
        {
            var tokens = Tokens(n);
            var data = Enumerable.Range(0, 2 * 4 * n * n).Select(i => (float)(i % 11) / 11).ToArray();
            var (svgs, problems) = MeasureInChromium(AttentionHtml.Render(tokens, 2, 4, data, "bert-tiny-uncased-seqcls: attention", 1, head));
            Assert.Equal(head == -2 ? 4 : 1, svgs);
            Assert.Empty(problems);
        }
    }
}
