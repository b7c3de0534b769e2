using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Models;

namespace Sharpformer.Training;

/// <summary>A checkpoint or run directory is missing, corrupt or from another model/run.</summary>
public sealed class CheckpointFormatException(string message) : SharpformerException(message);

/// <summary>The resumable position saved in <c>trainer_state.json</c>.</summary>
/// <param name="GlobalStep">Optimizer updates done.</param>
/// <param name="EpochIndex">Epoch the next batch belongs to (0-based).</param>
/// <param name="BatchInEpoch">Index of the next micro-batch within that epoch's order.</param>
/// <param name="OptimizerSteps">The optimizer's bias-correction count.</param>
/// <param name="DropoutRngState">State of the dropout generator.</param>
/// <param name="Seed">The run's seed (the data order of epoch e is a function of seed and e).</param>
/// <param name="BestMetric">Best metric so far.</param>
/// <param name="BestModelCheckpoint">Directory name of the best checkpoint.</param>
/// <param name="MaxSteps">Planned updates.</param>
public sealed record RunPosition(long GlobalStep, int EpochIndex, int BatchInEpoch, long OptimizerSteps, ulong[] DropoutRngState,
    int Seed, double? BestMetric, string? BestModelCheckpoint, long MaxSteps);

/// <summary>
/// Run checkpoints: <c>checkpoint-&lt;step&gt;/</c> holding <c>model.safetensors</c> (parameters),
/// <c>optimizer.safetensors</c> (moment slots), <c>trainer_state.json</c> (step, data-order position,
/// RNG state, best metric). Written into a temporary sibling directory, then renamed, so a killed
/// process never leaves a half-written checkpoint under the final name.
/// </summary>
public static class RunCheckpoint
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "trainer_state.json";
    const int FormatVersion = 1;

    /// <summary>Writes checkpoint-<c>step</c> under <paramref name="outputDir"/> and returns its path.</summary>
    public static string Save(string outputDir, IReadOnlyList<FlatParameter> parameters, IFlatOptimizer optimizer, RunPosition position)
    {
        Directory.CreateDirectory(outputDir);
        string final = Path.Combine(outputDir, $"checkpoint-{position.GlobalStep}");
        string temp = Path.Combine(outputDir, $".tmp-checkpoint-{position.GlobalStep}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            SafeTensorsFile.Write(Path.Combine(temp, ModelFile), parameters.Select(p => (p.Name, p.Shape, p.Value)).ToList());
            SafeTensorsFile.Write(Path.Combine(temp, OptimizerFile),
                optimizer.StateTensors().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, new[] { kv.Value.Length }, kv.Value)).ToList());
            var state = new JsonObject
            {
                ["format_version"] = FormatVersion,
                ["global_step"] = position.GlobalStep,
                ["max_steps"] = position.MaxSteps,
                ["epoch_index"] = position.EpochIndex,
                ["batch_in_epoch"] = position.BatchInEpoch,
                ["optimizer_steps"] = position.OptimizerSteps,
                ["seed"] = position.Seed,
                ["dropout_rng_state"] = new JsonArray(position.DropoutRngState.Select(s => (JsonNode)s.ToString()).ToArray()),
                ["best_metric"] = position.BestMetric,
                ["best_model_checkpoint"] = position.BestModelCheckpoint,
            };
            File.WriteAllText(Path.Combine(temp, StateFile), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(temp, final);
        }
        catch
        {
            try { Directory.Delete(temp, recursive: true); } catch (IOException) { }
            throw;
        }
        return final;
    }

    /// <summary>Reads the position of a checkpoint directory.</summary>
    public static RunPosition ReadPosition(string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, StateFile);
        if (!File.Exists(path)) throw new CheckpointFormatException($"'{checkpointDir}' is not a run checkpoint: {StateFile} is missing.");
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            int version = o["format_version"]!.GetValue<int>();
            if (version != FormatVersion) throw new CheckpointFormatException($"{path}: format_version {version} is not supported (expected {FormatVersion}).");
            return new RunPosition(
                o["global_step"]!.GetValue<long>(), o["epoch_index"]!.GetValue<int>(), o["batch_in_epoch"]!.GetValue<int>(),
                o["optimizer_steps"]!.GetValue<long>(),
                o["dropout_rng_state"]!.AsArray().Select(n => ulong.Parse(n!.GetValue<string>())).ToArray(),
                o["seed"]!.GetValue<int>(), o["best_metric"]?.GetValue<double>(), o["best_model_checkpoint"]?.GetValue<string>(),
                o["max_steps"]!.GetValue<long>());
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException($"{path} is corrupt or incomplete ({e.Message}); delete the checkpoint and resume from an earlier one.");
        }
    }

    /// <summary>Copies the checkpoint's parameter values into <paramref name="parameters"/> (names and shapes must match).</summary>
    public static void LoadParameters(string checkpointDir, IReadOnlyList<FlatParameter> parameters)
        => LoadInto(Path.Combine(checkpointDir, ModelFile), parameters.Select(p => (p.Name, p.Value)).ToList());

    /// <summary>Restores the optimizer state from a checkpoint.</summary>
    public static void LoadOptimizer(string checkpointDir, IFlatOptimizer optimizer, long stepCount)
    {
        var tensors = SafeTensorsFile.Read(Path.Combine(checkpointDir, OptimizerFile));
        optimizer.LoadState(tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Data), stepCount);
    }

    static void LoadInto(string file, IReadOnlyList<(string Name, float[] Value)> targets)
    {
        var tensors = SafeTensorsFile.Read(file);
        foreach (var (name, value) in targets)
        {
            if (!tensors.TryGetValue(name, out var t)) throw new CheckpointFormatException($"{file} has no tensor '{name}'; it was saved from a different model.");
            if (t.Data.Length != value.Length) throw new CheckpointFormatException($"{file}: '{name}' holds {t.Data.Length} values, the model expects {value.Length}.");
            t.Data.CopyTo(value, 0);
        }
    }

    /// <summary>The checkpoint-&lt;step&gt; directories under <paramref name="outputDir"/>, oldest step first.</summary>
    public static IReadOnlyList<string> List(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return [];
        return Directory.GetDirectories(outputDir, "checkpoint-*")
            .Select(d => (Dir: d, Ok: long.TryParse(Path.GetFileName(d)["checkpoint-".Length..], out var s), Step: s))
            .Where(x => x.Ok && File.Exists(Path.Combine(x.Dir, StateFile)))
            .OrderBy(x => x.Step).Select(x => x.Dir).ToList();
    }
}

