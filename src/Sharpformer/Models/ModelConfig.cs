using System.Collections.ObjectModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>
/// What every Hugging Face <c>config.json</c> shares (the <c>PretrainedConfig</c> part): architectures, label maps,
/// problem type, dtype. Keys this library does not model are kept in <see cref="ExtraProperties"/> and written back.
/// </summary>
/// <remarks>
/// Saving mirrors <c>PretrainedConfig.save_pretrained</c> (<c>use_diff=True</c>): keys sorted, 2-space indent, Python float
/// spelling, trailing newline; the label maps, <c>problem_type</c>, <c>architectures</c>, <c>torch_dtype</c> are omitted when
/// they equal the <c>PretrainedConfig</c> defaults. <c>num_labels</c> is never stored: it is <c>len(id2label)</c>.
/// </remarks>
public abstract record ModelConfig
{
    /// <summary>The <c>model_type</c> key (<c>"bert"</c>, <c>"distilbert"</c>).</summary>
    public abstract string ModelType { get; }

    /// <summary>Head classes the checkpoint was saved from, e.g. <c>BertForSequenceClassification</c>.</summary>
    public IReadOnlyList<string>? Architectures { get; init; }

    /// <summary>Class id → label name; ids are exactly 0..NumLabels-1. Default: <c>LABEL_0</c>, <c>LABEL_1</c> as in transformers.</summary>
    public IReadOnlyDictionary<int, string> Id2Label { get; init; } = DefaultId2Label;

    /// <summary>Label name → class id (usually the inverse of <see cref="Id2Label"/>).</summary>
    public IReadOnlyDictionary<string, int> Label2Id { get; init; } = DefaultLabel2Id;

    /// <summary>Number of output classes of a classification head: <c>Id2Label.Count</c>.</summary>
    public int NumLabels => Id2Label.Count;

    /// <summary><c>regression</c>, <c>single_label_classification</c>, <c>multi_label_classification</c> or null (inferred).</summary>
    public string? ProblemType { get; init; }

    /// <summary>The <c>torch_dtype</c> key (<c>float32</c>, ...).</summary>
    public string? TorchDType { get; init; }

    /// <summary>The <c>transformers_version</c> key of the loaded file.</summary>
    public string? TransformersVersion { get; init; }

    /// <summary>Every key of the file this library does not model, kept verbatim and written back on save.</summary>
    public JsonObject ExtraProperties { get; init; } = [];

    /// <summary>File the config was read from (null when built in code). Used in error messages.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Label ids in order: <c>Labels[i] == Id2Label[i]</c>.</summary>
    public IReadOnlyList<string> Labels => Enumerable.Range(0, NumLabels).Select(i => Id2Label[i]).ToArray();

    public static IReadOnlyDictionary<int, string> DefaultId2Label { get; } =
        new ReadOnlyDictionary<int, string>(new Dictionary<int, string> { [0] = "LABEL_0", [1] = "LABEL_1" });

    public static IReadOnlyDictionary<string, int> DefaultLabel2Id { get; } =
        new ReadOnlyDictionary<string, int>(new Dictionary<string, int> { ["LABEL_0"] = 0, ["LABEL_1"] = 1 });

