using System.Text;
using System.Text.Json;

namespace Sharpformer.Visualization;

/// <summary>
/// A self-contained HTML page (no external files or network) showing attention heatmaps with a layer / head switcher:
/// the probabilities are embedded as JSON and drawn as SVG by a small inline script.
/// </summary>
public static class AttentionHtml
{
    /// <summary>Builds the page.</summary>
    /// <param name="tokens">The n tokens.</param>
    /// <param name="layers">Number of layers L.</param>
    /// <param name="heads">Heads per layer H.</param>
    /// <param name="data">[L][H][n][n] probabilities, row-major.</param>
    /// <param name="title">Page heading (escaped).</param>
    /// <param name="initialLayer">Layer shown first.</param>
    /// <param name="initialHead">Head shown first; -1 = the head-average; -2 = all heads.</param>
    public static string Render(IReadOnlyList<string> tokens, int layers, int heads, float[] data, string title = "Attention",
        int initialLayer = 0, int initialHead = -1)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        return Render(tokens, tokens, layers, heads, data, title, initialLayer, initialHead, SelfAttentionNote);
    }

    const string SelfAttentionNote = "Rows are queries, columns are keys: row q is the softmax distribution of query q over the keys.";

    /// <summary>
    /// Builds the page for rows × columns maps with their own labels per axis (e.g. an encoder–decoder's alignment: a row per
    /// output step, a column per source symbol). With one layer and one head the switcher is hidden.
    /// </summary>
    /// <param name="rowLabels">The r row labels.</param>
    /// <param name="columnLabels">The c column labels.</param>
    /// <param name="layers">Number of layers L.</param>
    /// <param name="heads">Heads per layer H.</param>
    /// <param name="data">[L][H][r][c] weights, row-major.</param>
    /// <param name="title">Page heading (escaped); also the panel title when there is a single map.</param>
    /// <param name="initialLayer">Layer shown first.</param>
    /// <param name="initialHead">Head shown first; -1 = the head-average; -2 = all heads.</param>
    /// <param name="note">What rows and columns are, printed under the maps.</param>
    public static string Render(IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, int layers, int heads, float[] data,
        string title, int initialLayer, int initialHead, string note)
    {
        ArgumentNullException.ThrowIfNull(rowLabels);
        ArgumentNullException.ThrowIfNull(columnLabels);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(note);
        int r = rowLabels.Count, c = columnLabels.Count;
        if (r == 0 || c == 0 || layers < 1 || heads < 1) throw new ArgumentException($"need labels, layers and heads; got {r}×{c}, L={layers}, H={heads}.");
        if (data.Length != layers * heads * r * c)
            throw new ArgumentException($"data has {data.Length} values; expected L×H×rows×columns = {layers}×{heads}×{r}×{c} = {layers * heads * r * c}.", nameof(data));
        if ((uint)initialLayer >= (uint)layers) throw new ArgumentOutOfRangeException(nameof(initialLayer), initialLayer, $"layer must be in [0, {layers}).");
        if (initialHead < -2 || initialHead >= heads) throw new ArgumentOutOfRangeException(nameof(initialHead), initialHead, $"head must be in [0, {heads}), -1 (average) or -2 (all).");

        var rounded = new float[data.Length];
        for (int i = 0; i < data.Length; i++) rounded[i] = MathF.Round(data[i], 5);
        // System.Text.Json's default encoder escapes <, >, & and quotes, so token text cannot close the <script> element.
        var json = JsonSerializer.Serialize(new { rows = rowLabels, cols = columnLabels, layers, heads, data = rounded, layer = initialLayer, head = initialHead, title });
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>").Append(AttentionSvg.Escape(title)).Append("</title>\n");
        sb.Append(Style);
        sb.Append("</head><body>\n<h1>").Append(AttentionSvg.Escape(title)).Append("</h1>\n");
        sb.Append("<div class=\"controls\"><label>Layer <select id=\"layer\"></select></label> ");
        sb.Append("<label>Head <select id=\"head\"></select></label> <span id=\"hover\"></span></div>\n");
        sb.Append("<div id=\"maps\"></div>\n");
        sb.Append("<p class=\"note\">").Append(AttentionSvg.Escape(note)).Append(" Colour: white = 0 to dark blue = 1 on a square-root scale.</p>\n");
        sb.Append("<script id=\"attention-data\" type=\"application/json\">").Append(json).Append("</script>\n");
        sb.Append(Script);
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    const string Style = """
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 10px 0; overflow-wrap: anywhere; }
.controls { margin-bottom: 10px; font-size: 14px; }
.controls select { font-size: 14px; margin-right: 12px; }
#hover { color: #555; font-family: monospace; }
#maps svg { margin: 0 12px 12px 0; vertical-align: top; }
.note { color: #666; font-size: 12px; }
</style>

""";

    // Same colour ramp as AttentionSvg.Color.
    const string Script = """
<script>
(function () {
  const d = JSON.parse(document.getElementById('attention-data').textContent);
  const nr = d.rows.length, nc = d.cols.length, cell = Math.max(nr, nc) > 40 ? 12 : 22;
  const single = d.layers * d.heads === 1;
  const layerSel = document.getElementById('layer'), headSel = document.getElementById('head');
  for (let l = 0; l < d.layers; l++) layerSel.add(new Option('layer ' + l, l));
  headSel.add(new Option('average of heads', -1));
  headSel.add(new Option('all heads', -2));
  for (let h = 0; h < d.heads; h++) headSel.add(new Option('head ' + h, h));
  layerSel.value = d.layer; headSel.value = d.head;
  if (single) { layerSel.parentNode.hidden = true; headSel.parentNode.hidden = true; }
  const NS = 'http://www.w3.org/2000/svg';
  function color(a) {
    a = Math.sqrt(Math.max(0, Math.min(1, a)));
    const c = (lo) => Math.round(255 - (255 - lo) * a).toString(16).padStart(2, '0');
    return '#' + c(8) + c(48) + c(107);
  }
  function matrix(layer, head) {
    const m = new Float64Array(nr * nc);
    const hs = head < 0 ? [...Array(d.heads).keys()] : [head];
    for (const h of hs) {
      const o = (layer * d.heads + h) * nr * nc;
      for (let i = 0; i < nr * nc; i++) m[i] += d.data[o + i] / hs.length;
    }
    return m;
  }
  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Real text widths in the page's font (canvas text metrics), so labels and titles size their panel instead of being cut.
  const measure = document.createElement('canvas').getContext('2d');
  function textWidth(text, font) {
    measure.font = (font || '12px') + ' "DejaVu Sans", Arial, sans-serif';
    return Math.ceil(measure.measureText(text).width);
  }
  // Row labels need their width left of the grid, column labels (rotated) their width above it.
  const rowLabel = Math.max(30, ...d.rows.map(t => textWidth(t))) + 12;
  const colLabel = Math.max(30, ...d.cols.map(t => textWidth(t))) + 12;
  const margin = 8;
  function draw(m, title) {
    const titleW = textWidth(title, 'bold 14px');
    const w = 2 * margin + Math.max(rowLabel + nc * cell, titleW), h = 26 + colLabel + nr * cell + 8;
    const svg = el('svg', { width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, 'font-size': 12, 'font-family': 'DejaVu Sans, Arial, sans-serif' });
    svg.appendChild(el('text', { x: margin, y: 18, 'font-weight': 'bold', 'font-size': 14 }, title));
    const gx = margin + rowLabel, gy = 26 + colLabel;
    d.rows.forEach((t, i) => svg.appendChild(el('text', { x: gx - 4, y: gy + i * cell + cell / 2 + 4, 'text-anchor': 'end' }, t)));
    d.cols.forEach((t, i) => {
      const cx = gx + i * cell + cell / 2 + 4;
      svg.appendChild(el('text', { x: cx, y: gy - 4, transform: 'rotate(-90 ' + cx + ' ' + (gy - 4) + ')' }, t));
    });
    for (let q = 0; q < nr; q++) for (let k = 0; k < nc; k++) {
      const v = m[q * nc + k];
      const r = el('rect', { x: gx + k * cell, y: gy + q * cell, width: cell, height: cell, fill: color(v) });
      r.addEventListener('mouseenter', () => {
        document.getElementById('hover').textContent = d.rows[q] + ' \u2192 ' + d.cols[k] + ': ' + v.toFixed(3);
      });
      svg.appendChild(r);
    }
    svg.appendChild(el('rect', { x: gx, y: gy, width: nc * cell, height: nr * cell, fill: 'none', stroke: '#888' }));
    return svg;
  }
  function render() {
    const layer = +layerSel.value, head = +headSel.value, maps = document.getElementById('maps');
    maps.replaceChildren();
    if (single) {
      maps.appendChild(draw(matrix(0, 0), d.title));
    } else if (head === -2) {
      for (let h = 0; h < d.heads; h++) maps.appendChild(draw(matrix(layer, h), 'layer ' + layer + ', head ' + h));
    } else {
      maps.appendChild(draw(matrix(layer, head), 'layer ' + layer + ', ' + (head < 0 ? 'average of ' + d.heads + ' heads' : 'head ' + head)));
    }
  }
  layerSel.addEventListener('change', render);
  headSel.addEventListener('change', render);
  render();
})();
</script>

""";
}

/// <summary>Writes output files atomically: a temp file beside the target, then a rename.</summary>
public static class VisualizationFile
{
    public static void WriteAllText(string path, string content)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"cannot write {path}: folder {dir} does not exist.");
        var tmp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        File.WriteAllText(tmp, content, new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }
}
