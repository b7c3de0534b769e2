using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>Reads a <c>config.json</c> and returns the config record for its <c>model_type</c>.</summary>
public static class ModelConfigLoader
{
    /// <summary>The model types this library implements.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["bert", "distilbert", "gpt2"];

    /// <summary>Loads <c>config.json</c> from a model directory, or the given file.</summary>
    /// <remarks>
    /// The type comes from <c>model_type</c>; old files without it are recognised by <c>architectures</c>
    /// (<c>BertFor…</c>/<c>DistilBertFor…</c>), as transformers' AutoConfig falls back to name patterns.
    /// </remarks>
    public static ModelConfig Load(string directoryOrFile) => Load(directoryOrFile, null);

    internal static ModelConfig Load(string directoryOrFile, string? expectedModelType)
    {
        var path = Directory.Exists(directoryOrFile) ? Path.Combine(directoryOrFile, "config.json") : directoryOrFile;
        var config = Parse(ModelConfig.ReadText(path), path);
        if (expectedModelType is not null && config.ModelType != expectedModelType)
            throw new ConfigException(path, "model_type",
                $"expected a '{expectedModelType}' config but the file describes '{config.ModelType}'; load it with ModelConfigLoader.Load instead.");
        return config;
    }

    /// <summary>Parses config text; <paramref name="sourceName"/> names the file in errors.</summary>
    public static ModelConfig Parse(string json, string sourceName = "<config.json>")
    {
        var obj = ModelConfig.ParseObject(json, sourceName);
        var type = ModelType(obj, sourceName);
        return type switch
        {
            "bert" => BertConfig.FromJson(obj, sourceName),
            "distilbert" => DistilBertConfig.FromJson(obj, sourceName),
            "gpt2" => Gpt2Config.FromJson(obj, sourceName),
            _ => throw new ConfigException(sourceName, "model_type",
                $"model type '{type}' is not supported (supported: {string.Join(", ", SupportedModelTypes)}). Use a BERT or DistilBERT checkpoint."),
        };
    }

    static string ModelType(JsonObject obj, string file)
    {
        if (obj.TryGetPropertyValue("model_type", out var mt) && mt is not null)
        {
            if (mt is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
            throw new ConfigException(file, "model_type", $"must be a string, got {mt.ToJsonString()}.");
        }
        if (obj.TryGetPropertyValue("architectures", out var archs) && archs is JsonArray a)
        {
            foreach (var e in a)
            {
                var name = e is JsonValue ev && ev.GetValueKind() == JsonValueKind.String ? ev.GetValue<string>() : "";
                if (name.StartsWith("DistilBert", StringComparison.Ordinal)) return "distilbert";
                if (name.StartsWith("Bert", StringComparison.Ordinal)) return "bert";
                if (name.StartsWith("GPT2", StringComparison.Ordinal)) return "gpt2";
            }
        }
        throw new ConfigException(file, "model_type",
            "required key is missing and 'architectures' does not name a BERT or DistilBERT class. Add \"model_type\": \"bert\" or \"distilbert\".");
    }
}
