using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Writes JSON exactly as Python's <c>json.dumps</c> does (ensure_ascii escapes, <c>repr</c> floats such as
/// <c>1e-12</c> and <c>2.0</c>, <c>indent</c>, <c>sort_keys</c>), so files saved here diff cleanly against the ones
/// <c>transformers</c> writes (<c>json.dumps(d, indent=2, sort_keys=True) + "\n"</c>).
/// </summary>
internal static class PyJson
{
    /// <summary>indent = null → compact with separators (",", ":"); otherwise (",", ": ") and newlines, like Python.</summary>
    /// <param name="node">The value to write.</param>
    /// <param name="indent">Spaces per level, or null for one compact line.</param>
    /// <param name="sortKeys">Sort object keys (Python <c>sort_keys=True</c>).</param>
    /// <param name="integerKeyed">
    /// Objects whose keys are ints on the Python side (e.g. <c>id2label</c>): Python sorts those numerically before turning
    /// them into strings, so "10" follows "9".
    /// </param>
    public static string Serialize(JsonNode? node, int? indent, bool sortKeys, IReadOnlySet<JsonNode>? integerKeyed = null)
    {
        var sb = new StringBuilder();
        Write(sb, node, indent, sortKeys, 0, integerKeyed);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, JsonNode? node, int? indent, bool sortKeys, int level, IReadOnlySet<JsonNode>? integerKeyed = null)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                return;
            case JsonObject obj:
            {
                if (obj.Count == 0) { sb.Append("{}"); return; }
                IEnumerable<KeyValuePair<string, JsonNode?>> items = obj;
                if (sortKeys)
                {
                    items = integerKeyed is not null && integerKeyed.Contains(obj)
                        ? items.OrderBy(kv => long.Parse(kv.Key, System.Globalization.CultureInfo.InvariantCulture))
                        : items.OrderBy(kv => kv.Key, CodePointComparer.Instance);
                }
                sb.Append('{');
                bool first = true;
                foreach (var (key, value) in items)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    NewLine(sb, indent, level + 1);
                    AppendString(sb, key);
                    sb.Append(indent is null ? ":" : ": ");
                    Write(sb, value, indent, sortKeys, level + 1, integerKeyed);
                }
                NewLine(sb, indent, level);
                sb.Append('}');
                return;
            }
            case JsonArray arr:
            {
                if (arr.Count == 0) { sb.Append("[]"); return; }
                sb.Append('[');
                for (int i = 0; i < arr.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    NewLine(sb, indent, level + 1);
                    Write(sb, arr[i], indent, sortKeys, level + 1, integerKeyed);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                return;
            }
            case JsonValue value:
                WriteValue(sb, value);
                return;
        }
    }

    static void NewLine(StringBuilder sb, int? indent, int level)
    {
        if (indent is not int n) return;
        sb.Append('\n').Append(' ', n * level);
    }

    static void WriteValue(StringBuilder sb, JsonValue value)
    {
        if (value.TryGetValue<JsonElement>(out var el))
        {
            switch (el.ValueKind)
            {
                case JsonValueKind.String: AppendString(sb, el.GetString()!); return;
                case JsonValueKind.True: sb.Append("true"); return;
                case JsonValueKind.False: sb.Append("false"); return;
                case JsonValueKind.Null: sb.Append("null"); return;
                case JsonValueKind.Number:
                {
                    var raw = el.GetRawText();
                    // Python keeps ints as ints (arbitrary size) and re-prints floats with repr().
                    if (raw.IndexOfAny(['.', 'e', 'E']) < 0) sb.Append(raw);
                    else sb.Append(FloatRepr(double.Parse(raw, CultureInfo.InvariantCulture)));
                    return;
                }
                default:
                    Write(sb, JsonNode.Parse(el.GetRawText()), null, false, 0);
                    return;
            }
        }
        if (value.TryGetValue<string>(out var s)) { AppendString(sb, s); return; }
        if (value.TryGetValue<bool>(out var b)) { sb.Append(b ? "true" : "false"); return; }
        if (value.TryGetValue<int>(out var i)) { sb.Append(i.ToString(CultureInfo.InvariantCulture)); return; }
        if (value.TryGetValue<long>(out var l)) { sb.Append(l.ToString(CultureInfo.InvariantCulture)); return; }
        if (value.TryGetValue<ulong>(out var ul)) { sb.Append(ul.ToString(CultureInfo.InvariantCulture)); return; }
        if (value.TryGetValue<double>(out var d)) { sb.Append(FloatRepr(d)); return; }
        if (value.TryGetValue<float>(out var f)) { sb.Append(FloatRepr(f)); return; }
        // Anything else: let System.Text.Json render it, then re-emit in Python style.
        Write(sb, JsonNode.Parse(value.ToJsonString()), null, false, 0);
    }

    /// <summary>Python orders str by code point; UTF-16 ordinal order differs once surrogate pairs (emoji) meet U+E000–U+FFFF.</summary>
    internal sealed class CodePointComparer : IComparer<string>
    {
        public static readonly CodePointComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (x is null || y is null) return string.CompareOrdinal(x, y);
            var ex = x.EnumerateRunes();
            var ey = y.EnumerateRunes();
            while (true)
            {
                bool hx = ex.MoveNext(), hy = ey.MoveNext();
                if (!hx || !hy) return hx == hy ? 0 : hx ? 1 : -1;
                int c = ex.Current.Value.CompareTo(ey.Current.Value);
                if (c != 0) return c;
            }
        }
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits; scientific when the exponent is &lt; -4 or ≥ 16.</summary>
    public static string FloatRepr(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsPositiveInfinity(v)) return "Infinity";
        if (double.IsNegativeInfinity(v)) return "-Infinity";
        if (v == 0) return double.IsNegative(v) ? "-0.0" : "0.0";
        // "E16" is not shortest; "R" is (since .NET Core 3.0). Decompose it into digits and a decimal exponent.
        var r = v.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r[0] == '-';
        if (negative) r = r[1..];
        int exp = 0;
        int ePos = r.IndexOfAny(['E', 'e']);
        if (ePos >= 0)
        {
            exp = int.Parse(r[(ePos + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..ePos];
        }
        int dot = r.IndexOf('.');
        string intPart = dot < 0 ? r : r[..dot], fracPart = dot < 0 ? "" : r[(dot + 1)..];
        string digits = intPart + fracPart;
        int pointPos = intPart.Length + exp; // value = 0.digits × 10^pointPos after stripping below
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; pointPos--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int x = pointPos - 1; // exponent of the first digit
        var sb = new StringBuilder();
        if (negative) sb.Append('-');
        if (x < -4 || x >= 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(x < 0 ? '-' : '+').Append(Math.Abs(x).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (pointPos <= 0)
        {
            sb.Append("0.").Append('0', -pointPos).Append(digits);
        }
        else if (pointPos >= digits.Length)
        {
            sb.Append(digits).Append('0', pointPos - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits, 0, pointPos).Append('.').Append(digits, pointPos, digits.Length - pointPos);
        }
        return sb.ToString();
    }

    /// <summary>
    /// A JSON string with Python's ensure_ascii escaping (everything outside 0x20–0x7E as \uXXXX), or with
    /// <paramref name="ensureAscii"/> false as <c>json.dumps(ensure_ascii=False)</c> and Rust's serde_json write it
    /// (only '"', '\' and control characters escaped; other characters raw).
    /// </summary>
    public static void AppendString(StringBuilder sb, string s, bool ensureAscii = true)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7E)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
