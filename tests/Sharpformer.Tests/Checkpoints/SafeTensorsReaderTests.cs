using System.Buffers.Binary;
using System.Text.Json;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

public class SafeTensorsReaderTests
{
    [Fact]
    public void Fixture_tensors_match_reference_sums_and_norms()
    {
        // initial_param_stats were computed by PyTorch (float64 accumulation) from exactly this file.
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedData.Fixture("training", "bert-tiny-seqcls-train.json")));
        var stats = doc.RootElement.GetProperty("initial_param_stats");
        using var sd = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
        Assert.Equal(CheckpointFormat.SafeTensors, sd.Format);
        Assert.Equal("pt", sd.Metadata["format"]);
        int checkedCount = 0;
        foreach (var p in stats.EnumerateObject())
        {
            var values = sd[p.Name].ToFloat32();
            double sum = 0, sq = 0;
            foreach (var v in values) { sum += v; sq += (double)v * v; }
            double refSum = p.Value.GetProperty("sum").GetDouble(), refL2 = p.Value.GetProperty("l2").GetDouble();
            Assert.True(Math.Abs(sum - refSum) <= 1e-6 * Math.Max(1, Math.Abs(refSum)), $"{p.Name}: sum {sum} vs {refSum}");
            Assert.True(Math.Abs(Math.Sqrt(sq) - refL2) <= 1e-7 * Math.Max(1, refL2), $"{p.Name}: l2 {Math.Sqrt(sq)} vs {refL2}");
            checkedCount++;
        }
        Assert.Equal(41, checkedCount);
        Assert.Equal(42, sd.Count); // 41 parameters + the position_ids buffer
    }

    [Fact]
    public void Fixture_shapes_dtypes_and_position_ids_buffer()
    {
        using var sd = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
        var we = sd["bert.embeddings.word_embeddings.weight"];
        Assert.Equal([30522, 64], we.Shape);
        Assert.Equal(DType.F32, we.DType);
        Assert.Equal(30522L * 64, we.ElementCount);
        Assert.Equal([4, 64], sd["classifier.weight"].Shape);
        var pos = sd["bert.embeddings.position_ids"];
        Assert.Equal(DType.I64, pos.DType);
        Assert.Equal([1, 128], pos.Shape);
        Assert.Equal(Enumerable.Range(0, 128).Select(i => (long)i).ToArray(), pos.ToInt64());
        Assert.Throws<NotSupportedException>(() => pos.ToFloat32());
        Assert.Throws<NotSupportedException>(() => we.ToInt64());
        // Names come back in file (= sorted) order.
        Assert.Equal(sd.Names.OrderBy(n => n, StringComparer.Ordinal), sd.Names);
    }

    [Fact]
    public void Memory_entry_point_reads_the_same_values_as_the_memory_map()
    {
        var bytes = File.ReadAllBytes(SafeTensorsTestFiles.SeqClsSafeTensors);
        using var mapped = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
        using var inMemory = SafeTensorsReader.Read(bytes, "copy");
        Assert.Equal(mapped.Names, inMemory.Names);
        foreach (var name in mapped.Names)
            Assert.Equal(mapped[name].ToBytes(), inMemory[name].ToBytes());
        // And the raw bytes are the file's bytes at the header offsets, read independently here.
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var offs = header.RootElement.GetProperty("classifier.bias").GetProperty("data_offsets");
        int begin = 8 + (int)n + offs[0].GetInt32();
        var expected = new float[4];
        for (int i = 0; i < 4; i++) expected[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(begin + 4 * i));
        Assert.Equal(expected, mapped["classifier.bias"].ToFloat32());
    }

    [Fact]
    public void Half_precision_types_widen_exactly()
    {
        // F16: 1.0 = 0x3C00, -2.5 = 0xC100, 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001.
        // BF16: 1.0 = 0x3F80, -2.5 = 0xC020, 3.0e38-ish = 0x7F7F, 2^-133 subnormal = 0x0001.
        ushort[] f16 = [0x3C00, 0xC100, 0x7BFF, 0x0001];
        ushort[] bf16 = [0x3F80, 0xC020, 0x7F7F, 0x0001];
        double[] f64 = [0.1, -1e300, 3.5];
        var data = new byte[8 + 8 + 24];
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(2 * i), f16[i]);
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(8 + 2 * i), bf16[i]);
        for (int i = 0; i < 3; i++) BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(16 + 8 * i), f64[i]);
        var file = SafeTensorsTestFiles.Build(
            """{"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]},"c":{"dtype":"F64","shape":[3],"data_offsets":[16,40]}}""",
            data);
        using var sd = SafeTensorsReader.Read(file);
        Assert.Equal([1f, -2.5f, 65504f, MathF.Pow(2, -24)], sd["a"].ToFloat32());
        Assert.Equal([1f, -2.5f, BitConverter.UInt32BitsToSingle(0x7F7F0000), BitConverter.UInt32BitsToSingle(0x00010000)], sd["b"].ToFloat32());
        Assert.Equal([0.1f, float.NegativeInfinity, 3.5f], sd["c"].ToFloat32());
        Assert.Equal(DType.F16, sd["a"].DType);
    }

    [Fact]
    public void BFloat16_widening_matches_the_scalar_definition_for_every_tail_length()
    {
        var rng = new Random(9);
        for (int n = 0; n <= 100; n++)
        {
            var bits = new ushort[n];
            for (int i = 0; i < n; i++) bits[i] = (ushort)rng.Next(65536); // includes NaN, Inf, subnormal patterns
            var dst = new float[n];
            CheckpointTensor.WidenBFloat16(bits, dst);
            for (int i = 0; i < n; i++) Assert.Equal((uint)bits[i] << 16, BitConverter.SingleToUInt32Bits(dst[i]));
        }
    }

    [Fact]
    public void Integer_types_and_empty_tensors()
    {
        var data = new byte[4 + 2 + 2 + 3];
        BinaryPrimitives.WriteInt32LittleEndian(data, -7);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(4), -300);
        data[6] = 0xFF; data[7] = 0x80; // I8: -1, -128
        data[8] = 0; data[9] = 1; data[10] = 2; // BOOL (any non-zero is true)
        var file = SafeTensorsTestFiles.Build(
            """{"__metadata__":{"note":"x"},"i32":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"i16":{"dtype":"I16","shape":[],"data_offsets":[4,6]},"i8":{"dtype":"I8","shape":[2],"data_offsets":[6,8]},"b":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]},"empty":{"dtype":"F32","shape":[0,5],"data_offsets":[11,11]}}""",
            data);
        using var sd = SafeTensorsReader.Read(file);
        Assert.Equal([-7L], sd["i32"].ToInt64());
        Assert.Equal(0, sd["i16"].Rank);
        Assert.Equal([-300L], sd["i16"].ToInt64());
        Assert.Equal([-1L, -128L], sd["i8"].ToInt64());
        Assert.Equal([0L, 1L, 1L], sd["b"].ToInt64());
        Assert.Empty(sd["empty"].ToFloat32());
        Assert.Equal("x", sd.Metadata["note"]);
    }

    [Fact]
    public void Disposed_state_dict_refuses_reads()
    {
        var sd = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
        var t = sd["classifier.bias"];
        sd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToFloat32());
    }
}
