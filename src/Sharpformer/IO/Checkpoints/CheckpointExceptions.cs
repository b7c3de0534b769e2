namespace Sharpformer.Checkpoints;

/// <summary>
/// A checkpoint file (safetensors, torch zip, index JSON) is malformed: truncated, inconsistent header, bad offsets,
/// unknown dtype, a pickle that is not a state dict. <see cref="File"/> names the file, <see cref="Problem"/> says what is wrong.
/// </summary>
public class CheckpointFormatException : SharpformerException
{
    public CheckpointFormatException(string file, string problem, string? hint = null, Exception? inner = null)
        : base($"Invalid checkpoint '{file}': {problem}. {hint ?? DefaultHint}", inner)
    {
        File = file;
        Problem = problem;
    }

    const string DefaultHint = "The file is corrupt or truncated; re-download it or re-save the model (save_pretrained / safetensors).";

    /// <summary>The file (or in-memory source name) that failed to load.</summary>
    public string File { get; }

    /// <summary>What exactly is wrong, without the advice part.</summary>
    public string Problem { get; }
}

/// <summary>Which resource bound of <see cref="TorchCheckpointLimits"/> a checkpoint exceeded.</summary>
public enum CheckpointLimit
{
    /// <summary>The decompressed <c>data.pkl</c> (<see cref="TorchCheckpointLimits.MaxPickleBytes"/>).</summary>
    PickleBytes,
    /// <summary>All zip entries together decompress to more than the archive holds (a zip bomb).</summary>
    DecompressedBytes,
    /// <summary>Objects the unpickler builds (<see cref="TorchCheckpointLimits.MaxUnpickledBytes"/>).</summary>
    UnpickledObjects,
    /// <summary>Copies of non-contiguous tensor views (<see cref="TorchCheckpointLimits.MaxMaterializedBytes"/>).</summary>
    MaterializedBytes,
}

/// <summary>
/// A checkpoint would need far more memory than its size justifies (decompression bomb, object flood, many copied views):
/// refused before the memory is taken. <see cref="Limit"/> says which bound; <see cref="LimitBytes"/> its value.
/// </summary>
public sealed class CheckpointLimitException : CheckpointFormatException
{
    public CheckpointLimitException(string file, CheckpointLimit limit, long limitBytes, string problem, string hint)
        : base(file, $"{problem} (limit {limit}: {limitBytes} bytes)", hint)
    {
        Limit = limit;
        LimitBytes = limitBytes;
    }

    public CheckpointLimit Limit { get; }
    public long LimitBytes { get; }
}

/// <summary>
/// A torch pickle asked for a Python global outside the small allow-list a state dict needs
/// (e.g. <c>os.system</c>, <c>builtins.eval</c>). Nothing was executed: the unpickler never runs code.
/// </summary>
public sealed class UnsafePickleException : SharpformerException
{
    public UnsafePickleException(string file, string global)
        : base($"Refusing to load '{file}': its pickle references the Python global '{global}', which a PyTorch state dict never needs " +
               "and which could run code in Python. Only load checkpoints you trust; prefer model.safetensors, or convert the .bin " +
               "to safetensors in a sandbox.")
    {
        File = file;
        Global = global;
    }

    public string File { get; }

    /// <summary>The refused global as <c>module.name</c>.</summary>
    public string Global { get; }
}

/// <summary>A model configuration (<c>config.json</c>) is missing a required key, has a wrong type or an inconsistent value.</summary>
public sealed class ConfigException : SharpformerException
{
    public ConfigException(string file, string? key, string problem, Exception? inner = null)
        : base(key is null ? $"Invalid model config '{file}': {problem}" : $"Invalid model config '{file}', key '{key}': {problem}", inner)
    {
        File = file;
        Key = key;
    }

    public string File { get; }
    public string? Key { get; }
}
