using System.Globalization;
using System.Text;

namespace Sharpformer.Visualization;

/// <summary>
/// Attention probabilities as SVG heatmaps: one head, a grid of heads, or a head-average, with the tokens on both axes
/// (rows = queries, columns = keys). Pure SVG text; token strings are XML-escaped.
/// </summary>
public static class AttentionSvg
{
    const int Cell = 22, LabelPad = 6, Margin = 8, TitleHeight = 26, FontSize = 12, TitleFontSize = 14;
    // Colour bar: bar, tick labels under its ends, then the caption on a line of its own below the ticks.
    const int BarGap = 12, BarHeight = 10, TickBaseline = 24, CaptionBaseline = 42, LegendHeight = 50;
    const int MaxLabelWidth = 180;
    const string Caption = "attention probability (row = query, column = key)";

    /// <summary>One heatmap of a [query, key] matrix.</summary>
    /// <param name="attention">n×n probabilities in [0, 1].</param>
    /// <param name="tokens">The n tokens, labelling rows (queries) and columns (keys).</param>
    /// <param name="title">Caption drawn above the map.</param>
    /// <remarks>
    /// Colour of a cell: from white (0) to deep blue (1) along t = √a, <c>rgb(255−247t, 255−207t, 255−148t)</c>; the square
    /// root keeps the many small probabilities of a long row visible. The canvas is sized from the estimated text widths
    /// (<see cref="EstimateTextWidth"/>) so that the title and the colour-bar caption are never cut.
    /// </remarks>
    public static string Heatmap(float[,] attention, IReadOnlyList<string> tokens, string title = "attention")
    {
        CheckSquare(attention, tokens);
        return Heatmap(attention, tokens, tokens, title, Caption);
    }

    /// <summary>
    /// One heatmap of a rows × columns matrix with its own labels per axis — e.g. an encoder–decoder's alignment (Bahdanau
    /// et al. 2015, Figure 3): one row per output step, one column per source symbol, each row the step's attention weights.
    /// </summary>
    /// <param name="weights">rows × columns values in [0, 1].</param>
    /// <param name="rowLabels">Labels left of the rows (one per row).</param>
    /// <param name="columnLabels">Labels above the columns (one per column).</param>
    /// <param name="title">Caption drawn above the map.</param>
    /// <param name="caption">Text under the colour bar saying what rows, columns and colours are.</param>
    /// <remarks>Same colours and sizing rules as the square <see cref="Heatmap(float[,], IReadOnlyList{string}, string)"/>.</remarks>
    public static string Heatmap(float[,] weights, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, string title, string caption)
    {
        ArgumentNullException.ThrowIfNull(title);
        ArgumentNullException.ThrowIfNull(caption);
        var (rows, cols) = CheckShape(weights, rowLabels, columnLabels);
        int rowLabel = LabelWidth(rowLabels), colLabel = LabelWidth(columnLabels);
        int bar = BarWidth(cols);
        int w = Math.Max(TileWidth(rowLabel, cols, [title]), LegendWidth(rowLabel, bar, caption));
        int gridBottom = TitleHeight + colLabel + rows * Cell;
        var sb = Open(w, gridBottom + LegendHeight + Margin);
        Map(sb, weights, rowLabels, columnLabels, 0, 0, title, rowLabel, colLabel);
        Legend(sb, Margin + rowLabel, gridBottom + BarGap, bar, caption);
        return Close(sb);
    }

