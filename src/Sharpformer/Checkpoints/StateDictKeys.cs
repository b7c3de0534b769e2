namespace Sharpformer.Checkpoints;

/// <summary>How checkpoint keys map onto a model's parameter names (see <see cref="StateDictKeys.Map"/>).</summary>
/// <param name="ModelToCheckpoint">Model parameter name → checkpoint key, for every parameter found.</param>
/// <param name="Missing">Model parameters with no checkpoint tensor (e.g. a fresh classifier head, or tied weights to re-tie).</param>
/// <param name="Unexpected">Checkpoint tensors no parameter uses (ignored buffers such as position_ids are not listed).</param>
public sealed record KeyMapping(
    IReadOnlyDictionary<string, string> ModelToCheckpoint,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected);

/// <summary>Checkpoint key conventions of transformers' <c>from_pretrained</c>.</summary>
public static class StateDictKeys
{
    /// <summary>Legacy TF-era LayerNorm names: <c>*.gamma</c> → <c>*.weight</c>, <c>*.beta</c> → <c>*.bias</c> (transformers' <c>_fix_key</c>).</summary>
    public static string FixLegacyName(string key)
    {
        if (key.EndsWith(".gamma", StringComparison.Ordinal)) return key[..^"gamma".Length] + "weight";
        if (key.EndsWith(".beta", StringComparison.Ordinal)) return key[..^"beta".Length] + "bias";
        return key;
    }

    /// <summary>
    /// Buffers that are not parameters and are recomputed by the model: <c>*.position_ids</c> (saved by transformers ≤ 4.30,
    /// not by later versions).
    /// </summary>
    public static bool IsIgnoredBuffer(string key) =>
        key == "position_ids" || key.EndsWith(".position_ids", StringComparison.Ordinal);

    /// <summary><c>prefix.rest</c> → <c>rest</c>; null when the key does not start with <c>prefix.</c>.</summary>
    public static string? StripPrefix(string key, string prefix) =>
        key.Length > prefix.Length + 1 && key.StartsWith(prefix, StringComparison.Ordinal) && key[prefix.Length] == '.'
            ? key[(prefix.Length + 1)..]
            : null;

    /// <summary><c>rest</c> → <c>prefix.rest</c>.</summary>
    public static string AddPrefix(string key, string prefix) => $"{prefix}.{key}";

    /// <summary>
    /// Maps checkpoint keys onto model parameter names like <c>PreTrainedModel._load_pretrained_model</c>: legacy names are fixed,
    /// ignored buffers dropped, and the base-model prefix (<c>bert</c>, <c>distilbert</c>) added or stripped when only one side has it
    /// (a head model from a bare checkpoint, or a bare model from a head checkpoint).
    /// </summary>
    /// <param name="checkpointKeys">Keys of the state dict as stored.</param>
    /// <param name="modelKeys">The model's parameter names.</param>
    /// <param name="baseModelPrefix"><c>bert</c> or <c>distilbert</c>.</param>
    public static KeyMapping Map(IEnumerable<string> checkpointKeys, IEnumerable<string> modelKeys, string baseModelPrefix)
    {
        // fixed name → stored key
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var k in checkpointKeys)
        {
            if (IsIgnoredBuffer(k)) continue;
            stored.TryAdd(FixLegacyName(k), k);
        }
        var model = modelKeys.ToList();
        bool ckptHasPrefix = stored.Keys.Any(k => StripPrefix(k, baseModelPrefix) is not null);
        bool modelHasPrefix = model.Any(k => StripPrefix(k, baseModelPrefix) is not null);

        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in model)
        {
            string candidate = m;
            if (modelHasPrefix && !ckptHasPrefix) candidate = StripPrefix(m, baseModelPrefix) ?? m;
            else if (!modelHasPrefix && ckptHasPrefix) candidate = AddPrefix(m, baseModelPrefix);
            if (stored.TryGetValue(candidate, out var key))
            {
                map[m] = key;
                used.Add(candidate);
            }
            else missing.Add(m);
        }
        var unexpected = stored.Keys.Where(k => !used.Contains(k)).Select(k => stored[k]).ToList();
        return new KeyMapping(map, missing, unexpected);
    }
}
