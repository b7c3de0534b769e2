using System.Collections.Concurrent;
using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Xunit.Abstractions;

namespace Sharpformer.Tests.Models;

/// <summary>One case of a fixture's expected.json: its encoding as an <see cref="EncoderInput"/> plus the raw JSON.</summary>
public sealed record FixtureCase(string Name, EncoderInput Input, JsonElement Json)
{
    public JsonElement Outputs => Json.GetProperty("outputs");
    public JsonElement BaseOutputs => Json.GetProperty("base_model_outputs");
}

/// <summary>Parsed expected.json of one fixture directory.</summary>
public sealed class FixtureExpectation
{
    public FixtureExpectation(string dir)
    {
        Dir = dir;
        Path = SharedData.Fixture(dir);
        Root = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(Path, "expected.json"))).RootElement;
        Cases = Root.GetProperty("cases").EnumerateArray().Select(c => new FixtureCase(c.GetProperty("name").GetString()!, ToInput(c.GetProperty("encoding")), c)).ToArray();
    }

    public string Dir { get; }
    public string Path { get; }
    public JsonElement Root { get; }
    public IReadOnlyList<FixtureCase> Cases { get; }
    public string ModelClass => Root.GetProperty("model_class").GetString()!;
    public bool HasBin => Root.GetProperty("files").GetProperty("pytorch_model.bin").GetBoolean();

    public static EncoderInput ToInput(JsonElement enc)
    {
        static int[][] Rows(JsonElement e) => e.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        var ids = Rows(enc.GetProperty("input_ids"));
        var tt = enc.TryGetProperty("token_type_ids", out var t) ? Rows(t) : null;
        var am = Rows(enc.GetProperty("attention_mask"));
        return EncoderInput.FromRows(ids, tt, am);
    }
}

/// <summary>
/// Loads every fixture model once per test run (checkpoints are ~8 MB each), keyed by directory, class and checkpoint file.
/// </summary>
public static class FixtureModels
{
    public static readonly string[] Dirs =
    [
        "bert-tiny-uncased-seqcls", "bert-tiny-uncased-tokcls", "bert-tiny-uncased-mlm", "bert-tiny-cased-tokcls",
        "distilbert-tiny-uncased-seqcls", "distilbert-tiny-uncased-tokcls",
    ];

    static readonly ConcurrentDictionary<string, Lazy<FixtureExpectation>> Expectations = new();
    static readonly ConcurrentDictionary<(string, bool, CheckpointPreference), Lazy<PretrainedModel>> Models = new();

    public static FixtureExpectation Expected(string dir) => Expectations.GetOrAdd(dir, d => new Lazy<FixtureExpectation>(() => new FixtureExpectation(d))).Value;

    /// <summary>The head model (config's architecture) or, with <paramref name="baseModel"/>, the bare encoder as the fixtures' base_model_outputs load it.</summary>
    public static PretrainedModel Model(string dir, bool baseModel, CheckpointPreference checkpoint = CheckpointPreference.SafeTensorsOnly) =>
        Models.GetOrAdd((dir, baseModel, checkpoint), key => new Lazy<PretrainedModel>(() => Load(key.Item1, key.Item2, key.Item3))).Value;

    static PretrainedModel Load(string dir, bool baseModel, CheckpointPreference checkpoint)
    {
        var exp = Expected(dir);
        var options = new ModelLoadOptions { Checkpoint = checkpoint };
        if (baseModel)
        {
            var cls = exp.Root.GetProperty("base_model_class").GetString()!;
            bool pooling = !exp.Root.GetProperty("base_model_from_pretrained_kwargs").TryGetProperty("add_pooling_layer", out var p) || p.GetBoolean();
            options = options with { Architecture = cls, AddPoolingLayer = pooling };
        }
        return AutoModel.FromPretrained(exp.Path, options);
    }

    /// <summary>Flattens a nested JSON number array into values and shape.</summary>
    public static (double[] Values, int[] Shape) Flatten(JsonElement e)
    {
        var shape = new List<int>();
        for (var x = e; x.ValueKind == JsonValueKind.Array; x = x[0]) shape.Add(x.GetArrayLength());
        var values = new List<double>();
        void Walk(JsonElement n)
        {
            if (n.ValueKind == JsonValueKind.Array) foreach (var c in n.EnumerateArray()) Walk(c);
            else values.Add(n.GetDouble());
        }
        Walk(e);
        return (values.ToArray(), shape.ToArray());
    }

    public static string Index(int flat, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = flat % shape[d]; flat /= shape[d]; }
        return "[" + string.Join(", ", idx) + "]";
    }
}

/// <summary>Collects the worst absolute difference per quantity and fails naming dir, case, quantity and element.</summary>
public sealed class ParityCheck(string dir, double tolerance)
{
    readonly Dictionary<string, (double Diff, string Where)> _worst = new();
    readonly List<string> _failures = [];

    public void Compare(string caseName, string quantity, JsonElement expected, Tensor actual) => Compare(caseName, quantity, expected, actual.Contiguous().ToArray(), actual.ShapeArray);

    public void Compare(string caseName, string quantity, JsonElement expected, float[] actual, int[] actualShape)
    {
        var (values, shape) = FixtureModels.Flatten(expected);
        if (!shape.SequenceEqual(actualShape))
        {
            _failures.Add($"{dir}/{caseName}/{quantity}: shape [{string.Join(", ", actualShape)}], expected [{string.Join(", ", shape)}]");
            return;
        }
        double worst = -1; int at = 0;
        for (int i = 0; i < values.Length; i++)
        {
            double d = Math.Abs(values[i] - actual[i]);
            if (double.IsNaN(d)) d = double.PositiveInfinity;
            if (d > worst) { worst = d; at = i; }
        }
        Record(caseName, quantity, worst, $"{FixtureModels.Index(at, shape)}: got {actual[at]:R}, expected {values[at]:R}");
    }

    public void Record(string caseName, string quantity, double diff, string where)
    {
        if (!_worst.TryGetValue(quantity, out var w) || diff > w.Diff) _worst[quantity] = (diff, $"{caseName} {where}");
        if (diff > tolerance) _failures.Add($"{dir}/{caseName}/{quantity}: |Δ| = {diff:E3} > {tolerance:E0} at {where}");
    }

    public void Exact(string caseName, string quantity, bool equal, string where)
    {
        if (!equal) _failures.Add($"{dir}/{caseName}/{quantity}: mismatch at {where}");
    }

    public string Summary() => string.Join("\n", _worst.OrderBy(k => k.Key).Select(k => $"{dir} {k.Key}: worst |Δ| {k.Value.Diff:E3} ({k.Value.Where})"));

    public void AssertAll(ITestOutputHelper output)
    {
        output.WriteLine(Summary());
        Assert.True(_failures.Count == 0, string.Join("\n", _failures.Take(20)) + (_failures.Count > 20 ? $"\n… {_failures.Count - 20} more" : ""));
    }
}
