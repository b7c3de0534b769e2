using System.IO.Compression;
using System.Text;

namespace Sharpformer.Checkpoints;

/// <summary>
/// Reads <c>pytorch_model.bin</c> files written by <c>torch.save</c> (torch ≥ 1.6 zip format): <c>&lt;archive&gt;/data.pkl</c>
/// (the pickled state dict, read by a restricted unpickler that never runs code) and <c>&lt;archive&gt;/data/&lt;key&gt;</c>
/// (raw little-endian storages).
/// </summary>
/// <remarks>
/// A tensor is <c>storage[offset + Σ index_i·stride_i]</c>; contiguous tensors share their storage bytes (tied weights
/// keep one copy and report the same <see cref="CheckpointTensor.StorageKey"/>), non-contiguous ones are materialised.
/// </remarks>
public static class TorchCheckpointReader
{
    /// <summary>Largest data.pkl accepted (real state-dict pickles are kilobytes).</summary>
    const long MaxPickleBytes = 256L << 20;

    /// <summary>Largest materialised size of a view whose strides overlap (stride 0 broadcasts).</summary>
    const long MaxExpandedViewBytes = 256L << 20;

    /// <summary>Loads every tensor of a torch zip checkpoint into memory.</summary>
    /// <exception cref="UnsafePickleException">the pickle references a global outside the state-dict allow-list.</exception>
    /// <exception cref="NotSupportedException">legacy (pre-1.6) torch files, big-endian files.</exception>
    public static StateDict Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint file '{path}' does not exist.", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(fs, path);
    }

    /// <summary>Reads from a seekable stream; <paramref name="sourceName"/> names it in errors.</summary>
    public static StateDict Read(Stream stream, string sourceName = "<stream>")
    {
        Span<byte> magic = stackalloc byte[4];
        int got = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        stream.Seek(-got, SeekOrigin.Current);
        if (got < 4 || !(magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4))
        {
            if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5)
                throw new NotSupportedException(
                    $"'{sourceName}' uses the legacy PyTorch serialization (torch < 1.6 or _use_new_zipfile_serialization=False), " +
                    "which is not supported. Re-save it with a current torch (torch.save(torch.load(f), f)) or convert it to model.safetensors.");
            throw new CheckpointFormatException(sourceName, "not a PyTorch zip checkpoint (no 'PK' zip signature)",
                "Expected a pytorch_model.bin written by torch.save (torch >= 1.6); check the file or use model.safetensors.");
        }

        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointFormatException(sourceName, $"the zip directory is corrupt ({e.Message})", null, e);
        }
        using (zip)
        {
            try
            {
                return ReadZip(zip, sourceName, stream.Length);
            }
            catch (InvalidDataException e)
            {
                throw new CheckpointFormatException(sourceName, $"a zip entry is corrupt ({e.Message})", null, e);
            }
        }
    }

    static StateDict ReadZip(ZipArchive zip, string file, long archiveLength)
    {
        var pklEntry = zip.Entries
            .Where(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') <= 1)
            .OrderBy(e => e.FullName.Length)
            .FirstOrDefault()
            ?? throw new CheckpointFormatException(file, "the zip has no '<archive>/data.pkl' entry",
                "This is a zip but not a torch.save checkpoint (TorchScript and other archives are not supported).");
        string prefix = pklEntry.FullName[..^"data.pkl".Length];

        var byteOrder = zip.GetEntry(prefix + "byteorder");
        if (byteOrder is not null)
        {
            var order = Encoding.ASCII.GetString(ReadEntry(byteOrder, file, 16, archiveLength)).Trim();
            if (order != "little" && order != "big")
                throw new CheckpointFormatException(file, $"the 'byteorder' entry says '{order}', expected 'little' or 'big'");
            if (order == "big")
                throw new NotSupportedException($"'{file}' stores tensors in '{order}' byte order; only little-endian checkpoints are supported.");
        }

        var pickle = ReadEntry(pklEntry, file, MaxPickleBytes, archiveLength);
        return FromPickle(pickle, key =>
        {
            var entry = zip.GetEntry($"{prefix}data/{key}");
            return entry is null ? null : ReadEntry(entry, file, Array.MaxLength, archiveLength);
        }, file);
    }

    static byte[] ReadEntry(ZipArchiveEntry entry, string file, long limit, long archiveLength)
    {
        long declared = entry.Length;
        if (declared > limit)
            throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' is {declared} bytes, more than the {limit}-byte limit");
        using var s = entry.Open();
        if (declared <= archiveLength)
        {
            // Plausible size (torch stores entries uncompressed, so they cannot exceed the archive): read in place.
            var exact = new byte[declared];
            int got = s.ReadAtLeast(exact, exact.Length, throwOnEndOfStream: false);
            if (got != declared)
                throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' holds {got} bytes but its header says {declared}");
            if (s.ReadByte() >= 0)
                throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' holds more than the {declared} bytes its header says");
            return exact;
        }
        // A size beyond the archive is only possible for compressed data; grow as bytes really arrive instead of trusting
        // the header for the allocation (a corrupt header must not reserve gigabytes up front).
        var ms = new MemoryStream(1 << 20);
        var chunk = new byte[1 << 16];
        int n;
        while ((n = s.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (ms.Length + n > declared)
                throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' holds more than the {declared} bytes its header says");
            ms.Write(chunk, 0, n);
        }
        if (ms.Length != declared)
            throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' holds {ms.Length} bytes but its header says {declared}");
        return ms.Length == ms.Capacity ? ms.GetBuffer() : ms.ToArray();
    }

    /// <summary>
    /// Unpickles a state dict and cuts its tensors out of the storages returned by <paramref name="storageBytes"/>
    /// (key → raw bytes, null when missing). Separate from the zip so the unpickler can be fuzzed in memory.
    /// </summary>
    internal static StateDict FromPickle(byte[] pickle, Func<string, byte[]?> storageBytes, string file)
    {
        var storages = new Dictionary<string, TorchStorageRef>(StringComparer.Ordinal);
        var unpickler = new RestrictedUnpickler(pickle, file, pid =>
        {
            // ('storage', torch.FloatStorage, key, location, numel)
            if (pid.Length != 5 || pid[0] is not "storage" || pid[1] is not PyGlobal { Kind: PyGlobalKind.Storage } type
                || pid[2] is not string key || pid[3] is not string location || pid[4] is not long numel || numel < 0)
                throw new CheckpointFormatException(file, "pickle data.pkl: a persistent id is not ('storage', <torch storage type>, key, location, numel)");
            var s = new TorchStorageRef(key, type.StorageDType, numel, location);
            if (storages.TryGetValue(key, out var existing))
            {
                if (existing.DType != s.DType)
                    throw new CheckpointFormatException(file, $"storage '{key}' is used both as {existing.DType} and as {s.DType}");
                return existing;
            }
            storages[key] = s;
            return s;
        });
        var root = unpickler.Load();
        if (root is not PyDict dict)
            throw new CheckpointFormatException(file, "the pickle is not a dict of tensors",
                "Expected a state dict saved with torch.save(model.state_dict(), path).");

        var bytesByKey = new Dictionary<string, ArrayByteSource>(StringComparer.Ordinal);
        var result = new StateDict(file, CheckpointFormat.TorchZip);
        result.AddSourceFile(file);
        foreach (var k in dict.Keys)
        {
            if (k is not string name)
                throw new CheckpointFormatException(file, $"state dict key {k} is not a string");
            if (dict.Items[k] is not TorchTensorRef t)
                throw new CheckpointFormatException(file, $"state dict entry '{name}' is not a tensor",
                    "Expected a flat state dict (name → tensor); a training checkpoint with nested dicts must be unpacked in Python first.");
            result.TryAdd(BuildTensor(name, t, bytesByKey, storageBytes, file));
        }
        return result;
    }

    static CheckpointTensor BuildTensor(string name, TorchTensorRef t, Dictionary<string, ArrayByteSource> sources,
        Func<string, byte[]?> storageBytes, string file)
    {
        var st = t.Storage;
        int elem = DTypes.SizeOf(st.DType);
        if (!sources.TryGetValue(st.Key, out var source))
        {
            var bytes = storageBytes(st.Key)
                ?? throw new CheckpointFormatException(file, $"tensor '{name}' needs storage '{st.Key}', which is missing from the archive");
            if (st.Numel > bytes.Length / elem)
                throw new CheckpointFormatException(file, $"storage '{st.Key}' should hold {st.Numel} {st.DType} values but has only {bytes.Length} bytes");
            source = new ArrayByteSource(bytes);
            sources[st.Key] = source;
        }

        int rank = t.Size.Length;
        var shape = new int[rank];
        long numel = 1;
        for (int d = 0; d < rank; d++)
        {
            if (t.Size[d] < 0 || t.Size[d] > int.MaxValue) throw new CheckpointFormatException(file, $"tensor '{name}' has invalid dimension {t.Size[d]}");
            if (t.Stride[d] < 0) throw new CheckpointFormatException(file, $"tensor '{name}' has negative stride {t.Stride[d]}");
            shape[d] = (int)t.Size[d];
            numel = numel == 0 || t.Size[d] == 0 ? 0 : (numel > Array.MaxLength / t.Size[d] ? Array.MaxLength + 1L : numel * t.Size[d]);
        }
        if (numel * elem > Array.MaxLength)
            throw new CheckpointFormatException(file, $"tensor '{name}' of shape [{string.Join(", ", shape)}] is larger than 2 GB, which is not supported");
        if (numel == 0) return new CheckpointTensor(name, shape, st.DType, new ArrayByteSource(Array.Empty<byte>()), 0, file, st.Key);

        if (t.StorageOffset < 0) throw new CheckpointFormatException(file, $"tensor '{name}' has negative storage offset {t.StorageOffset}");
        // Highest element touched must lie inside the storage.
        long last = t.StorageOffset;
        for (int d = 0; d < rank; d++)
        {
            long span = (t.Size[d] - 1) * t.Stride[d];
            if (t.Stride[d] != 0 && (t.Size[d] - 1) > (long.MaxValue / 4) / t.Stride[d]) last = long.MaxValue / 2;
            else last = Math.Min(long.MaxValue / 2, last + span);
        }
        if (last >= st.Numel)
            throw new CheckpointFormatException(file,
                $"tensor '{name}' (offset {t.StorageOffset}, shape [{string.Join(", ", shape)}], stride [{string.Join(", ", t.Stride)}]) reaches element {last} of storage '{st.Key}', which has {st.Numel}");

        if (IsContiguous(t.Size, t.Stride))
            return new CheckpointTensor(name, shape, st.DType, source, t.StorageOffset * elem, file, st.Key);

        // Non-contiguous view (e.g. a saved transpose): gather into a fresh row-major buffer, one innermost run at a time
        // (a whole row when the last stride is 1, else single elements).
        // Only overlapping views (zero strides) can have more elements than their storage; cap what such a view may
        // expand to so a tiny corrupt file cannot demand gigabytes.
        if (numel > st.Numel && numel * elem > MaxExpandedViewBytes)
            throw new CheckpointFormatException(file,
                $"tensor '{name}' is an overlapping view of {numel} elements over a {st.Numel}-element storage, larger than the {MaxExpandedViewBytes >> 20} MB accepted for such views");
        var dst = new byte[numel * elem];
        var src = source.Span(0, (int)source.Length);
        int inner = rank > 0 && t.Stride[rank - 1] == 1 ? shape[rank - 1] : 1;
        int outerRank = inner > 1 ? rank - 1 : rank;
        var index = new long[rank];
        int runBytes = inner * elem;
        for (long i = 0; i < numel; i += inner)
        {
            long off = t.StorageOffset;
            for (int d = 0; d < outerRank; d++) off += index[d] * t.Stride[d];
            src.Slice((int)(off * elem), runBytes).CopyTo(dst.AsSpan((int)(i * elem), runBytes));
            for (int d = outerRank - 1; d >= 0; d--)
            {
                if (++index[d] < t.Size[d]) break;
                index[d] = 0;
            }
        }
        return new CheckpointTensor(name, shape, st.DType, new ArrayByteSource(dst), 0, file);
    }

    static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int d = size.Length - 1; d >= 0; d--)
        {
            if (size[d] != 1 && stride[d] != expected) return false;
            expected *= size[d];
        }
        return true;
    }
}
