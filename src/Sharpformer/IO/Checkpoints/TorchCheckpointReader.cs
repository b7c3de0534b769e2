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
/// keep one copy and report the same <see cref="CheckpointTensor.StorageKey"/>), non-contiguous ones are copied row-major
/// when first read. Memory is bounded by the file's size and <see cref="TorchCheckpointLimits"/>.
/// </remarks>
public static class TorchCheckpointReader
{
    /// <summary>Slack on the decompressed total for small archives whose entries someone re-zipped with deflate.</summary>
    const long DecompressionSlack = 1L << 20;

    /// <summary>Loads every tensor of a torch zip checkpoint into memory.</summary>
    /// <param name="path">The <c>.bin</c> file.</param>
    /// <param name="limits">Memory caps (default <see cref="TorchCheckpointLimits.Default"/>).</param>
    /// <exception cref="UnsafePickleException">the pickle references a global outside the state-dict allow-list.</exception>
    /// <exception cref="CheckpointLimitException">the file would need far more memory than its size justifies.</exception>
    /// <exception cref="NotSupportedException">legacy (pre-1.6) torch files, big-endian files.</exception>
    public static StateDict Read(string path, TorchCheckpointLimits? limits = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint file '{path}' does not exist.", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(fs, path, limits);
    }

    /// <summary>Reads from a seekable stream; <paramref name="sourceName"/> names it in errors.</summary>
    public static StateDict Read(Stream stream, string sourceName = "<stream>", TorchCheckpointLimits? limits = null)
    {
        limits ??= TorchCheckpointLimits.Default;
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
                return ReadZip(zip, sourceName, stream.Length, limits);
            }
            catch (InvalidDataException e)
            {
                throw new CheckpointFormatException(sourceName, $"a zip entry is corrupt ({e.Message})", null, e);
            }
        }
    }

    static StateDict ReadZip(ZipArchive zip, string file, long archiveLength, TorchCheckpointLimits limits)
    {
        // torch.save stores every entry uncompressed, so together they cannot decompress to more than the archive holds;
        // deflate can expand a thousandfold, so this total is what stops a small zip from demanding gigabytes.
        long decompressedLeft = archiveLength + DecompressionSlack;
        byte[] Read(ZipArchiveEntry entry, long cap, CheckpointLimit capName)
        {
            long declared = entry.Length;
            if (declared > cap)
                throw new CheckpointLimitException(file, capName, cap, $"zip entry '{entry.FullName}' decompresses to {declared} bytes",
                    capName == CheckpointLimit.PickleBytes
                        ? "A state dict pickle is kilobytes. If the file is trusted, raise TorchCheckpointLimits.MaxPickleBytes."
                        : "The file is corrupt.");
            if (declared > decompressedLeft)
                throw new CheckpointLimitException(file, CheckpointLimit.DecompressedBytes, archiveLength + DecompressionSlack,
                    $"zip entry '{entry.FullName}' decompresses to {declared} bytes, which with the entries read before is more than the " +
                    $"{archiveLength}-byte archive can hold uncompressed",
                    "torch.save never compresses checkpoints, so this is a zip bomb or a re-compressed file; re-save it with torch.save " +
                    "or convert it to model.safetensors.");
            var bytes = ReadEntry(entry, file, declared);
            decompressedLeft -= bytes.Length;
            return bytes;
        }

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
            var order = Encoding.ASCII.GetString(Read(byteOrder, 16, CheckpointLimit.DecompressedBytes)).Trim();
            if (order != "little" && order != "big")
                throw new CheckpointFormatException(file, $"the 'byteorder' entry says '{order}', expected 'little' or 'big'");
            if (order == "big")
                throw new NotSupportedException($"'{file}' stores tensors in '{order}' byte order; only little-endian checkpoints are supported.");
        }

        var pickle = Read(pklEntry, limits.MaxPickleBytes, CheckpointLimit.PickleBytes);
        return FromPickle(pickle, key =>
        {
            var entry = zip.GetEntry($"{prefix}data/{key}");
            return entry is null ? null : Read(entry, Array.MaxLength, CheckpointLimit.DecompressedBytes);
        }, file, limits);
    }

    /// <summary>Reads exactly <paramref name="declared"/> bytes (the entry's header size, already checked against the limits).</summary>
    static byte[] ReadEntry(ZipArchiveEntry entry, string file, long declared)
    {
        using var s = entry.Open();
        var exact = new byte[declared];
        int got = s.ReadAtLeast(exact, exact.Length, throwOnEndOfStream: false);
        if (got != declared)
            throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' holds {got} bytes but its header says {declared}");
        // The header is what the limits checked: an entry that inflates past it is refused without reading further.
        if (s.ReadByte() >= 0)
            throw new CheckpointFormatException(file, $"zip entry '{entry.FullName}' holds more than the {declared} bytes its header says");
        return exact;
    }

    /// <summary>
    /// Unpickles a state dict and cuts its tensors out of the storages returned by <paramref name="storageBytes"/>
    /// (key → raw bytes, null when missing). Separate from the zip so the unpickler can be fuzzed in memory.
    /// </summary>
    internal static StateDict FromPickle(byte[] pickle, Func<string, byte[]?> storageBytes, string file, TorchCheckpointLimits? limits = null)
    {
        limits ??= TorchCheckpointLimits.Default;
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
        }, limits.MaxUnpickledBytes);
        var root = unpickler.Load();
        if (root is not PyDict dict)
            throw new CheckpointFormatException(file, "the pickle is not a dict of tensors",
                "Expected a state dict saved with torch.save(model.state_dict(), path).");

        var views = new ViewBuilder(file, storageBytes);
        var result = new StateDict(file, CheckpointFormat.TorchZip);
        result.AddSourceFile(file);
        foreach (var k in dict.Keys)
        {
            if (k is not string name)
                throw new CheckpointFormatException(file, $"state dict key {k} is not a string");
            if (dict[k] is not TorchTensorRef t)
                throw new CheckpointFormatException(file, $"state dict entry '{name}' is not a tensor",
                    "Expected a flat state dict (name → tensor); a training checkpoint with nested dicts must be unpacked in Python first.");
            result.TryAdd(views.Build(name, t));
        }
        views.CheckMaterializedBytes(limits.MaxMaterializedBytes);
        return result;
    }

    /// <summary>
    /// Turns tensor references into <see cref="CheckpointTensor"/>s: contiguous views point into their storage, the others
    /// get one lazy row-major copy per distinct view (shared by every name that references it), paid for only when read.
    /// </summary>
    sealed class ViewBuilder(string file, Func<string, byte[]?> storageBytes)
    {
        readonly Dictionary<string, ArrayByteSource> _storages = new(StringComparer.Ordinal);
        readonly Dictionary<string, StridedViewByteSource> _views = new(StringComparer.Ordinal);
        long _storageBytes, _materializedBytes;
        // (tensor, running total of distinct copies) in file order, to name the view that crossed the limit.
        readonly List<(string Name, long Total)> _copies = [];

        public CheckpointTensor Build(string name, TorchTensorRef t)
        {
            var st = t.Storage;
            int elem = DTypes.SizeOf(st.DType);
            if (!_storages.TryGetValue(st.Key, out var source))
            {
                var bytes = storageBytes(st.Key)
                    ?? throw new CheckpointFormatException(file, $"tensor '{name}' needs storage '{st.Key}', which is missing from the archive");
                if (st.Numel > bytes.Length / elem)
                    throw new CheckpointFormatException(file, $"storage '{st.Key}' should hold {st.Numel} {st.DType} values but has only {bytes.Length} bytes");
                source = new ArrayByteSource(bytes);
                _storages[st.Key] = source;
                _storageBytes += bytes.Length;
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

            // A saved transpose, slice or broadcast: torch.load would share one tensor between every name referencing it,
            // so identical views share one copy here too.
            var viewKey = $"{st.Key}:{t.StorageOffset}:{string.Join(',', t.Size)}:{string.Join(',', t.Stride)}";
            if (!_views.TryGetValue(viewKey, out var view))
            {
                view = new StridedViewByteSource(source, t.StorageOffset, t.Size, t.Stride, elem, numel * elem);
                _views[viewKey] = view;
                _materializedBytes += view.Length;
                _copies.Add((name, _materializedBytes));
            }
            return new CheckpointTensor(name, shape, st.DType, view, 0, file);
        }

        /// <summary>
        /// Refuses the state dict when its copies would exceed the cap or <see cref="TorchCheckpointLimits.MaterializedPerStorageByte"/> ×
        /// the storages it references (views partitioning or transposing a storage need at most its size; only overlapping
        /// stride-0 broadcasts can need more). Checked before any copy is made: copies are lazy.
        /// </summary>
        public void CheckMaterializedBytes(long cap)
        {
            // The 1 MiB floor keeps tiny test and toy checkpoints (a broadcast bias, a few slices) loadable.
            long limit = Math.Min(cap, (1L << 20) + TorchCheckpointLimits.MaterializedPerStorageByte * _storageBytes);
            if (_materializedBytes <= limit) return;
            var (name, total) = _copies.First(c => c.Total > limit);
            throw new CheckpointLimitException(file, CheckpointLimit.MaterializedBytes, limit,
                $"its {_views.Count} distinct non-contiguous (transposed, strided or broadcast) views need {_materializedBytes} bytes of copies " +
                $"for {_storageBytes} bytes of storage; tensor '{name}' brings the total to {total}",
                "A state dict's views need at most about the size of their storages; this is a memory bomb. If the file is trusted, " +
                "re-save it with contiguous tensors ({k: v.contiguous() for k, v in sd.items()}) or raise TorchCheckpointLimits.MaxMaterializedBytes.");
        }
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
