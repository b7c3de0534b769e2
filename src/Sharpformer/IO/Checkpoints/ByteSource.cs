using System.IO.MemoryMappedFiles;

namespace Sharpformer.Checkpoints;

/// <summary>Random-access bytes behind one or more checkpoint tensors: a memory-mapped file or an in-memory buffer.</summary>
internal abstract class ByteSource : IDisposable
{
    public abstract long Length { get; }

    /// <summary>Bytes [offset, offset+length); the caller has already checked the range against <see cref="Length"/>.</summary>
    public abstract ReadOnlySpan<byte> Span(long offset, int length);

    public virtual void Dispose() { }
}

internal sealed class ArrayByteSource(ReadOnlyMemory<byte> bytes) : ByteSource
{
    public override long Length => bytes.Length;
    public override ReadOnlySpan<byte> Span(long offset, int length) => bytes.Span.Slice(checked((int)offset), length);
}

/// <summary>Caller-owned float memory seen as bytes (no copy); used when writing straight from model parameters.</summary>
internal sealed class FloatMemoryByteSource(ReadOnlyMemory<float> data) : ByteSource
{
    public override long Length => (long)data.Length * sizeof(float);
    public override ReadOnlySpan<byte> Span(long offset, int length) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.Span).Slice(checked((int)offset), length);
}

/// <summary>
/// A read-only memory map of a whole file. Tensors created over it read straight from the page cache, so opening a
/// multi-gigabyte checkpoint costs nothing until a tensor is converted.
/// </summary>
internal sealed unsafe class MemoryMappedByteSource : ByteSource
{
    readonly MemoryMappedFile _file;
    readonly MemoryMappedViewAccessor _view;
    readonly long _length;
    byte* _pointer;
    readonly string _path;

    public MemoryMappedByteSource(string path, long length)
    {
        _path = path;
        _length = length;
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        try
        {
            _file = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        try
        {
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _pointer = p + _view.PointerOffset;
        }
        catch
        {
            _view?.Dispose();
            _file.Dispose();
            throw;
        }
    }

    public override long Length => _length;

    public override ReadOnlySpan<byte> Span(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_pointer == null, $"memory map of '{_path}' (the StateDict was disposed)");
        return new ReadOnlySpan<byte>(_pointer + offset, length);
    }

    public override void Dispose()
    {
        if (_pointer == null) return;
        _pointer = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}

/// <summary>
/// A non-contiguous view (<c>storage[offset + Σ index_d·stride_d]</c>) copied into a row-major buffer on first read, so a view
/// nobody reads is never copied. Bounds were checked by the reader.
/// </summary>
internal sealed class StridedViewByteSource(ByteSource storage, long offset, long[] size, long[] stride, int elementSize, long byteLength)
    : ByteSource
{
    byte[]? _rowMajor;

    public override long Length => byteLength;

    public override ReadOnlySpan<byte> Span(long start, int length) =>
        LazyInitializer.EnsureInitialized(ref _rowMajor, Gather).AsSpan(checked((int)start), length);

    /// <summary>Copies one innermost run at a time: a whole row when the last stride is 1, else single elements.</summary>
    byte[] Gather()
    {
        int rank = size.Length;
        var dst = new byte[byteLength];
        long numel = byteLength / elementSize;
        var src = storage.Span(0, checked((int)storage.Length));
        int inner = rank > 0 && stride[rank - 1] == 1 ? (int)size[rank - 1] : 1;
        int outerRank = inner > 1 ? rank - 1 : rank;
        var index = new long[rank];
        int runBytes = inner * elementSize;
        for (long i = 0; i < numel; i += inner)
        {
            long off = offset;
            for (int d = 0; d < outerRank; d++) off += index[d] * stride[d];
            src.Slice((int)(off * elementSize), runBytes).CopyTo(dst.AsSpan((int)(i * elementSize), runBytes));
            for (int d = outerRank - 1; d >= 0; d--)
            {
                if (++index[d] < size[d]) break;
                index[d] = 0;
            }
        }
        return dst;
    }
}
