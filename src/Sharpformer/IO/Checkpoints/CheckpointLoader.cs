using System.Text.Json;

namespace Sharpformer.Checkpoints;

/// <summary>Finds and reads the weights of a model directory, preferring safetensors as transformers does.</summary>
public static class CheckpointLoader
{
    /// <summary>File names looked for, in order of preference.</summary>
    public static IReadOnlyList<string> WeightFileNames { get; } =
        ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

    /// <summary>
    /// Loads a state dict from a model directory (model.safetensors, its sharded index, pytorch_model.bin or its
    /// sharded index, first found wins) or from a weight file given directly. <see cref="StateDict.Path"/> and
    /// <see cref="StateDict.Format"/> say what was read. Dispose the result after copying the weights out.
    /// </summary>
    public static StateDict Load(string directoryOrFile)
    {
        if (File.Exists(directoryOrFile)) return LoadFile(directoryOrFile);
        if (!Directory.Exists(directoryOrFile))
            throw new DirectoryNotFoundException($"Model path '{directoryOrFile}' is neither a directory nor a file.");
        foreach (var name in WeightFileNames)
        {
            var p = Path.Combine(directoryOrFile, name);
            if (File.Exists(p)) return LoadFile(p);
        }
        throw new FileNotFoundException(
            $"No weights in '{directoryOrFile}': expected one of {string.Join(", ", WeightFileNames)}. " +
            "Download the model files or point to the right directory (TensorFlow/Flax-only checkpoints are not supported).");
    }

    /// <summary>The weight file <see cref="Load"/> would read from a directory, or null.</summary>
    public static string? FindWeightFile(string directory) =>
        WeightFileNames.Select(n => Path.Combine(directory, n)).FirstOrDefault(File.Exists);

    static StateDict LoadFile(string path)
    {
        var name = Path.GetFileName(path);
        if (name.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)) return LoadSharded(path);
        if (name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return SafeTensorsReader.Read(path);
        return TorchCheckpointReader.Read(path);
    }

    /// <summary>Reads <c>*.index.json</c> (<c>{"metadata": {...}, "weight_map": {tensor: shard file}}</c>) and every shard it names.</summary>
    public static StateDict LoadSharded(string indexPath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var weightMap = ReadWeightMap(indexPath);
        bool safetensors = Path.GetFileName(indexPath).Contains(".safetensors", StringComparison.OrdinalIgnoreCase);
        var result = new StateDict(indexPath, safetensors ? CheckpointFormat.SafeTensorsSharded : CheckpointFormat.TorchZip);
        try
        {
            foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                var shardPath = Path.Combine(dir, shard);
                if (!File.Exists(shardPath))
                    throw new CheckpointFormatException(indexPath, $"shard '{shard}' listed in weight_map does not exist next to the index",
                        "Download every shard of the checkpoint.");
                var part = safetensors ? SafeTensorsReader.Read(shardPath) : TorchCheckpointReader.Read(shardPath);
                result.Adopt(part);
                foreach (var t in part.Values)
                {
                    if (!weightMap.TryGetValue(t.Name, out var expectedShard))
                        throw new CheckpointFormatException(indexPath, $"tensor '{t.Name}' in shard '{shard}' is not listed in weight_map");
                    if (expectedShard != shard)
                        throw new CheckpointFormatException(indexPath, $"tensor '{t.Name}' is in shard '{shard}' but weight_map says '{expectedShard}'");
                    if (!result.TryAdd(t))
                        throw new CheckpointFormatException(indexPath, $"tensor '{t.Name}' appears in more than one shard");
                }
            }
            foreach (var (tensor, shard) in weightMap)
                if (!result.ContainsKey(tensor))
                    throw new CheckpointFormatException(indexPath, $"tensor '{tensor}' is mapped to shard '{shard}' but that shard does not contain it");
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The <c>weight_map</c> of a shard index (tensor → shard file name), every name checked to be a plain file next to the
    /// index. The one validation of shard names: the hub client runs it before downloading any shard, so it never fetches
    /// a shard this loader would refuse.
    /// </summary>
    /// <exception cref="CheckpointFormatException">invalid JSON, no weight_map, a non-string or non-plain shard name, a duplicate key.</exception>
    internal static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(indexPath, $"the index is not valid JSON ({e.Message})", null, e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(indexPath, "the index has no \"weight_map\" object");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException(indexPath, $"weight_map entry '{p.Name}' is a JSON {p.Value.ValueKind}, not a shard file name");
                var shard = p.Value.GetString()!;
                // Shards live next to the index; anything else could read arbitrary files.
                if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                    throw new CheckpointFormatException(indexPath, $"weight_map entry '{p.Name}' names '{shard}', which is not a plain file name");
                if (!result.TryAdd(p.Name, shard)) throw new CheckpointFormatException(indexPath, $"weight_map lists '{p.Name}' twice");
            }
            return result;
        }
    }
}
