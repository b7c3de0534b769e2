using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>Hand-assembles pickle opcodes (protocol 2) and torch zip archives for reader tests.</summary>
internal sealed class TorchPickleBuilder
{
    readonly MemoryStream _s = new();

    public TorchPickleBuilder Op(params byte[] bytes) { _s.Write(bytes); return this; }
    public TorchPickleBuilder Proto() => Op(0x80, 2);
    public TorchPickleBuilder Mark() => Op((byte)'(');
    public TorchPickleBuilder EmptyDict() => Op((byte)'}');
    public TorchPickleBuilder EmptyTuple() => Op((byte)')');
    public TorchPickleBuilder Tuple() => Op((byte)'t');
    public TorchPickleBuilder SetItems() => Op((byte)'u');
    public TorchPickleBuilder Reduce() => Op((byte)'R');
    public TorchPickleBuilder PersId() => Op((byte)'Q');
    public TorchPickleBuilder False() => Op(0x89);
    public TorchPickleBuilder Stop() => Op((byte)'.');
    public TorchPickleBuilder Put(byte memo) => Op((byte)'q', memo);
    public TorchPickleBuilder Get(byte memo) => Op((byte)'h', memo);

    public TorchPickleBuilder Global(string module, string name) =>
        Op((byte)'c').Op(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    public TorchPickleBuilder Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
        _s.Write(len);
        return Op(b);
    }

    public TorchPickleBuilder Int(int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        Op((byte)'J');
        _s.Write(b);
        return this;
    }

    public TorchPickleBuilder IntTuple(params int[] values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    /// <summary>Pushes <c>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())</c>.</summary>
    public TorchPickleBuilder Tensor(string storageType, string key, int numel, int offset, int[] size, int[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Tuple().PersId();
        Int(offset).IntTuple(size).IntTuple(stride).False();
        Global("collections", "OrderedDict").EmptyTuple().Reduce();
        Tuple();
        return Reduce();
    }

    public byte[] ToArray() => _s.ToArray();

    /// <param name="pickleCompression">torch.save stores everything uncompressed; deflate is what a zip bomb uses.</param>
    public static byte[] Zip(byte[] pickle, IReadOnlyDictionary<string, byte[]> storages, string archive = "archive",
        CompressionLevel pickleCompression = CompressionLevel.NoCompression)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] data, CompressionLevel level = CompressionLevel.NoCompression)
            {
                var e = zip.CreateEntry($"{archive}/{name}", level);
                using var s = e.Open();
                s.Write(data);
            }
            Add("data.pkl", pickle, pickleCompression);
            Add("byteorder", Encoding.ASCII.GetBytes("little"));
            foreach (var (k, v) in storages) Add($"data/{k}", v);
            Add("version", Encoding.ASCII.GetBytes("3\n"));
        }
        return ms.ToArray();
    }

    public static byte[] Floats(params float[] values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), values[i]);
        return b;
    }
}
