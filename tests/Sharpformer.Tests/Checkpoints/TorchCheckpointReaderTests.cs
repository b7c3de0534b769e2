using System.Buffers.Binary;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

public class TorchCheckpointReaderTests
{
    [Fact]
    public void Fixture_bin_is_bit_identical_to_its_safetensors()
    {
        using var bin = TorchCheckpointReader.Read(SafeTensorsTestFiles.SeqClsBin);
        using var st = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
        Assert.Equal(CheckpointFormat.TorchZip, bin.Format);
        Assert.Equal(st.Names.Order(StringComparer.Ordinal), bin.Names.Order(StringComparer.Ordinal));
        Assert.Equal(42, bin.Count);
        foreach (var name in st.Names)
        {
            Assert.Equal(st[name].Shape, bin[name].Shape);
            Assert.Equal(st[name].DType, bin[name].DType);
            Assert.True(st[name].ToBytes().AsSpan().SequenceEqual(bin[name].ToBytes()), name);
        }
        Assert.Equal("bert.embeddings.position_ids", bin.Names[0]); // pickle (insertion) order is kept
        Assert.Equal(Enumerable.Range(0, 128).Select(i => (long)i), bin["bert.embeddings.position_ids"].ToInt64());
    }

    [Fact]
    public void Shared_storage_offsets_strides_and_half_precision()
    {
        // storage "0": 6 floats 0..5. "w" = [2,3] view, "tied" = same storage (tied weight),
        // "wt" = its transpose [3,2] with stride (1,3), "tail" = offset 4, length 2. Storage "1": F16 [1.0, -2.0].
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])
            .Str("tied").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])
            .Str("wt").Tensor("FloatStorage", "0", 6, 0, [3, 2], [1, 3])
            .Str("tail").Tensor("FloatStorage", "0", 6, 4, [2], [1])
            .Str("rows").Tensor("FloatStorage", "0", 6, 1, [2, 2], [3, 1])
            .Str("cube").Tensor("FloatStorage", "0", 6, 0, [2, 1, 3], [1, 6, 2])
            .Str("h").Tensor("HalfStorage", "1", 2, 0, [2], [1])
            .Str("param").Global("torch._utils", "_rebuild_parameter").Mark()
                .Tensor("FloatStorage", "0", 6, 1, [1], [1]).Op(0x88).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce()
            .SetItems().Stop().ToArray();
        var half = new byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(half, 0x3C00);
        BinaryPrimitives.WriteUInt16LittleEndian(half.AsSpan(2), 0xC000);
        var zip = TorchPickleBuilder.Zip(p, new Dictionary<string, byte[]> { ["0"] = TorchPickleBuilder.Floats(0, 1, 2, 3, 4, 5), ["1"] = half });
        using var sd = TorchCheckpointReader.Read(new MemoryStream(zip), "crafted.bin");
        Assert.Equal(["w", "tied", "wt", "tail", "rows", "cube", "h", "param"], sd.Names);
        Assert.Equal([1f, 2, 4, 5], sd["rows"].ToFloat32());         // row runs: inner stride 1, outer stride 3
        Assert.Equal([0f, 2, 4, 1, 3, 5], sd["cube"].ToFloat32());   // element gather: x[i,0,k] = s[i + 2k]
        Assert.Equal([0f, 1, 2, 3, 4, 5], sd["w"].ToFloat32());
        Assert.Equal(sd["w"].StorageKey, sd["tied"].StorageKey);
        Assert.Equal([0f, 3, 1, 4, 2, 5], sd["wt"].ToFloat32());
        Assert.Equal([3, 2], sd["wt"].Shape);
        Assert.Equal([4f, 5], sd["tail"].ToFloat32());
        Assert.Equal([1f, -2f], sd["h"].ToFloat32());
        Assert.Equal(DType.F16, sd["h"].DType);
        Assert.Equal([1f], sd["param"].ToFloat32());
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("torch.storage", "_load_from_bytes")]
    [InlineData("subprocess", "Popen")]
    public void Forbidden_global_is_refused_by_name(string module, string name)
    {
        // The classic exploit shape: GLOBAL os.system, ("echo pwned",), REDUCE, inside an otherwise valid archive.
        var p = new TorchPickleBuilder().Proto().Global(module, name).Mark().Str("echo pwned").Tuple().Reduce().Stop().ToArray();
        var zip = TorchPickleBuilder.Zip(p, new Dictionary<string, byte[]>());
        var e = Assert.Throws<UnsafePickleException>(() => TorchCheckpointReader.Read(new MemoryStream(zip), "evil.bin"));
        Assert.Equal($"{module}.{name}", e.Global);
        Assert.Contains("evil.bin", e.Message);
        Assert.Contains($"{module}.{name}", e.Message);
    }

    [Fact]
    public void Forbidden_global_through_stack_global_is_refused()
    {
        // Protocol 4 style: SHORT_BINUNICODE "builtins", SHORT_BINUNICODE "exec", STACK_GLOBAL.
        var p = new TorchPickleBuilder().Op(0x80, 4).Op(0x8c, 8).Op("builtins"u8.ToArray()).Op(0x8c, 4).Op("exec"u8.ToArray()).Op(0x93)
            .Mark().Str("print(1)").Tuple().Reduce().Stop().ToArray();
        var e = Assert.Throws<UnsafePickleException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(p, new Dictionary<string, byte[]>())), "x.bin"));
        Assert.Equal("builtins.exec", e.Global);
    }

    [Fact]
    public void Quantized_tensor_rebuild_is_unsupported_not_unsafe()
    {
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark().Str("q").Global("torch._utils", "_rebuild_qtensor").SetItems().Stop().ToArray();
        var e = Assert.Throws<NotSupportedException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(p, new Dictionary<string, byte[]>())), "q.bin"));
        Assert.Contains("_rebuild_qtensor", e.Message);
    }

    [Fact]
    public void Legacy_format_is_not_supported_with_advice()
    {
        var legacy = new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.' };
        var e = Assert.Throws<NotSupportedException>(() => TorchCheckpointReader.Read(new MemoryStream(legacy), "old.bin"));
        Assert.Contains("legacy", e.Message);
        Assert.Contains("old.bin", e.Message);
        Assert.Throws<CheckpointFormatException>(() => TorchCheckpointReader.Read(new MemoryStream("hello world"u8.ToArray()), "txt.bin"));
    }

    [Fact]
    public void Missing_or_short_storage_and_out_of_range_views_are_format_errors()
    {
        byte[] Pkl(int numel, int offset, int[] size) => new TorchPickleBuilder().Proto().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", numel, offset, size, size.Length == 2 ? [size[1], 1] : [1]).SetItems().Stop().ToArray();
        var four = new Dictionary<string, byte[]> { ["0"] = TorchPickleBuilder.Floats(1, 2, 3, 4) };
        var e1 = Assert.Throws<CheckpointFormatException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(Pkl(4, 0, [4]), new Dictionary<string, byte[]>())), "m.bin"));
        Assert.Contains("missing", e1.Message);
        var e2 = Assert.Throws<CheckpointFormatException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(Pkl(8, 0, [8]), four)), "m.bin"));
        Assert.Contains("only 16 bytes", e2.Message);
        var e3 = Assert.Throws<CheckpointFormatException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(Pkl(4, 2, [2, 2]), four)), "m.bin"));
        Assert.Contains("reaches element 5", e3.Message);
        // A stride-0 view of one float claiming 2^28 rows must not allocate a gigabyte.
        var bomb = new TorchPickleBuilder().Proto().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", 4, 0, [1 << 28, 1], [0, 1]).SetItems().Stop().ToArray();
        var e4 = Assert.Throws<CheckpointLimitException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(bomb, four)), "m.bin"));
        Assert.Equal(CheckpointLimit.MaterializedBytes, e4.Limit);
    }

    [Fact]
    public void Non_tensor_values_are_rejected()
    {
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark().Str("epoch").Int(3).SetItems().Stop().ToArray();
        var e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(p, new Dictionary<string, byte[]>())), "ckpt.bin"));
        Assert.Contains("'epoch' is not a tensor", e.Message);
    }
}
