using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Sharpformer.Checkpoints;

/// <summary>Where a <see cref="StateDict"/> was read from.</summary>
public enum CheckpointFormat
{
    /// <summary>Built in memory.</summary>
    InMemory,
    /// <summary>One <c>model.safetensors</c> file.</summary>
    SafeTensors,
    /// <summary><c>model.safetensors.index.json</c> plus shard files.</summary>
    SafeTensorsSharded,
    /// <summary>A torch zip pickle (<c>pytorch_model.bin</c>, torch ≥ 1.6).</summary>
    TorchZip,
}

/// <summary>
/// Name → tensor map of a checkpoint, in file order. Owns the memory maps behind its tensors: dispose it once the
/// values have been copied into the model.
/// </summary>
public sealed class StateDict : IReadOnlyDictionary<string, CheckpointTensor>, Nn.IWeightSource, IDisposable
{
    readonly Dictionary<string, CheckpointTensor> _byName = new(StringComparer.Ordinal);
    readonly List<string> _order = [];
    readonly List<ByteSource> _owned = [];

    internal StateDict(string path, CheckpointFormat format, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Path = path;
        Format = format;
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    /// <summary>Builds an in-memory state dict (e.g. for <see cref="SafeTensorsWriter"/>). Names must be unique.</summary>
    public StateDict(IEnumerable<CheckpointTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        : this("<memory>", CheckpointFormat.InMemory, metadata)
    {
        foreach (var t in tensors)
            if (!TryAdd(t)) throw new ArgumentException($"Duplicate tensor name '{t.Name}'.", nameof(tensors));
    }

    /// <summary>The file that was loaded (for sharded checkpoints: the index JSON).</summary>
    public string Path { get; }

    public CheckpointFormat Format { get; }

    /// <summary>Every file the tensors come from (the shards of a sharded checkpoint).</summary>
    public IReadOnlyList<string> SourceFiles => _sourceFiles;
    readonly List<string> _sourceFiles = [];

    /// <summary>safetensors <c>__metadata__</c> (e.g. <c>format: pt</c>); empty for .bin.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in file order.</summary>
    public IReadOnlyList<string> Names => _order;

    internal bool TryAdd(CheckpointTensor tensor)
    {
        if (!_byName.TryAdd(tensor.Name, tensor)) return false;
        _order.Add(tensor.Name);
        return true;
    }

    internal void Own(ByteSource source) => _owned.Add(source);

    /// <summary>Takes over the memory maps and source files of a shard (its tensors are added separately).</summary>
    internal void Adopt(StateDict part)
    {
        _owned.AddRange(part._owned);
        part._owned.Clear();
        _sourceFiles.AddRange(part._sourceFiles);
    }
    internal void AddSourceFile(string file) => _sourceFiles.Add(file);

    public CheckpointTensor this[string key] => _byName.TryGetValue(key, out var t)
        ? t
        : throw new KeyNotFoundException($"Checkpoint '{Path}' has no tensor named '{key}'.");

    public IEnumerable<string> Keys => _order;
    public IEnumerable<CheckpointTensor> Values => _order.Select(n => _byName[n]);
    public int Count => _order.Count;
    public bool ContainsKey(string key) => _byName.ContainsKey(key);
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out CheckpointTensor value) => _byName.TryGetValue(key, out value);

    public IEnumerator<KeyValuePair<string, CheckpointTensor>> GetEnumerator()
    {
        foreach (var n in _order) yield return new KeyValuePair<string, CheckpointTensor>(n, _byName[n]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    string Nn.IWeightSource.Source => Path;
    IReadOnlyList<int>? Nn.IWeightSource.ShapeOf(string key) => _byName.TryGetValue(key, out var t) ? t.Shape : null;
    void Nn.IWeightSource.CopyTo(string key, Span<float> destination) => this[key].CopyTo(destination);

    /// <summary>Releases the memory maps; tensors of this dict can no longer be read.</summary>
    public void Dispose()
    {
        foreach (var s in _owned) s.Dispose();
        _owned.Clear();
    }
}
