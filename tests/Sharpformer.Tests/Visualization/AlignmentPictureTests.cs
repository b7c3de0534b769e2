using System.Text.RegularExpressions;
using System.Xml.Linq;
using Sharpformer.Visualization;

namespace Sharpformer.Tests.Visualization;

/// <summary>
/// Rows × columns heatmaps with a label set per axis — the encoder–decoder alignment of Bahdanau et al.'s Figure 3 (output
/// phonemes × input letters): cells, labels and layout, in the SVG text and in Chromium.
/// </summary>
public sealed class AlignmentPictureTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    static readonly string[] Letters = ["p", "h", "o", "n", "e", "m", "e"];
    static readonly string[] Phonemes = ["F", "OW", "N", "IY", "M", "</s>"];
    const string Caption = "attention weight (row = output phoneme, column = letter)";

    static float[,] Weights(int rows, int cols)
    {
        var m = new float[rows, cols];
        for (int t = 0; t < rows; t++) for (int j = 0; j < cols; j++) m[t, j] = (t * 5 + j * 3) % (cols + 1) / (float)(cols + 1);
        return m;
    }

    [Fact]
    public void RectangularHeatmap_HasOneCellPerStepAndLetter_ColouredByWeight_AndEachAxisItsOwnLabels()
    {
        var m = Weights(Phonemes.Length, Letters.Length);
        var svg = XDocument.Parse(AttentionSvg.Heatmap(m, Phonemes, Letters, "g2p: phoneme", Caption));
        var cells = svg.Descendants(Svg + "rect").Where(r => r.Element(Svg + "title") != null).ToList();
        Assert.Equal(Phonemes.Length * Letters.Length, cells.Count);
        for (int t = 0; t < Phonemes.Length; t++)
            for (int j = 0; j < Letters.Length; j++)
            {
                var cell = cells[t * Letters.Length + j];
                Assert.Equal(AttentionSvg.Color(m[t, j]), cell.Attribute("fill")!.Value);
                Assert.StartsWith($"{Phonemes[t]} → {Letters[j]}: ", cell.Element(Svg + "title")!.Value);
            }
        var texts = svg.Descendants(Svg + "text").ToList();
        // Phonemes label the rows (right-aligned, unrotated), letters the columns (rotated), each once per occurrence.
        foreach (var p in Phonemes) Assert.Single(texts, t => t.Value == p && t.Attribute("transform") is null);
        Assert.Equal(2, texts.Count(t => t.Value == "e" && t.Attribute("transform") is not null));
        Assert.Contains(texts, t => t.Value == Caption);
        // The grid is as wide as the letters and as tall as the output steps.
        var frame = svg.Descendants(Svg + "rect").Single(r => r.Attribute("fill")?.Value == "none");
        Assert.Equal((22 * Letters.Length).ToString(), frame.Attribute("width")!.Value);
        Assert.Equal((22 * Phonemes.Length).ToString(), frame.Attribute("height")!.Value);
    }

    public static TheoryData<int, int> Shapes() => new() { { 1, 1 }, { 1, 20 }, { 20, 1 }, { 6, 7 }, { 13, 34 }, { 40, 3 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RectangularHeatmap_EveryTextLiesInsideTheCanvas_AndNoTwoTextsOverlap(int rows, int cols)
    {
        var rowLabels = Enumerable.Range(0, rows).Select(i => i % 3 == 0 ? "</s>" : Phonemes[i % 5]).ToArray();
        var colLabels = AttentionLayoutTests.Tokens(cols);
        AttentionLayoutTests.AssertEveryTextInsideAndApart(AttentionSvg.Heatmap(Weights(rows, cols), rowLabels, colLabels, "g2p: a title", Caption), $"{rows}×{cols}");
    }

    [Fact]
    public void RectangularShapes_AreChecked()
    {
        Assert.Throws<ArgumentException>(() => AttentionSvg.Heatmap(new float[2, 3], ["a", "b"], ["x", "y"], "t", "c"));
        Assert.Throws<ArgumentException>(() => AttentionSvg.Heatmap(new float[0, 3], [], ["x", "y", "z"], "t", "c"));
        Assert.Throws<ArgumentException>(() => AttentionHtml.Render(["a", "b"], ["x", "y", "z"], 1, 1, new float[5], "t", 0, 0, "n"));
    }

    [BrowserFact]
    public void AlignmentSvgAndHtml_InChromium_NothingIsCutOrOverlapped_AndEveryCellIsDrawn()
    {
        var m = Weights(Phonemes.Length, Letters.Length);
        var svg = AttentionSvg.Heatmap(m, Phonemes, Letters, "g2p-bahdanau: phoneme → F OW N IY M", Caption);
        var (svgs, problems) = AttentionLayoutTests.MeasureInChromium("<!DOCTYPE html><html><body style=\"margin:0\">" + svg + "</body></html>");
        Assert.Equal(1, svgs);
        Assert.Empty(problems);

        var html = AttentionHtml.Render(Phonemes, Letters, 1, 1, m.Cast<float>().ToArray(), "g2p-bahdanau: phoneme → F OW N IY M", 0, 0, "rows are phonemes");
        (svgs, problems) = AttentionLayoutTests.MeasureInChromium(html);
        Assert.Equal(1, svgs);
        Assert.Empty(problems);
        var dir = Directory.CreateTempSubdirectory("sf-align-").FullName;
        try
        {
            var path = Path.Combine(dir, "alignment.html");
            VisualizationFile.WriteAllText(path, html);
            var dom = Chromium.DumpDom(path);
            // The cells plus the frame; the layer/head switcher is hidden for a single map.
            Assert.Equal(Phonemes.Length * Letters.Length + 1, Regex.Matches(dom, "<rect ").Count);
            Assert.Matches("<label hidden(=\"\")?>Layer", dom);
            var img = PngImage.Read(Chromium.Screenshot(path, Path.Combine(dir, "alignment.png"), 800, 600));
            Assert.True(img.FractionMatching((r, g, b) => b - r >= 15) > 0.02, "the heatmap's blue is not on screen");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
