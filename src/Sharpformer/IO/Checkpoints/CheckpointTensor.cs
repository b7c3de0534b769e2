using System.Collections.ObjectModel;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;

namespace Sharpformer.Checkpoints;

/// <summary>
/// One named tensor of a checkpoint: shape, stored dtype and a view of its little-endian bytes (row-major, contiguous).
/// The bytes stay in the file (memory-mapped) or buffer until you convert them; conversions copy.
/// Valid until the owning <see cref="StateDict"/> is disposed.
/// </summary>
public sealed class CheckpointTensor
{
    readonly int[] _shape;
    readonly ByteSource _source;
    readonly long _offset;

    internal CheckpointTensor(string name, int[] shape, DType dtype, ByteSource source, long offset, string file, string? storageKey = null)
    {
        Name = name;
        _shape = shape;
        DType = dtype;
        _source = source;
        _offset = offset;
        File = file;
        StorageKey = storageKey;
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        ElementCount = n;
        ByteLength = checked(n * DTypes.SizeOf(dtype));
        Shape = new ReadOnlyCollection<int>(_shape);
    }

    /// <summary>Checkpoint key, e.g. <c>bert.encoder.layer.0.attention.self.query.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Dimensions, outermost first. A scalar has rank 0.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The dtype the file stores (F16/BF16 are widened by <see cref="ToFloat32"/>).</summary>
    public DType DType { get; }

    public int Rank => _shape.Length;
    public long ElementCount { get; }
    public long ByteLength { get; }

    /// <summary>The file this tensor came from (used in error messages).</summary>
    public string File { get; }

    /// <summary>
    /// For torch .bin checkpoints: the storage this tensor is a view of. Two names with the same key share memory
    /// (tied weights such as an MLM decoder and the word embeddings). Null for safetensors.
    /// </summary>
    public string? StorageKey { get; }

    /// <summary>A fresh copy of <see cref="Shape"/>.</summary>
    public int[] CopyShape() => (int[])_shape.Clone();

    /// <summary>Copies float data into a tensor, e.g. to hand to <see cref="SafeTensorsWriter"/>.</summary>
    public static CheckpointTensor FromFloat32(string name, ReadOnlyMemory<float> data, params int[] shape)
    {
        var t = new CheckpointTensor(name, CheckShape(shape, data.Length, name), DType.F32,
            new ArrayByteSource(AsBytes(data)), 0, "<memory>");
        return t;
    }

    /// <summary>Wraps float data without copying; the caller keeps it unchanged while the tensor is used (the writer path).</summary>
    internal static CheckpointTensor WrapFloat32(string name, ReadOnlyMemory<float> data, int[] shape)
    {
        if (!BitConverter.IsLittleEndian) throw new NotSupportedException("Checkpoint tensors require a little-endian machine.");
        return new CheckpointTensor(name, CheckShape(shape, data.Length, name), DType.F32, new FloatMemoryByteSource(data), 0, "<memory>");
    }

    /// <summary>Copies int64 data into a tensor, e.g. a <c>position_ids</c> buffer.</summary>
    public static CheckpointTensor FromInt64(string name, ReadOnlyMemory<long> data, params int[] shape) =>
        new(name, CheckShape(shape, data.Length, name), DType.I64, new ArrayByteSource(AsBytes(data)), 0, "<memory>");

    /// <summary>Wraps raw little-endian bytes of the given dtype (copied).</summary>
    public static CheckpointTensor FromBytes(string name, DType dtype, ReadOnlySpan<byte> littleEndianBytes, params int[] shape)
    {
        var t = new CheckpointTensor(name, (int[])shape.Clone(), dtype, new ArrayByteSource(littleEndianBytes.ToArray()), 0, "<memory>");
        if (t.ByteLength != littleEndianBytes.Length)
            throw new ArgumentException($"Tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} needs {t.ByteLength} bytes, got {littleEndianBytes.Length}.");
        return t;
    }

