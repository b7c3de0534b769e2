using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Nn;
using Sharpformer.Optim;

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
/// <param name="EarlyStoppingBest">Early stopping's best metric value so far.</param>
/// <param name="EarlyStoppingPatienceCounter">Evaluations since early stopping's metric last improved.</param>
/// <param name="LogLossSum">Sum of the step losses since the last "log" record (its train_loss is their mean).</param>
/// <param name="LogUpdates">Steps since the last "log" record.</param>
/// <param name="EvalLossSum">Sum of the step losses since the last "eval" record.</param>
/// <param name="EvalUpdates">Steps since the last "eval" record.</param>
/// <param name="WorldSize">Data-parallel processes of the run that wrote it (its micro-batches held per-device batch × this many examples).</param>
/// <param name="PerDeviceBatchSize">The writing run's per-device batch (0 in checkpoints that predate it: the resuming run's is assumed).</param>
public sealed record RunPosition(long GlobalStep, int EpochIndex, int BatchInEpoch, long OptimizerSteps, ulong[] DropoutRngState,
    int Seed, double? BestMetric, string? BestModelCheckpoint, long MaxSteps,
    double? EarlyStoppingBest = null, int EarlyStoppingPatienceCounter = 0,
    double LogLossSum = 0, int LogUpdates = 0, double EvalLossSum = 0, int EvalUpdates = 0, int WorldSize = 1, int PerDeviceBatchSize = 0);

/// <summary>
/// Run checkpoints: <c>checkpoint-&lt;step&gt;/</c> holding <c>model.safetensors</c> (parameters),
/// <c>optimizer.bin</c> (the optimizer's <see cref="Optimizer.SaveState"/>: step count, group learning rates, moment slots),
/// <c>scheduler.bin</c> (<see cref="LrScheduler.SaveState"/>), <c>trainer_state.json</c> (step, data-order position,
/// RNG state, best metric). Written into a temporary sibling directory, then renamed, so a killed
/// process never leaves a half-written checkpoint under the final name.
/// </summary>
public static class RunCheckpoint
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.bin";
    public const string SchedulerFile = "scheduler.bin";
    public const string StateFile = "trainer_state.json";
    const int FormatVersion = 1;
    /// <summary>Name prefix of the directory a save writes before renaming it to checkpoint-&lt;step&gt;.</summary>
    public const string TempPrefix = ".tmp-checkpoint-";

    /// <summary>Writes checkpoint-<c>step</c> under <paramref name="outputDir"/> and returns its path.</summary>
    public static string Save(string outputDir, IReadOnlyList<(string Name, Parameter Parameter)> parameters, Optimizer optimizer, LrScheduler scheduler, RunPosition position)
    {
        Directory.CreateDirectory(outputDir);
        string final = Path.Combine(outputDir, $"checkpoint-{position.GlobalStep}");
        string temp = Path.Combine(outputDir, $"{TempPrefix}{position.GlobalStep}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            SafeTensorsWriter.Write(Path.Combine(temp, ModelFile),
                parameters.Select(p => (p.Name, p.Parameter.Value.ShapeArray, (ReadOnlyMemory<float>)p.Parameter.Value.Data.AsMemory(p.Parameter.Value.Offset, p.Parameter.Size))).ToList());
            using (var f = File.Create(Path.Combine(temp, OptimizerFile))) optimizer.SaveState(f);
            using (var f = File.Create(Path.Combine(temp, SchedulerFile))) scheduler.SaveState(f);
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
                ["early_stopping_best"] = position.EarlyStoppingBest,
                ["early_stopping_patience_counter"] = position.EarlyStoppingPatienceCounter,
                ["log_loss_sum"] = position.LogLossSum,
                ["log_updates"] = position.LogUpdates,
                ["eval_loss_sum"] = position.EvalLossSum,
                ["eval_updates"] = position.EvalUpdates,
                ["world_size"] = position.WorldSize,
                ["per_device_train_batch_size"] = position.PerDeviceBatchSize,
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
                o["max_steps"]!.GetValue<long>(),
                o["early_stopping_best"]?.GetValue<double>(), o["early_stopping_patience_counter"]?.GetValue<int>() ?? 0,
                o["log_loss_sum"]?.GetValue<double>() ?? 0, o["log_updates"]?.GetValue<int>() ?? 0,
                o["eval_loss_sum"]?.GetValue<double>() ?? 0, o["eval_updates"]?.GetValue<int>() ?? 0,
                o["world_size"]?.GetValue<int>() ?? 1, o["per_device_train_batch_size"]?.GetValue<int>() ?? 0);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException($"{path} is corrupt or incomplete ({e.Message}); delete the checkpoint and resume from an earlier one.");
        }
    }

    /// <summary>Copies the checkpoint's parameter values into <paramref name="parameters"/> (names and shapes must match).</summary>
    public static void LoadParameters(string checkpointDir, IReadOnlyList<(string Name, Parameter Parameter)> parameters)
        => LoadInto(Path.Combine(checkpointDir, ModelFile), parameters);

    /// <summary>Restores the optimizer and scheduler state from a checkpoint; <paramref name="stepCount"/> is the optimizer step count the position recorded.</summary>
    public static void LoadOptimizer(string checkpointDir, Optimizer optimizer, LrScheduler scheduler, long stepCount)
    {
        LoadState(Path.Combine(checkpointDir, OptimizerFile), optimizer.LoadState);
        LoadState(Path.Combine(checkpointDir, SchedulerFile), scheduler.LoadState);
        if (optimizer.StepCount != stepCount)
            throw new CheckpointFormatException($"{Path.Combine(checkpointDir, OptimizerFile)} holds {optimizer.StepCount} optimizer steps but {StateFile} records {stepCount}; the checkpoint is inconsistent.");
    }

    static void LoadState(string file, Action<Stream> load)
    {
        if (!File.Exists(file)) throw new CheckpointFormatException($"{file} does not exist; the checkpoint is incomplete.");
        try
        {
            using var f = File.OpenRead(file);
            load(f);
        }
        catch (OptimizerException e)
        {
            throw new CheckpointFormatException($"{file}: {e.Message} The checkpoint does not belong to this model and arguments, or is corrupt.");
        }
    }

    static void LoadInto(string file, IReadOnlyList<(string Name, Parameter Parameter)> targets)
    {
        using var tensors = Read(file);
        foreach (var (name, p) in targets)
        {
            if (!tensors.TryGetValue(name, out var t)) throw new CheckpointFormatException($"{file} has no tensor '{name}'; it was saved from a different model.");
            if (t.ElementCount != p.Size) throw new CheckpointFormatException($"{file}: '{name}' holds {t.ElementCount} values, the model expects {p.Size}.");
            t.CopyTo(p.Value.AsSpan());
        }
    }

    static StateDict Read(string file)
    {
        if (!File.Exists(file)) throw new CheckpointFormatException($"{file} does not exist; the checkpoint is incomplete.");
        return SafeTensorsReader.Read(file);
    }

    /// <summary>
    /// Deletes the <c>.tmp-checkpoint-*</c> directories that saves of a killed process left under
    /// <paramref name="outputDir"/> (a save renames its temporary directory only once it is complete, so these are
    /// never valid checkpoints); returns how many were removed. Call it only when no other run writes to the directory.
    /// </summary>
    public static int RemoveAbandonedSaves(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return 0;
        int removed = 0;
        foreach (var dir in Directory.GetDirectories(outputDir, TempPrefix + "*"))
        {
            Directory.Delete(dir, recursive: true);
            removed++;
        }
        return removed;
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