    /// <summary>Several heatmaps side by side (e.g. every head of one layer), wrapped into rows of <paramref name="columns"/>.</summary>
    public static string Grid(IReadOnlyList<float[,]> maps, IReadOnlyList<string> titles, IReadOnlyList<string> tokens, int columns = 4)
    {
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(titles);
        if (maps.Count == 0) throw new ArgumentException("no attention maps to draw.", nameof(maps));
        if (titles.Count != maps.Count) throw new ArgumentException($"{maps.Count} maps but {titles.Count} titles.", nameof(titles));
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "columns must be ≥ 1.");
        int n = 0;
        foreach (var m in maps) n = CheckSquare(m, tokens);
        int label = LabelWidth(tokens);
        int bar = BarWidth(n);
        // Every tile is as wide as the widest title needs, so the columns stay aligned.
        int tileW = TileWidth(label, n, titles), tileH = TitleHeight + label + n * Cell + LabelPad;
        int cols = Math.Min(columns, maps.Count), rows = (maps.Count + cols - 1) / cols;
        var sb = Open(Math.Max(cols * tileW, LegendWidth(label, bar, Caption)), rows * tileH + LegendHeight + Margin);
        for (int i = 0; i < maps.Count; i++)
            Map(sb, maps[i], tokens, tokens, (i % cols) * tileW, (i / cols) * tileH, titles[i], label, label);
        Legend(sb, Margin + label, rows * tileH + BarGap - LabelPad, bar, Caption);
        return Close(sb);
    }

    /// <summary>
    /// A deliberately generous estimate of the rendered width, in px, of <paramref name="text"/> in DejaVu Sans / Arial
    /// (the fonts the SVG asks for), used to size the canvas: it is better to leave some white space than to cut a title.
    /// </summary>
    /// <remarks>
    /// Per character, in em: 1.0 for wide glyphs (everything from U+1100 on: CJK, full-width forms, symbols, emoji) and for
    /// M, W, m, w, @, %, æ, œ; 0.85 for other capitals and digits; 0.5 for narrow glyphs (i l j t f r . , : ; ' ! | ( ) [ ] and space);
    /// 0.65 otherwise. Bold is 12 % wider. Each class is at or above DejaVu Sans' widest glyph in it, which is wider than Arial.
    /// </remarks>
    public static double EstimateTextWidth(string text, double fontSize, bool bold = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        double em = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { em += 1.0; i++; continue; }
            em += c switch
            {
                >= '\u1100' => 1.0,   // CJK, Hangul, full-width forms, symbols; also … — → (general punctuation is narrower, so safe)
                'M' or 'W' or 'm' or 'w' or '@' or '%' or 'æ' or 'œ' or 'Æ' or 'Œ' => 1.0,
                'i' or 'l' or 'j' or 't' or 'f' or 'r' or '.' or ',' or ':' or ';' or '\'' or '!' or '|' or '(' or ')' or '[' or ']' or ' ' => 0.5,
                _ when char.IsUpper(c) || char.IsDigit(c) => 0.85,
                _ => 0.65,
            };
        }
        return em * fontSize * (bold ? 1.12 : 1.0);
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

    static (int Rows, int Columns) CheckShape(float[,] m, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(rowLabels);
        ArgumentNullException.ThrowIfNull(columnLabels);
        int rows = m.GetLength(0), cols = m.GetLength(1);
        if (rowLabels.Count != rows || columnLabels.Count != cols)
            throw new ArgumentException($"the matrix is {rows}×{cols} but there are {rowLabels.Count} row and {columnLabels.Count} column labels.", nameof(m));
        if (rows == 0 || cols == 0) throw new ArgumentException($"nothing to draw: the matrix is {rows}×{cols}.", nameof(m));
        return (rows, cols);
    }

    // Room for the longest (shortened) token plus padding: query labels sit left of the rows, key labels above the columns.
    static int LabelWidth(IReadOnlyList<string> tokens) =>
        Math.Max(30, (int)Math.Ceiling(tokens.Max(t => EstimateTextWidth(Shown(t), FontSize))) + 2 * LabelPad);

    static int TileWidth(int label, int n, IReadOnlyList<string> titles)
    {
        int title = (int)Math.Ceiling(titles.Max(t => EstimateTextWidth(t, TitleFontSize, bold: true)));
        return 2 * Margin + Math.Max(label + n * Cell, title);
    }

    static int BarWidth(int n) => Math.Max(n * Cell, 120);

    static int LegendWidth(int label, int bar, string caption) =>
        Margin + label + Math.Max(bar, (int)Math.Ceiling(EstimateTextWidth(caption, FontSize))) + Margin;

    /// <summary>The token as drawn: cut with "…" where it would need more than <see cref="MaxLabelWidth"/> px.</summary>
    internal static string Shown(string token)
    {
        if (EstimateTextWidth(token, FontSize) <= MaxLabelWidth - 2 * LabelPad) return token;
        int len = token.Length;
        while (len > 1 && EstimateTextWidth(token[..len] + "…", FontSize) > MaxLabelWidth - 2 * LabelPad) len--;
        if (char.IsHighSurrogate(token[len - 1])) len--;   // never split a surrogate pair
        return token[..len] + "…";
    }

    static StringBuilder Open(int w, int h)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n");
        return sb;
    }

    static string Close(StringBuilder sb) => sb.Append("</svg>\n").ToString();

    // Row labels sit right-aligned left of the rows (rowLabel px wide), column labels rotated above the columns (colLabel px high).
    static void Map(StringBuilder sb, float[,] a, IReadOnlyList<string> rowTokens, IReadOnlyList<string> colTokens, int x0, int y0, string title, int rowLabel, int colLabel)
    {
        int rows = rowTokens.Count, cols = colTokens.Count;
        int gx = x0 + Margin + rowLabel, gy = y0 + TitleHeight + colLabel;
        var ic = CultureInfo.InvariantCulture;
        // The title starts at the tile's margin, not over the grid, so a long title uses the label column's width too.
        sb.Append(ic, $"<g><text x=\"{x0 + Margin}\" y=\"{y0 + 18}\" font-weight=\"bold\" font-size=\"{TitleFontSize}\">{Escape(title)}</text>\n");
        for (int i = 0; i < rows; i++)
            sb.Append(ic, $"<text x=\"{gx - 4}\" y=\"{gy + i * Cell + Cell / 2 + 4}\" text-anchor=\"end\">{Escape(Shown(rowTokens[i]))}</text>\n");
        for (int i = 0; i < cols; i++)
        {
            int cx = gx + i * Cell + Cell / 2 + 4;
            sb.Append(ic, $"<text x=\"{cx}\" y=\"{gy - 4}\" transform=\"rotate(-90 {cx} {gy - 4})\">{Escape(Shown(colTokens[i]))}</text>\n");
        }
        for (int q = 0; q < rows; q++)
            for (int k = 0; k < cols; k++)
            {
                float v = a[q, k];
                sb.Append(ic, $"<rect x=\"{gx + k * Cell}\" y=\"{gy + q * Cell}\" width=\"{Cell}\" height=\"{Cell}\" fill=\"{Color(v)}\"><title>{Escape(rowTokens[q])} → {Escape(colTokens[k])}: {v.ToString("0.000", ic)}</title></rect>\n");
            }
        sb.Append(ic, $"<rect x=\"{gx}\" y=\"{gy}\" width=\"{cols * Cell}\" height=\"{rows * Cell}\" fill=\"none\" stroke=\"#888888\"/></g>\n");
    }

    static void Legend(StringBuilder sb, int x, int y, int width, string caption)
    {
        var ic = CultureInfo.InvariantCulture;
        const int steps = 10;
        for (int i = 0; i < steps; i++)
            sb.Append(ic, $"<rect x=\"{x + i * width / steps}\" y=\"{y}\" width=\"{width / steps + 1}\" height=\"{BarHeight}\" fill=\"{Color((i + 0.5f) / steps)}\"/>\n");
        sb.Append(ic, $"<text x=\"{x}\" y=\"{y + TickBaseline}\">0</text><text x=\"{x + width}\" y=\"{y + TickBaseline}\" text-anchor=\"end\">1</text>\n");
        // Below the tick labels rather than between them: between "0" and "1" it collides with them on short bars.
        sb.Append(ic, $"<text x=\"{x}\" y=\"{y + CaptionBaseline}\">{Escape(caption)}</text>\n");
    }
}
