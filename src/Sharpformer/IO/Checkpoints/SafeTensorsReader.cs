using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Unicode;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Reads the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}</c>, then the data region.
/// </summary>
/// <remarks>
/// Validation follows the reference Rust reader: the header must fit in the file and start with '{'; offsets are
/// relative to the data region and, sorted, must tile it exactly (no gap, no overlap, nothing left over);
/// <c>end − begin = Π shape × sizeof(dtype)</c>. Every violation is a <see cref="CheckpointFormatException"/>.
/// </remarks>
public static class SafeTensorsReader
{
    /// <summary>Largest header accepted (same limit as the Rust <c>safetensors</c> crate).</summary>
    public const int MaxHeaderBytes = 100_000_000;

    /// <summary>Memory-maps <paramref name="path"/>; tensors read from the map until the result is disposed.</summary>
    public static StateDict Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint file '{path}' does not exist.", path);
        long length = new FileInfo(path).Length;
        if (length < 8) throw new CheckpointFormatException(path, $"the file has {length} bytes, fewer than the 8-byte header length");
        var source = new MemoryMappedByteSource(path, length);
        try
        {
            return Parse(source, path, CheckpointFormat.SafeTensors);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Parses a safetensors image held in memory (no copy; the buffer must stay unchanged while used).</summary>
    public static StateDict Read(ReadOnlyMemory<byte> bytes, string sourceName = "<memory>") =>
        Parse(new ArrayByteSource(bytes), sourceName, CheckpointFormat.SafeTensors);

    /// <summary>Reads the whole stream into memory and parses it.</summary>
    public static StateDict Read(Stream stream, string sourceName = "<stream>")
    {
        var ms = new MemoryStream();
        stream.CopyTo(ms);
        return Read(ms.GetBuffer().AsMemory(0, (int)ms.Length), sourceName);
    }

    internal static StateDict Parse(ByteSource source, string file, CheckpointFormat format)
    {
        long fileLength = source.Length;
        if (fileLength < 8) throw Fail(file, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(source.Span(0, 8));
        if (n > (ulong)(fileLength - 8))
            throw Fail(file, $"the header length field says {n} bytes but only {fileLength - 8} bytes follow it (truncated file?)");
        if (n > MaxHeaderBytes) throw Fail(file, $"the header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        if (n < 2) throw Fail(file, $"the header length {n} is too small for a JSON object");
        int headerLength = (int)n;
        var header = source.Span(8, headerLength);
        if (header[0] != (byte)'{') throw Fail(file, "the header does not start with '{'");
        if (!Utf8.IsValid(header)) throw Fail(file, "the header is not valid UTF-8");

        long dataStart = 8 + headerLength;
        long dataLength = fileLength - dataStart;

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<(string Name, DType DType, int[] Shape, long Begin, long End)>();
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Fail(file, $"the header is not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Fail(file, "the header is not a JSON object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Fail(file, $"duplicate entry '{prop.Name}' in the header");
                if (prop.Name == "__metadata__")
                {
                    ReadMetadata(prop.Value, metadata, file);
                    continue;
                }
                entries.Add(ReadEntry(prop.Name, prop.Value, dataLength, file));
            }
        }

        // The data region must be tiled exactly by the tensors, in offset order.
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        foreach (var e in sorted)
        {
            if (e.Begin != expected)
                throw Fail(file, e.Begin < expected
                    ? $"tensor '{e.Name}' data [{e.Begin}, {e.End}) overlaps the previous tensor, which ends at {expected}"
                    : $"tensor '{e.Name}' data starts at {e.Begin} but the previous tensor ends at {expected} (a hole in the data region)");
            expected = e.End;
        }
        if (expected != dataLength)
            throw Fail(file, $"the tensors cover {expected} bytes of data but the data region holds {dataLength} bytes (truncated or extra bytes)");

        var dict = new StateDict(file, format, metadata);
        dict.AddSourceFile(file);
        foreach (var e in entries)
            dict.TryAdd(new CheckpointTensor(e.Name, e.Shape, e.DType, source, dataStart + e.Begin, file));
        dict.Own(source);
        return dict;
    }

    static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string file)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object) throw Fail(file, "\"__metadata__\" is not a JSON object of strings");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw Fail(file, $"\"__metadata__\" value of '{m.Name}' is a {m.Value.ValueKind}, not a string");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Fail(file, $"duplicate \"__metadata__\" key '{m.Name}'");
        }
    }

    static (string, DType, int[], long, long) ReadEntry(string name, JsonElement info, long dataLength, string file)
    {
        if (info.ValueKind != JsonValueKind.Object) throw Fail(file, $"entry '{name}' is a {info.ValueKind}, not an object");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var p in info.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype": if (dtypeEl is not null) throw Fail(file, $"tensor '{name}': duplicate \"dtype\""); dtypeEl = p.Value; break;
                case "shape": if (shapeEl is not null) throw Fail(file, $"tensor '{name}': duplicate \"shape\""); shapeEl = p.Value; break;
                case "data_offsets": if (offsetsEl is not null) throw Fail(file, $"tensor '{name}': duplicate \"data_offsets\""); offsetsEl = p.Value; break;
            }
        }
        if (dtypeEl is not { } dt) throw Fail(file, $"tensor '{name}' has no \"dtype\"");
        if (shapeEl is not { } sh) throw Fail(file, $"tensor '{name}' has no \"shape\"");
        if (offsetsEl is not { } of) throw Fail(file, $"tensor '{name}' has no \"data_offsets\"");

        if (dt.ValueKind != JsonValueKind.String) throw Fail(file, $"tensor '{name}': \"dtype\" is a {dt.ValueKind}, not a string");
        var dtypeName = dt.GetString()!;
        if (!DTypes.TryParseSafeTensorsName(dtypeName, out var dtype))
            throw Fail(file, $"tensor '{name}' has unsupported dtype '{dtypeName}' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");

        if (sh.ValueKind != JsonValueKind.Array) throw Fail(file, $"tensor '{name}': \"shape\" is a {sh.ValueKind}, not an array");
        var shape = new int[sh.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v))
                throw Fail(file, $"tensor '{name}': shape element {i} ({d.GetRawText()}) is not an integer");
            if (v < 0) throw Fail(file, $"tensor '{name}': negative dimension {v} in the shape");
            if (v > int.MaxValue) throw Fail(file, $"tensor '{name}': dimension {v} is larger than {int.MaxValue}");
            shape[i++] = (int)v;
            // Saturate instead of overflowing: any count above the data length is rejected below anyway.
            count = count == 0 || v == 0 ? 0 : (count > long.MaxValue / 8 / v ? long.MaxValue / 8 : count * v);
        }

        if (of.ValueKind != JsonValueKind.Array || of.GetArrayLength() != 2)
            throw Fail(file, $"tensor '{name}': \"data_offsets\" must be an array [begin, end]");
        long begin = ReadOffset(of[0], name, "begin", file), end = ReadOffset(of[1], name, "end", file);
        if (end < begin) throw Fail(file, $"tensor '{name}': data_offsets end {end} is before begin {begin}");
        if (end > dataLength)
            throw Fail(file, $"tensor '{name}': data_offsets [{begin}, {end}] run past the end of the data region ({dataLength} bytes; truncated file?)");
        long bytes = count * DTypes.SizeOf(dtype);
        if (bytes != end - begin)
            throw Fail(file, $"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtypeName} needs {bytes} bytes but data_offsets [{begin}, {end}] span {end - begin}");
        return (name, dtype, shape, begin, end);
    }

    static long ReadOffset(JsonElement el, string name, string which, string file)
    {
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt64(out long v) || v < 0)
            throw Fail(file, $"tensor '{name}': data_offsets {which} ({el.GetRawText()}) is not a non-negative integer");
        return v;
    }

    static CheckpointFormatException Fail(string file, string problem, Exception? inner = null) => new(file, problem, null, inner);
}