    /// <summary>Builds <c>id2label</c>/<c>label2id</c> for the given label names (id = position).</summary>
    public static (IReadOnlyDictionary<int, string> Id2Label, IReadOnlyDictionary<string, int> Label2Id) LabelMaps(IReadOnlyList<string> labels)
    {
        var id2 = new Dictionary<int, string>();
        var l2 = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Count; i++)
        {
            id2[i] = labels[i];
            if (!l2.TryAdd(labels[i], i)) throw new ArgumentException($"Duplicate label '{labels[i]}'.", nameof(labels));
        }
        return (new ReadOnlyDictionary<int, string>(id2), new ReadOnlyDictionary<string, int>(l2));
    }

    /// <summary>The full config as JSON (known keys plus <see cref="ExtraProperties"/>).</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var (k, v) in ExtraProperties) o[k] = v?.DeepClone();
        if (Architectures is not null) o["architectures"] = new JsonArray(Architectures.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray());
        if (!IsDefaultLabels())
        {
            var id2 = new JsonObject();
            foreach (var (id, label) in Id2Label.OrderBy(kv => kv.Key)) id2[id.ToString(CultureInfo.InvariantCulture)] = label;
            o["id2label"] = id2;
            var l2 = new JsonObject();
            foreach (var (label, id) in Label2Id) l2[label] = id;
            o["label2id"] = l2;
        }
        if (ProblemType is not null) o["problem_type"] = ProblemType;
        if (TorchDType is not null) o["torch_dtype"] = TorchDType;
        if (TransformersVersion is not null) o["transformers_version"] = TransformersVersion;
        o["model_type"] = ModelType;
        WriteModelKeys(o);
        return o;
    }

    /// <summary>The text <c>save_pretrained</c> would write: <c>json.dumps(d, indent=2, sort_keys=True) + "\n"</c>.</summary>
    public string ToJsonString()
    {
        var json = ToJson();
        // id2label has int keys in Python, which sort_keys orders numerically ("9" before "10").
        var integerKeyed = new HashSet<JsonNode>(ReferenceEqualityComparer.Instance);
        if (json["id2label"] is JsonObject id2) integerKeyed.Add(id2);
        return PyJson.Serialize(json, indent: 2, sortKeys: true, integerKeyed) + "\n";
    }

    /// <summary>Writes <c>config.json</c> into a directory (or to the given <c>.json</c> path) atomically.</summary>
    public void Save(string directoryOrFile)
    {
        var path = directoryOrFile.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? directoryOrFile
            : Path.Combine(directoryOrFile, "config.json");
        AtomicFile.WriteAllText(path, ToJsonString());
    }

    /// <summary>
    /// The weight matrices the config asks for: elements of one tensor, the key named when that tensor alone is too large (its
    /// larger dimension), the key named when the total is too large (its block: embeddings, layers), and how many such tensors.
    /// </summary>
    private protected abstract IEnumerable<(double Elements, string TensorKey, string BlockKey, double Copies)> WeightMatrices();

    /// <summary>
    /// Refuses a config whose weights cannot be allocated — a tensor over .NET's array limit, or more parameters than this process
    /// can hold — before anything is allocated (a corrupt or hostile config.json with 100,000 layers fails fast and by name).
    /// </summary>
    /// <exception cref="ConfigException">Names config.json and the key that makes the model too large.</exception>
    public void CheckSizes()
    {
        string file = SourcePath ?? "config.json";
        var blocks = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (elements, tensorKey, blockKey, copies) in WeightMatrices())
        {
            if (elements > Array.MaxLength)
                throw new ConfigException(file, tensorKey, $"gives a weight tensor of {elements:N0} elements, more than the {Array.MaxLength:N0} one tensor can hold. The value looks wrong; check config.json.");
            blocks[blockKey] = blocks.GetValueOrDefault(blockKey) + elements * copies;
        }
        var memory = GC.GetGCMemoryInfo();
        double total = blocks.Values.Sum(), available = memory.TotalAvailableMemoryBytes - memory.MemoryLoadBytes;
        if (total * sizeof(float) > available)
            throw new ConfigException(file, blocks.MaxBy(b => b.Value).Key,
                $"the model would hold {total:N0} parameters ({total * sizeof(float) / (1L << 30):N1} GiB as float32), more than the {available / (1L << 30):N1} GiB of memory free. The value looks wrong; check config.json.");
    }

    private protected static string Larger(string a, int av, string b, int bv) => av >= bv ? a : b;

    /// <summary>Adds the model-specific keys.</summary>
    protected abstract void WriteModelKeys(JsonObject json);

    bool IsDefaultLabels() =>
        Id2Label.Count == 2 && Id2Label.TryGetValue(0, out var a) && a == "LABEL_0" && Id2Label.TryGetValue(1, out var b) && b == "LABEL_1"
        && Label2Id.Count == 2 && Label2Id.TryGetValue("LABEL_0", out var x) && x == 0 && Label2Id.TryGetValue("LABEL_1", out var y) && y == 1;

    /// <summary>Reads the <c>PretrainedConfig</c> keys shared by every model into a config being built.</summary>
    private protected static T ReadCommon<T>(T config, ConfigReader r) where T : ModelConfig
    {
        var archs = r.StringList("architectures");
        var (id2, l2) = r.LabelMaps();
        return config with
        {
            Architectures = archs,
            Id2Label = id2,
            Label2Id = l2,
            ProblemType = r.NullableString("problem_type", null, "regression", "single_label_classification", "multi_label_classification"),
            TorchDType = r.NullableString("torch_dtype", null),
            TransformersVersion = r.NullableString("transformers_version", null),
            SourcePath = r.File,
        };
    }

    /// <summary>Parses a <c>config.json</c> text into a JSON object, with errors naming the file.</summary>
    internal static JsonObject ParseObject(string json, string file)
    {
        JsonNode? node;
        try
        {
            // Duplicate keys are refused (Python would silently keep the last one).
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 64, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new ConfigException(file, null, $"not valid JSON ({e.Message}). Fix or re-download the file.", e);
        }
        return node as JsonObject ?? throw new ConfigException(file, null, "the top level is not a JSON object.");
    }

    internal static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model config '{path}' does not exist.", path);
        var bytes = File.ReadAllBytes(path);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ConfigException(path, null, "the file is not valid UTF-8.", e);
        }
    }
}
