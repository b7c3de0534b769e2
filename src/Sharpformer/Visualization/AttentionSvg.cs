using System.Globalization;
using System.Text;

namespace Sharpformer.Visualization;

/// <summary>
/// Attention probabilities as SVG heatmaps: one head, a grid of heads, or a head-average, with the tokens on both axes
/// (rows = queries, columns = keys). Pure SVG text; token strings are XML-escaped.
/// </summary>
public static class AttentionSvg
{
    const int Cell = 22, LabelPad = 6, TitleHeight = 26, LegendHeight = 40;

    /// <summary>One heatmap of a [query, key] matrix.</summary>
    /// <param name="attention">n×n probabilities in [0, 1].</param>
    /// <param name="tokens">The n tokens, labelling rows (queries) and columns (keys).</param>
    /// <param name="title">Caption drawn above the map.</param>
    /// <remarks>
    /// Colour of a cell: from white (0) to deep blue (1) along t = √a, <c>rgb(255−247t, 255−207t, 255−148t)</c>; the square
    /// root keeps the many small probabilities of a long row visible.
    /// </remarks>
    public static string Heatmap(float[,] attention, IReadOnlyList<string> tokens, string title = "attention")
    {
        int n = CheckSquare(attention, tokens);
        int label = LabelWidth(tokens);
        int w = label + n * Cell + 2 * LabelPad, h = TitleHeight + label + n * Cell + LegendHeight + LabelPad;
        var sb = Open(w, h);
        Map(sb, attention, tokens, 0, 0, title, label);
        Legend(sb, label, TitleHeight + label + n * Cell + 12, Math.Max(n * Cell, 120));
        return Close(sb);
    }

    /// <summary>Several heatmaps side by side (e.g. every head of one layer), wrapped into rows of <paramref name="columns"/>.</summary>
    public static string Grid(IReadOnlyList<float[,]> maps, IReadOnlyList<string> titles, IReadOnlyList<string> tokens, int columns = 4)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.Count == 0) throw new ArgumentException("no attention maps to draw.", nameof(maps));
        if (titles.Count != maps.Count) throw new ArgumentException($"{maps.Count} maps but {titles.Count} titles.", nameof(titles));
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "columns must be ≥ 1.");
        int n = 0;
        foreach (var m in maps) n = CheckSquare(m, tokens);
        int label = LabelWidth(tokens);
        int tileW = label + n * Cell + 2 * LabelPad, tileH = TitleHeight + label + n * Cell + LabelPad;
        int cols = Math.Min(columns, maps.Count), rows = (maps.Count + cols - 1) / cols;
        var sb = Open(cols * tileW, rows * tileH + LegendHeight);
        for (int i = 0; i < maps.Count; i++)
            Map(sb, maps[i], tokens, (i % cols) * tileW, (i / cols) * tileH, titles[i], label);
        Legend(sb, label, rows * tileH + 8, Math.Max(n * Cell, 120));
        return Close(sb);
    }

    /// <summary>Escapes text for XML content and attribute values; drops characters XML 1.0 cannot carry.</summary>
    public static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&apos;"); break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { sb.Append(c).Append(text[++i]); }
                    else if (char.IsSurrogate(c) || c == '\uFFFE' || c == '\uFFFF' || (c < 0x20 && c != '\t' && c != '\n' && c != '\r')) sb.Append('\uFFFD');
                    else sb.Append(c);
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>The fill colour of probability <paramref name="a"/> (clamped to [0, 1]).</summary>
    public static string Color(float a)
    {
        if (float.IsNaN(a)) return "#ff00ff";
        a = MathF.Sqrt(Math.Clamp(a, 0f, 1f));
        int r = (int)MathF.Round(255 - (255 - 8) * a), g = (int)MathF.Round(255 - (255 - 48) * a), b = (int)MathF.Round(255 - (255 - 107) * a);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    static int CheckSquare(float[,] m, IReadOnlyList<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(tokens);
        int n = m.GetLength(0);
        if (m.GetLength(1) != n) throw new ArgumentException($"attention must be square; got {n}×{m.GetLength(1)}.", nameof(m));
        if (tokens.Count != n) throw new ArgumentException($"attention is {n}×{n} but there are {tokens.Count} tokens.", nameof(tokens));
        if (n == 0) throw new ArgumentException("attention over zero tokens.", nameof(m));
        return n;
    }

    // Monospace-ish estimate of the label width: 7 px per char at font-size 12, capped.
    static int LabelWidth(IReadOnlyList<string> tokens) => Math.Clamp(tokens.Max(t => Shown(t).Length) * 7 + 2 * LabelPad, 30, 180);

    static string Shown(string token) => token.Length <= 24 ? token : token[..23] + "…";

    static StringBuilder Open(int w, int h)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n");
        return sb;
    }

    static string Close(StringBuilder sb) => sb.Append("</svg>\n").ToString();

    static void Map(StringBuilder sb, float[,] a, IReadOnlyList<string> tokens, int x0, int y0, string title, int label)
    {
        int n = tokens.Count;
        int gx = x0 + label + LabelPad, gy = y0 + TitleHeight + label;
        var ic = CultureInfo.InvariantCulture;
        sb.Append(ic, $"<g><text x=\"{gx}\" y=\"{y0 + 17}\" font-weight=\"bold\" font-size=\"14\">{Escape(title)}</text>\n");
        for (int i = 0; i < n; i++)
        {
            var t = Escape(Shown(tokens[i]));
            // Query labels, right-aligned left of the rows.
            sb.Append(ic, $"<text x=\"{gx - 4}\" y=\"{gy + i * Cell + Cell / 2 + 4}\" text-anchor=\"end\">{t}</text>\n");
            // Key labels, rotated above the columns.
            int cx = gx + i * Cell + Cell / 2 + 4;
            sb.Append(ic, $"<text x=\"{cx}\" y=\"{gy - 4}\" transform=\"rotate(-90 {cx} {gy - 4})\">{t}</text>\n");
        }
        for (int q = 0; q < n; q++)
            for (int k = 0; k < n; k++)
            {
                float v = a[q, k];
                sb.Append(ic, $"<rect x=\"{gx + k * Cell}\" y=\"{gy + q * Cell}\" width=\"{Cell}\" height=\"{Cell}\" fill=\"{Color(v)}\"><title>{Escape(tokens[q])} → {Escape(tokens[k])}: {v.ToString("0.000", ic)}</title></rect>\n");
            }
        sb.Append(ic, $"<rect x=\"{gx}\" y=\"{gy}\" width=\"{n * Cell}\" height=\"{n * Cell}\" fill=\"none\" stroke=\"#888888\"/></g>\n");
    }

    static void Legend(StringBuilder sb, int x, int y, int width)
    {
        var ic = CultureInfo.InvariantCulture;
        const int steps = 10;
        for (int i = 0; i < steps; i++)
            sb.Append(ic, $"<rect x=\"{x + i * width / steps}\" y=\"{y}\" width=\"{width / steps + 1}\" height=\"10\" fill=\"{Color((i + 0.5f) / steps)}\"/>\n");
        sb.Append(ic, $"<text x=\"{x}\" y=\"{y + 24}\">0</text><text x=\"{x + width}\" y=\"{y + 24}\" text-anchor=\"end\">1</text>\n");
        sb.Append(ic, $"<text x=\"{x + width / 2}\" y=\"{y + 24}\" text-anchor=\"middle\">attention probability (row = query, column = key)</text>\n");
    }
}
