using System.Collections.ObjectModel;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>Typed access to a <c>config.json</c> object that remembers which keys were consumed; errors name file and key.</summary>
internal sealed class ConfigReader(JsonObject json, string file)
{
    readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>Upper bound for num_labels (which expands to LABEL_i names): guards against absurd values in a corrupt file.</summary>
    const int MaxLabels = 1_000_000;

    public string File { get; } = file;

    JsonNode? Get(string key, out bool present)
    {
        _used.Add(key);
        present = json.TryGetPropertyValue(key, out var node);
        return node;
    }

    ConfigException Error(string key, string problem) => new(File, key, problem);

    static string Describe(JsonNode? n) => n is null ? "null" : n.GetValueKind() switch
    {
        JsonValueKind.String => $"the string {n.ToJsonString()}",
        JsonValueKind.Number => $"the number {n.ToJsonString()}",
        var k => k.ToString().ToLowerInvariant(),
    };

    public int RequiredInt(string key, int min = 0)
    {
        var n = Get(key, out bool present);
        if (!present) throw Error(key, $"required key is missing. Add \"{key}\" (an integer) to the config.");
        return ToInt(key, n, min);
    }

    public int Int(string key, int defaultValue, int min = 0)
    {
        var n = Get(key, out bool present);
        return present ? ToInt(key, n, min) : defaultValue;
    }

    public int? NullableInt(string key, int? defaultValue)
    {
        var n = Get(key, out bool present);
        if (!present) return defaultValue;
        return n is null ? null : ToInt(key, n, int.MinValue);
    }

    int ToInt(string key, JsonNode? n, int min)
    {
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out int i))
        {
            if (i < min) throw Error(key, $"must be at least {min}, got {i}.");
            return i;
        }
        throw Error(key, $"must be an integer, got {Describe(n)}.");
    }

    public double Double(string key, double defaultValue, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var n = Get(key, out bool present);
        if (!present) return defaultValue;
        return ToDouble(key, n, min, max);
    }

    public double? NullableDouble(string key, double? defaultValue, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var n = Get(key, out bool present);
        if (!present) return defaultValue;
        return n is null ? null : ToDouble(key, n, min, max);
    }

    double ToDouble(string key, JsonNode? n, double min, double max)
    {
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            double d = v.GetValue<double>();
            if (!double.IsFinite(d) || d < min || d > max)
                throw Error(key, $"must be within [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}], got {d.ToString(CultureInfo.InvariantCulture)}.");
            return d;
        }
        throw Error(key, $"must be a number, got {Describe(n)}.");
    }

    public bool Bool(string key, bool defaultValue)
    {
        var n = Get(key, out bool present);
        if (!present) return defaultValue;
        if (n is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return v.GetValue<bool>();
        throw Error(key, $"must be true or false, got {Describe(n)}.");
    }

    public string String(string key, string defaultValue)
    {
        var n = Get(key, out bool present);
        if (!present) return defaultValue;
        return n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Error(key, $"must be a string, got {Describe(n)}.");
    }

    public string? NullableString(string key, string? defaultValue, params string[] allowed)
    {
        var n = Get(key, out bool present);
        if (!present || n is null) return present ? null : defaultValue;
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.String) throw Error(key, $"must be a string or null, got {Describe(n)}.");
        var s = v.GetValue<string>();
        if (allowed.Length > 0 && !allowed.Contains(s)) throw Error(key, $"'{s}' is not one of: {string.Join(", ", allowed)}.");
        return s;
    }

    public IReadOnlyList<string>? StringList(string key)
    {
        var n = Get(key, out bool present);
        if (!present || n is null) return null;
        if (n is not JsonArray a) throw Error(key, $"must be a list of strings, got {Describe(n)}.");
        var list = new List<string>();
        foreach (var e in a)
        {
            if (e is not JsonValue v || v.GetValueKind() != JsonValueKind.String) throw Error(key, $"must be a list of strings, but holds {Describe(e)}.");
            list.Add(v.GetValue<string>());
        }
        return list.AsReadOnly();
    }

    /// <summary>
    /// <c>id2label</c> (string keys "0".."n-1"), <c>label2id</c>, or <c>num_labels</c> alone (→ LABEL_i), as transformers does.
    /// </summary>
    public (IReadOnlyDictionary<int, string>, IReadOnlyDictionary<string, int>) LabelMaps()
    {
        var id2Node = Get("id2label", out bool hasId2);
        var l2Node = Get("label2id", out bool hasL2);
        var numNode = Get("num_labels", out bool hasNum);
        Dictionary<int, string>? id2 = null;
        if (hasId2 && id2Node is not null)
        {
            if (id2Node is not JsonObject o) throw Error("id2label", $"must be an object {{\"0\": \"label\", ...}}, got {Describe(id2Node)}.");
            id2 = [];
            foreach (var (k, v) in o)
            {
                if (!int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                    throw Error("id2label", $"key '{k}' is not a non-negative integer class id.");
                if (v is not JsonValue sv || sv.GetValueKind() != JsonValueKind.String)
                    throw Error("id2label", $"label of id {k} must be a string, got {Describe(v)}.");
                id2[id] = sv.GetValue<string>();
            }
            for (int i = 0; i < id2.Count; i++)
                if (!id2.ContainsKey(i)) throw Error("id2label", $"class ids must be 0..{id2.Count - 1} without gaps; id {i} is missing.");
        }
        Dictionary<string, int>? l2 = null;
        if (hasL2 && l2Node is not null)
        {
            if (l2Node is not JsonObject o) throw Error("label2id", $"must be an object {{\"label\": 0, ...}}, got {Describe(l2Node)}.");
            l2 = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (k, v) in o)
            {
                if (v is not JsonValue iv || iv.GetValueKind() != JsonValueKind.Number || !iv.TryGetValue<int>(out int id) || id < 0)
                    throw Error("label2id", $"id of label '{k}' must be a non-negative integer, got {Describe(v)}.");
                l2[k] = id;
            }
        }
        if (id2 is null && l2 is not null)
        {
            id2 = [];
            foreach (var (label, id) in l2) id2[id] = label;
            for (int i = 0; i < id2.Count; i++)
                if (!id2.ContainsKey(i)) throw Error("label2id", $"class ids must be 0..{id2.Count - 1} without gaps; id {i} is missing.");
        }
        if (id2 is null && hasNum)
        {
            int num = ToInt("num_labels", numNode, 1);
            if (num > MaxLabels) throw Error("num_labels", $"{num} classes is more than the {MaxLabels} supported; check the value.");
            id2 = Enumerable.Range(0, num).ToDictionary(i => i, i => $"LABEL_{i}");
        }
        if (id2 is null) return (ModelConfig.DefaultId2Label, ModelConfig.DefaultLabel2Id);
        if (l2 is null)
        {
            l2 = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (id, label) in id2.OrderBy(kv => kv.Key)) l2[label] = id;
        }
        return (new ReadOnlyDictionary<int, string>(id2), new ReadOnlyDictionary<string, int>(l2));
    }

    /// <summary>Every key not read so far, deep-copied, in file order.</summary>
    public JsonObject Rest()
    {
        var o = new JsonObject();
        foreach (var (k, v) in json)
            if (!_used.Contains(k)) o[k] = v?.DeepClone();
        return o;
    }
}
