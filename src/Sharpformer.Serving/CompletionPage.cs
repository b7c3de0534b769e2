using System.Net;

namespace Sharpformer.Serving;

/// <summary>
/// The page served at <c>GET /</c> for a text-generation server: type a prompt and watch the continuation appear token by token
/// (it reads the server-sent events of <c>POST /v1/completions</c> with <c>"stream": true</c>). <c>?demo=TEXT</c> fills in and
/// starts TEXT at load; <c>&amp;temperature=</c> and <c>&amp;max_tokens=</c> preset those fields.
/// </summary>
internal static class CompletionPage
{
    public static string Html(string model) => Template.Replace("{{MODEL}}", WebUtility.HtmlEncode(model), StringComparison.Ordinal);

    const string Template = """
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sharpformer · generate</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 20px; color: #222; max-width: 1000px; }
h1 { font-size: 22px; margin: 0 0 4px 0; } .sub { color: #666; margin-bottom: 12px; }
textarea { width: 100%; height: 70px; font-size: 15px; padding: 6px; box-sizing: border-box; }
label { margin-right: 14px; font-size: 14px; } input[type=number] { width: 70px; }
button { font-size: 15px; padding: 6px 18px; margin: 8px 8px 8px 0; }
#output { white-space: pre-wrap; font-family: "DejaVu Sans Mono", monospace; font-size: 15px; line-height: 1.5; border: 1px solid #ddd;
  border-radius: 4px; padding: 10px; min-height: 80px; background: #fafafa; }
#generated { background: #dcebff; } #status { color: #888; font-size: 12px; } .err { color: #b00020; }
</style></head>
<body>
<h1>Sharpformer — generate</h1>
<div class="sub">model <b>{{MODEL}}</b> · POST /v1/completions (streamed) · <a href="/metrics">metrics</a> · <a href="/health">health</a></div>
<textarea id="prompt">Scientists have discovered</textarea><br>
<label>max tokens <input id="max_tokens" type="number" min="1" value="40"></label>
<label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
<label>top_p <input id="top_p" type="number" min="0.01" max="1" step="0.05" value="1"></label>
<label>seed <input id="seed" type="number" value="0"></label><br>
<button id="run">Generate</button><button id="stop" disabled>Stop</button> <span id="status"></span>
<div id="output"><span id="prompt-echo"></span><span id="generated"></span></div>
<div id="error" class="err"></div>
<script>
const $ = (id) => document.getElementById(id);
let controller = null;
async function run() {
  $('prompt-echo').textContent = $('prompt').value; $('generated').textContent = ''; $('error').textContent = '';
  $('run').disabled = true; $('stop').disabled = false; $('status').textContent = 'generating…';
  controller = new AbortController();
  const started = performance.now();
  let chunks = 0, finish = null;
  try {
    const r = await fetch('/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: controller.signal,
      body: JSON.stringify({ prompt: $('prompt').value, max_tokens: +$('max_tokens').value, temperature: +$('temperature').value,
        top_p: +$('top_p').value, seed: +$('seed').value, stream: true }) });
    if (!r.ok) { const j = await r.json(); throw new Error(j.error ? j.error.message : r.statusText); }
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6);
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        const c = j.choices[0];
        if (c.text) { $('generated').textContent += c.text; chunks++; }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    const s = (performance.now() - started) / 1000;
    $('status').textContent = 'done · finish_reason ' + finish + ' · ' + chunks + ' chunks in ' + s.toFixed(2) + ' s';
  } catch (e) {
    if (e.name === 'AbortError') $('status').textContent = 'stopped';
    else { $('error').textContent = e.message; $('status').textContent = 'error'; }
  }
  $('run').disabled = false; $('stop').disabled = true;
  document.body.dataset.done = '1';
}
$('run').addEventListener('click', run);
$('stop').addEventListener('click', () => controller && controller.abort());
const params = new URLSearchParams(location.search);
for (const k of ['max_tokens', 'temperature', 'top_p', 'seed']) if (params.has(k)) $(k).value = params.get(k);
if (params.has('demo')) { $('prompt').value = params.get('demo'); run(); }
</script>
</body></html>
""";
}