    /// <summary>
    /// This tensor stored as <paramref name="dtype"/> (F32, F16 or BF16), for saving a smaller copy of a model: floats are
    /// rounded to nearest even as torch's <c>.half()</c> / <c>.bfloat16()</c> do; integer and bool tensors (e.g. a
    /// <c>position_ids</c> buffer) and tensors already of that dtype are returned as they are.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">a value is finite in float32 but beyond F16's range (±65504), so it would become infinite.</exception>
    public CheckpointTensor ToFloatDType(DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16)) throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "store floats as F32, F16 or BF16.");
        if (!DTypes.IsFloatingPoint(DType) || DType == dtype) return this;
        var values = ToFloat32();
        var bytes = new byte[values.Length * DTypes.SizeOf(dtype)];
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(bytes);
                break;
            case DType.F16:
            {
                var halves = MemoryMarshal.Cast<byte, Half>(bytes.AsSpan());
                TensorPrimitives.ConvertToHalf(values, halves);
                for (int i = 0; i < values.Length; i++)
                    if (Half.IsInfinity(halves[i]) && float.IsFinite(values[i]))
                        throw new ArgumentOutOfRangeException(nameof(dtype), $"Tensor '{Name}' holds {values[i]} at element {i}, beyond F16's range (±65504); store it as BF16 or F32.");
                break;
            }
            default:
            {
                var words = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++) words[i] = Sharpformer.Kernels.Bf16Gemm.ToBf16(values[i]);
                break;
            }
        }
        return new CheckpointTensor(Name, CopyShape(), dtype, new ArrayByteSource(bytes), 0, "<memory>");
    }

    /// <summary>The elements as float32 (F64 rounded, F16/BF16 widened exactly).</summary>
    /// <exception cref="NotSupportedException">for integer/bool tensors: use <see cref="ToInt64"/>.</exception>
    public float[] ToFloat32()
    {
        var result = new float[checked((int)ElementCount)];
        CopyTo(result);
        return result;
    }

    /// <summary>Converts into <paramref name="destination"/>, whose length must equal <see cref="ElementCount"/>.</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length != ElementCount)
            throw new ArgumentException($"Tensor '{Name}' has {ElementCount} elements but the destination holds {destination.Length}.", nameof(destination));
        if (!DTypes.IsFloatingPoint(DType))
            throw new NotSupportedException($"Tensor '{Name}' in '{File}' stores {DType} values, not floating point; read it with ToInt64().");
        int size = DTypes.SizeOf(DType);
        const int Chunk = 1 << 20;
        for (long start = 0; start < ElementCount; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, ElementCount - start);
            var src = _source.Span(_offset + start * size, n * size);
            var dst = destination.Slice((int)start, n);
            switch (DType)
            {
                case DType.F32:
                    MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                    break;
                case DType.F16:
                    TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst);
                    break;
                case DType.BF16:
                    WidenBFloat16(MemoryMarshal.Cast<byte, ushort>(src), dst);
                    break;
                case DType.F64:
                {
                    var d = MemoryMarshal.Cast<byte, double>(src);
                    for (int i = 0; i < n; i++) dst[i] = (float)d[i];
                    break;
                }
            }
        }
    }

    /// <summary>bfloat16 → float32: bfloat16 is the top half of an IEEE float32, so widening is an exact 16-bit shift.</summary>
    internal static void WidenBFloat16(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        int n = src.Length, i = 0;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                Vector512.ShiftLeft(lo, 16).AsSingle().StoreUnsafe(ref d, (nuint)i);
                Vector512.ShiftLeft(hi, 16).AsSingle().StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                Vector256.ShiftLeft(lo, 16).AsSingle().StoreUnsafe(ref d, (nuint)i);
                Vector256.ShiftLeft(hi, 16).AsSingle().StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < n; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
    }

    /// <summary>The elements of an integer or bool tensor widened to int64.</summary>
    /// <exception cref="NotSupportedException">for floating-point tensors: use <see cref="ToFloat32"/>.</exception>
    public long[] ToInt64()
    {
        if (DTypes.IsFloatingPoint(DType))
            throw new NotSupportedException($"Tensor '{Name}' in '{File}' stores {DType} values; read it with ToFloat32().");
        var result = new long[checked((int)ElementCount)];
        int size = DTypes.SizeOf(DType);
        const int Chunk = 1 << 20;
        for (long start = 0; start < ElementCount; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, ElementCount - start);
            var src = _source.Span(_offset + start * size, n * size);
            var dst = result.AsSpan((int)start, n);
            switch (DType)
            {
                case DType.I64: MemoryMarshal.Cast<byte, long>(src).CopyTo(dst); break;
                case DType.I32: { var s = MemoryMarshal.Cast<byte, int>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
                case DType.I16: { var s = MemoryMarshal.Cast<byte, short>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
                case DType.I8: for (int i = 0; i < n; i++) dst[i] = (sbyte)src[i]; break;
                case DType.U8: for (int i = 0; i < n; i++) dst[i] = src[i]; break;
                case DType.Bool: for (int i = 0; i < n; i++) dst[i] = src[i] != 0 ? 1 : 0; break;
            }
        }
        return result;
    }

    /// <summary>Copies the stored little-endian bytes unchanged.</summary>
    public void CopyBytesTo(Span<byte> destination)
    {
        if (destination.Length != ByteLength)
            throw new ArgumentException($"Tensor '{Name}' has {ByteLength} bytes but the destination holds {destination.Length}.", nameof(destination));
        const int Chunk = 1 << 26;
        for (long start = 0; start < ByteLength; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, ByteLength - start);
            _source.Span(_offset + start, n).CopyTo(destination.Slice((int)start, n));
        }
    }

    internal void WriteBytesTo(Stream stream)
    {
        const int Chunk = 1 << 24;
        for (long start = 0; start < ByteLength; start += Chunk)
            stream.Write(_source.Span(_offset + start, (int)Math.Min(Chunk, ByteLength - start)));
    }

    /// <summary>A copy of the stored little-endian bytes.</summary>
    public byte[] ToBytes()
    {
        var b = new byte[checked((int)ByteLength)];
        CopyBytesTo(b);
        return b;
    }

    public override string ToString() => $"{Name} {DType}[{string.Join(", ", _shape)}]";

    static int[] CheckShape(int[] shape, int length, string name)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor '{name}': negative dimension in shape [{string.Join(", ", shape)}].");
            n = checked(n * d);
        }
        if (n != length)
            throw new ArgumentException($"Tensor '{name}': shape [{string.Join(", ", shape)}] has {n} elements but the data holds {length}.");
        return (int[])shape.Clone();
    }

    static ReadOnlyMemory<byte> AsBytes<T>(ReadOnlyMemory<T> data) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian) throw new NotSupportedException("Checkpoint tensors require a little-endian machine.");
        // A copy keeps the API simple (no pinning of caller memory); writing is not a hot path.
        return MemoryMarshal.AsBytes(data.Span).ToArray();
    }
}
