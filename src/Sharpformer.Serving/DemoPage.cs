using System.Net;

namespace Sharpformer.Serving;

/// <summary>
/// The page served at <c>GET /</c>: type a text, see the task's result (entities highlighted in the text, label scores,
/// fill-mask candidates or the embedding) and the attention heatmap. <c>?demo=TEXT</c> fills in and submits TEXT at load.
/// </summary>
internal static class DemoPage
{
    public static string Html(ServingTask task, string model)
    {
        if (task == ServingTask.Generate) return CompletionPage.Html(model);
        string taskName = SharpformerServer.TaskName(task);
        string example = task switch
        {
            ServingTask.Ner => "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
            ServingTask.FillMask => "The capital of France is [MASK].",
            ServingTask.Classify => "Stocks rallied after the central bank cut interest rates.",
            ServingTask.G2P => "phoneme",
            _ => "Transformers turn text into vectors.",
        };
        return Template
            .Replace("{{MODEL}}", WebUtility.HtmlEncode(model), StringComparison.Ordinal)
            .Replace("{{TASK}}", taskName, StringComparison.Ordinal)
            .Replace("{{EXAMPLE}}", WebUtility.HtmlEncode(example), StringComparison.Ordinal);
    }

    const string Template = """
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sharpformer · {{TASK}}</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 20px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px 0; } .sub { color: #666; margin-bottom: 12px; }
textarea { width: 100%; height: 70px; font-size: 15px; padding: 6px; box-sizing: border-box; }
button { font-size: 15px; padding: 6px 18px; margin: 8px 0; }
#result { font-size: 16px; line-height: 2.1; margin: 10px 0; }
mark { padding: 2px 4px; border-radius: 4px; }
mark small { font-size: 10px; font-weight: bold; margin-left: 3px; color: #333; }
.PER { background: #ffd6a5; } .ORG { background: #caffbf; } .LOC { background: #9bf6ff; } .MISC { background: #ffc6ff; } .other { background: #e0e0e0; }
.bar { display: flex; align-items: center; gap: 8px; line-height: 1.6; } .bar span.l { width: 110px; }
.bar div { background: #4a6fa5; height: 14px; } .err { color: #b00020; }
#attn-controls { margin-top: 12px; } #attn-controls select { margin-right: 10px; }
#status { color: #888; font-size: 12px; }
</style></head>
<body>
<h1>Sharpformer — {{TASK}}</h1>
<div class="sub">model <b>{{MODEL}}</b> · POST /v1/{{TASK}} · <a href="/metrics">metrics</a> · <a href="/health">health</a></div>
<textarea id="text">{{EXAMPLE}}</textarea><br>
<button id="run">Run</button> <span id="status"></span>
<div id="result"></div>
<div id="attn-controls" hidden>Attention: <select id="layer"></select><select id="head"></select></div>
<div id="attn"></div>
<script>
const TASK = "{{TASK}}";
const $ = (id) => document.getElementById(id);
function esc(s) { const d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
async function post(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
  return j;
}
function showEntities(text, ents) {
  let html = '', pos = 0;
  for (const e of ents) {
    const group = e.entity_group || (e.entity || '').replace(/^[BI]-/, '');
    html += esc(text.slice(pos, e.start));
    const cls = ['PER', 'ORG', 'LOC', 'MISC'].includes(group) ? group : 'other';
    html += '<mark class="' + cls + '" title="' + e.score.toFixed(3) + '">' + esc(text.slice(e.start, e.end)) + '<small>' + esc(group) + '</small></mark>';
    pos = e.end;
  }
  html += esc(text.slice(pos));
  $('result').innerHTML = html + '<div id="count">' + ents.length + ' entities</div>';
}
function showBars(rows, label, score) {
  $('result').innerHTML = rows.map(r => '<div class="bar"><span class="l">' + esc(label(r)) + '</span><div style="width:' +
    Math.round(400 * Math.max(0, Math.min(1, score(r)))) + 'px"></div><span>' + score(r).toFixed(4) + '</span></div>').join('');
}
let attn = null;
function color(a) {
  a = Math.sqrt(Math.max(0, Math.min(1, a)));
  const c = (lo) => Math.round(255 - (255 - lo) * a).toString(16).padStart(2, '0');
  return '#' + c(8) + c(48) + c(107);
}
// attn: { rows, cols, layers, heads, data } — self-attention has rows = cols = tokens; a G2P alignment has phonemes × letters.
function drawAttention() {
  const d = attn, nr = d.rows.length, nc = d.cols.length, layer = +$('layer').value, head = +$('head').value, cell = Math.max(nr, nc) > 40 ? 10 : 20;
  const hs = head < 0 ? [...Array(d.heads).keys()] : [head];
  const width = (ts) => Math.min(160, 7 * Math.max(...ts.map(t => t.length)) + 12);
  const left = width(d.rows), top = width(d.cols);
  const NS = 'http://www.w3.org/2000/svg';
  const el = (name, attrs, text) => { const e = document.createElementNS(NS, name); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };
  const svg = el('svg', { width: left + nc * cell + 10, height: top + nr * cell + 10, 'font-size': 11 });
  d.rows.forEach((t, i) => svg.appendChild(el('text', { x: left - 4, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'end' }, t)));
  d.cols.forEach((t, i) => {
    const cx = left + i * cell + cell / 2 + 4;
    svg.appendChild(el('text', { x: cx, y: top - 4, transform: 'rotate(-90 ' + cx + ' ' + (top - 4) + ')' }, t));
  });
  for (let q = 0; q < nr; q++) for (let k = 0; k < nc; k++) {
    let v = 0;
    for (const h of hs) v += d.data[((layer * d.heads + h) * nr + q) * nc + k] / hs.length;
    svg.appendChild(el('rect', { x: left + k * cell, y: top + q * cell, width: cell, height: cell, fill: color(v) }));
  }
  $('attn').replaceChildren(svg);
}
async function run() {
  const text = $('text').value;
  $('status').textContent = 'running…'; $('result').textContent = '';
  try {
    if (TASK === 'ner') showEntities(text, (await post('/v1/ner', { inputs: text })).results[0]);
    else if (TASK === 'classify') showBars((await post('/v1/classify', { inputs: text, top_k: 100 })).results[0], r => r.label, r => r.score);
    else if (TASK === 'fill-mask') {
      const masks = (await post('/v1/fill-mask', { inputs: text })).results[0];
      showBars(masks[0], r => r.token_str, r => r.score);
      $('result').innerHTML += masks.map((m, i) => '<div>mask ' + (i + 1) + ': ' + m.map(c => '<b>' + esc(c.token_str) + '</b>').join(', ') + '</div>').join('');
    } else if (TASK === 'g2p') {
      const r = (await post('/v1/g2p', { inputs: text.trim(), n_best: 5, alignment: true })).results[0];
      $('result').innerHTML = '<div><b>' + esc(r.word) + '</b> → <b>' + esc(r.phonemes) + '</b></div>' +
        r.n_best.slice(1).map(h => '<div>' + esc(h.phonemes) + ' <small>' + h.score.toFixed(3) + '</small></div>').join('');
      const a = r.alignment;
      attn = { rows: a.outputs, cols: a.letters, layers: 1, heads: 1, data: a.weights.flat() };
    } else {
      const v = (await post('/v1/embed', { inputs: text })).results[0];
      $('result').innerHTML = '<div>' + v.length + ' dimensions: [' + v.slice(0, 8).map(x => x.toFixed(4)).join(', ') + ', …]</div>';
    }
    if (TASK !== 'g2p') {
      const maps = await post('/v1/attention', { text });
      attn = { rows: maps.tokens, cols: maps.tokens, layers: maps.layers, heads: maps.heads, data: maps.data };
    }
    const ls = $('layer'), hs = $('head');
    if (!ls.options.length) {
      for (let l = 0; l < attn.layers; l++) ls.add(new Option('layer ' + l, l));
      hs.add(new Option('average of heads', -1));
      for (let h = 0; h < attn.heads; h++) hs.add(new Option('head ' + h, h));
      ls.value = attn.layers - 1;
    }
    $('attn-controls').hidden = attn.layers * attn.heads === 1;   // one map (a G2P alignment): nothing to switch
    drawAttention();
    $('status').textContent = 'done';
  } catch (e) {
    $('result').innerHTML = '<span class="err">' + esc(e.message) + '</span>';
    $('status').textContent = 'error';
  }
  document.body.dataset.done = '1';
}
$('run').addEventListener('click', run);
$('layer').addEventListener('change', drawAttention);
$('head').addEventListener('change', drawAttention);
const demo = new URLSearchParams(location.search).get('demo');
if (demo !== null) { $('text').value = demo; run(); }
</script>
</body></html>
""";
}
