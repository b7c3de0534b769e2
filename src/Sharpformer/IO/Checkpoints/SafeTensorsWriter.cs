using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Writes safetensors files in the layout Hugging Face uses: u64-LE header size, compact JSON header with
/// <c>"__metadata__"</c> first, tensors sorted by name and stored back to back in that order, header padded with
/// spaces to a multiple of 8 bytes, little-endian data.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> atomically (temp file + rename).</summary>
    /// <remarks>String <paramref name="metadata"/> goes to <c>__metadata__</c>; <c>format: pt</c> is added when absent because transformers refuses files without it.</remarks>
    public static void Write(string path, IEnumerable<CheckpointTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = Prepare(tensors);
        AtomicFile.Write(path, s => WriteTo(s, list, metadata));
    }

    /// <summary>Writes float32 tensors given as (name, shape, data), streaming from the given memory without copying it.</summary>
    public static void Write(string path, IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors.Select(t => CheckpointTensor.WrapFloat32(t.Name, t.Data, t.Shape)).ToList(), metadata);

    /// <summary>Writes to a stream (not atomic; for in-memory use and tests).</summary>
    public static void Write(Stream stream, IEnumerable<CheckpointTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteTo(stream, Prepare(tensors), metadata);

    /// <summary>The whole file image in memory.</summary>
    public static byte[] ToBytes(IEnumerable<CheckpointTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ms = new MemoryStream();
        Write(ms, tensors, metadata);
        return ms.ToArray();
    }

    static List<CheckpointTensor> Prepare(IEnumerable<CheckpointTensor> tensors)
    {
        var list = tensors.OrderBy(t => t.Name, PyJson.CodePointComparer.Instance).ToList();
        for (int i = 1; i < list.Count; i++)
            if (list[i].Name == list[i - 1].Name)
                throw new ArgumentException($"Duplicate tensor name '{list[i].Name}': safetensors names must be unique (drop tied copies before saving).");
        if (list.Any(t => t.Name == "__metadata__"))
            throw new ArgumentException("A tensor cannot be named '__metadata__' (reserved by safetensors).");
        return list;
    }

    static void WriteTo(Stream stream, List<CheckpointTensor> list, IReadOnlyDictionary<string, string>? metadata)
    {
        var meta = new JsonObject();
        if (metadata is null || !metadata.ContainsKey("format")) meta["format"] = "pt";
        if (metadata is not null)
            foreach (var (k, v) in metadata) meta[k] = v;

        var header = new JsonObject { ["__metadata__"] = meta };
        long offset = 0;
        foreach (var t in list)
        {
            var shape = new JsonArray();
            foreach (var d in t.Shape) shape.Add(d);
            header[t.Name] = new JsonObject
            {
                ["dtype"] = DTypes.SafeTensorsName(t.DType),
                ["shape"] = shape,
                ["data_offsets"] = new JsonArray(offset, offset + t.ByteLength),
            };
            offset += t.ByteLength;
        }
        var json = Encoding.UTF8.GetBytes(PyJson.Serialize(header, indent: null, sortKeys: false));
        int padded = (json.Length + 7) / 8 * 8;
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        stream.Write(len);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var t in list) t.WriteBytesTo(stream);
    }
}