/// <summary>Minimal float32 safetensors reader/writer for run checkpoints.</summary>
/// <remarks>
/// Layout: u64-LE header length, JSON header {name: {dtype, shape, data_offsets}} with "__metadata__",
/// space-padded to a multiple of 8, then the little-endian data.
/// </remarks>
internal static class SafeTensorsFile
{
    public static void Write(string path, IReadOnlyList<(string Name, int[] Shape, float[] Data)> tensors)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, shape, data) in tensors)
        {
            long bytes = (long)data.Length * 4;
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (headerBytes.Length + 7) / 8 * 8;
        string temp = path + ".tmp";
        using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            fs.Write(len);
            fs.Write(headerBytes);
            for (int i = headerBytes.Length; i < padded; i++) fs.WriteByte((byte)' ');
            foreach (var (_, _, data) in tensors)
            {
                if (!BitConverter.IsLittleEndian) throw new NotSupportedException("Big-endian hosts are not supported.");
                fs.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            }
        }
        File.Move(temp, path, overwrite: true);
    }

    public static Dictionary<string, (int[] Shape, float[] Data)> Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException($"{path} does not exist.");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new CheckpointFormatException($"{path} is too short to be a safetensors file.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLen > (ulong)(bytes.Length - 8)) throw new CheckpointFormatException($"{path}: header length {headerLen} exceeds the file size.");
        JsonObject header;
        try { header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLen))!.AsObject(); }
        catch (JsonException e) { throw new CheckpointFormatException($"{path}: the header is not valid JSON ({e.Message})."); }
        int dataStart = 8 + (int)headerLen;
        var result = new Dictionary<string, (int[], float[])>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            var o = node!.AsObject();
            string dtype = o["dtype"]!.GetValue<string>();
            if (dtype != "F32") throw new CheckpointFormatException($"{path}: tensor '{name}' is {dtype}; run checkpoints hold F32 only.");
            var shape = o["shape"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
            long start = o["data_offsets"]![0]!.GetValue<long>(), end = o["data_offsets"]![1]!.GetValue<long>();
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (end - start != count * 4 || dataStart + end > bytes.Length || start < 0)
                throw new CheckpointFormatException($"{path}: tensor '{name}' has offsets [{start}, {end}) inconsistent with shape [{string.Join(",", shape)}] or the file size.");
            var data = new float[count];
            MemoryMarshal.Cast<byte, float>(bytes.AsSpan(dataStart + (int)start, (int)(end - start))).CopyTo(data);
            result[name] = (shape, data);
        }
        return result;
    }
}
