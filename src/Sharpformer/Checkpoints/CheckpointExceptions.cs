namespace Sharpformer.Checkpoints;

/// <summary>
/// A checkpoint file (safetensors, torch zip, index JSON) is malformed: truncated, inconsistent header, bad offsets,
/// unknown dtype, a pickle that is not a state dict. <see cref="File"/> names the file, <see cref="Problem"/> says what is wrong.
/// </summary>
public sealed class CheckpointFormatException : SharpformerException
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
