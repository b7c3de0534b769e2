namespace Sharpformer.Checkpoints;

/// <summary>
/// Memory caps for reading a torch <c>.bin</c>, which may come from anyone. Each cap is combined with a bound derived from
/// the file itself, so a small file can only ever cost memory in proportion to its size, whatever the caps say.
/// </summary>
/// <remarks>
/// The derived bounds: all zip entries together decompress to at most the archive's size + 1 MiB (<c>torch.save</c> stores
/// entries uncompressed); the unpickler builds at most <see cref="UnpickledBytesPerPickleByte"/> bytes of objects per pickle
/// byte (real state dicts need 10–15: memo entries and tuples; an opcode flood needs 48); copies of non-contiguous views total at most
/// 1 MiB + <see cref="MaterializedPerStorageByte"/> × the bytes of the storages the state dict references (views never
/// outgrow their storage unless they overlap). Exceeding any bound raises <see cref="CheckpointLimitException"/>.
/// </remarks>
public sealed record TorchCheckpointLimits
{
    /// <summary>The caps <see cref="TorchCheckpointReader.Read(string, TorchCheckpointLimits?)"/> uses when none are given.</summary>
    public static TorchCheckpointLimits Default { get; } = new();

    /// <summary>Largest decompressed <c>data.pkl</c>; real ones are kilobytes (a few MB for tens of thousands of tensors).</summary>
    public long MaxPickleBytes { get; init; } = 64L << 20;

    /// <summary>Largest estimated memory of the Python objects (dicts, tuples, strings, ...) the unpickler builds.</summary>
    public long MaxUnpickledBytes { get; init; } = 256L << 20;

    /// <summary>Largest total of bytes copied to make non-contiguous (transposed, strided, broadcast) views row-major.</summary>
    public long MaxMaterializedBytes { get; init; } = 4L << 30;

    /// <summary>Derived bound on unpickled objects per pickle byte (also applied to tiny pickles as a 1 MiB floor).</summary>
    public const int UnpickledBytesPerPickleByte = 32;

    /// <summary>Derived bound on materialized view bytes per byte of the storages the state dict references.</summary>
    public const int MaterializedPerStorageByte = 2;
}
