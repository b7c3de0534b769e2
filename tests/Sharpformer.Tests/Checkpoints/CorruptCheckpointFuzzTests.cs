using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// Seeded corruption of checkpoint bytes: every case must either load (and every tensor must then convert) or raise the
/// typed format exception naming the file — never another exception type, never a hang.
/// </summary>
public class CorruptCheckpointFuzzTests
{
    const string Name = "fuzz.safetensors";

    /// <summary>A small valid file with every dtype, a scalar and an empty tensor.</summary>
    static byte[] BaseImage()
    {
        var rng = new Random(11);
        byte[] Rand(int n) { var b = new byte[n]; rng.NextBytes(b); return b; }
        CheckpointTensor[] tensors =
        [
            CheckpointTensor.FromFloat32("emb.weight", Enumerable.Range(0, 48).Select(i => i * 0.25f).ToArray(), 12, 4),
            CheckpointTensor.FromFloat32("emb.bias", new float[] { 1, 2, 3, 4 }, 4),
            CheckpointTensor.FromInt64("position_ids", new long[] { 0, 1, 2, 3, 4, 5 }, 1, 6),
            CheckpointTensor.FromBytes("h", DType.F16, Rand(16), 2, 4),
            CheckpointTensor.FromBytes("bf", DType.BF16, Rand(6), 3),
            CheckpointTensor.FromBytes("d", DType.F64, Rand(16), 2),
            CheckpointTensor.FromBytes("i32", DType.I32, Rand(12), 3),
            CheckpointTensor.FromBytes("u8", DType.U8, Rand(5), 5),
            CheckpointTensor.FromBytes("mask", DType.Bool, Rand(3), 3),
            CheckpointTensor.FromBytes("scalar", DType.I16, Rand(2)),
            CheckpointTensor.FromFloat32("empty", ReadOnlyMemory<float>.Empty, 0, 3),
        ];
        return SafeTensorsWriter.ToBytes(tensors);
    }

    static void Touch(StateDict sd)
    {
        foreach (var t in sd.Values)
        {
            if (DTypes.IsFloatingPoint(t.DType)) Assert.Equal(t.ElementCount, t.ToFloat32().Length);
            else Assert.Equal(t.ElementCount, t.ToInt64().Length);
        }
    }

    [Fact]
    public async Task Ten_thousand_mutated_safetensors_files_load_or_fail_typed()
    {
        var original = BaseImage();
        using (var ok = SafeTensorsReader.Read(original, Name)) Touch(ok);
        int headerLen = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var header = Encoding.UTF8.GetString(original, 8, headerLen).TrimEnd();
        var data = original.AsSpan(8 + headerLen).ToArray();
        var rng = new Random(20261123);
        int loaded = 0, rejected = 0;
        var kinds = new int[10];
        var run = Task.Run(() =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                int kind = i % 10;
                var bytes = Mutate(kind, original, header, data, headerLen, rng);
                try
                {
                    using var sd = SafeTensorsReader.Read(bytes, Name);
                    Touch(sd);
                    loaded++;
                }
                catch (CheckpointFormatException e)
                {
                    Assert.Equal(Name, e.File);
                    Assert.Contains(Name, e.Message);
                    rejected++;
                    kinds[kind]++;
                }
                catch (Exception e)
                {
                    Assert.Fail($"case {i} (mutation {kind}) threw {e.GetType().Name}: {e.Message}");
                }
            }
        });
        await run.WaitAsync(TimeSpan.FromSeconds(60)); // TimeoutException = a hang
        Assert.Equal(10_000, loaded + rejected);
        // Every mutation family must actually produce rejections, and some mutations must stay loadable.
        Assert.All(kinds, k => Assert.True(k > 0));
        Assert.True(loaded > 100, $"only {loaded} mutated files loaded");
    }

    static readonly string[] DTypeNames = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "f32", "", "Q4", "F3"];

    static byte[] Mutate(int kind, byte[] original, string header, byte[] data, int headerLen, Random rng)
    {
        switch (kind)
        {
            case 0: // header length bytes
            {
                var b = (byte[])original.Clone();
                b[rng.Next(8)] ^= (byte)(1 << rng.Next(8));
                return b;
            }
            case 1: // bytes inside the JSON
            {
                var b = (byte[])original.Clone();
                int flips = 1 + rng.Next(3);
                for (int f = 0; f < flips; f++) b[8 + rng.Next(headerLen)] = (byte)rng.Next(256);
                return b;
            }
            case 2: // truncation anywhere
                return original.AsSpan(0, rng.Next(original.Length)).ToArray();
            case 3: // data region grows or shrinks
            {
                int delta = rng.Next(-8, 9);
                if (delta == 0) delta = 1;
                var d = new byte[Math.Max(0, data.Length + delta)];
                data.AsSpan(0, Math.Min(data.Length, d.Length)).CopyTo(d);
                return SafeTensorsTestFiles.Build(header, d);
            }
            case 4: // wrong header length value
            {
                var b = (byte[])original.Clone();
                ulong v = rng.Next(4) switch
                {
                    0 => (ulong)rng.Next(0, 16),
                    1 => (ulong)(headerLen + rng.Next(-16, 17)),
                    2 => (ulong)rng.NextInt64(),
                    _ => ulong.MaxValue - (ulong)rng.Next(100),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(b, v);
                return b;
            }
            default: // JSON edits of one tensor entry
            {
                var o = JsonNode.Parse(header)!.AsObject();
                var names = o.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
                var entry = o[names[rng.Next(names.Count)]]!.AsObject();
                switch (kind)
                {
                    case 5:
                        entry["dtype"] = rng.Next(10) == 0 ? JsonValue.Create(rng.Next(5)) : DTypeNames[rng.Next(DTypeNames.Length)];
                        break;
                    case 6:
                    {
                        var shape = entry["shape"]!.AsArray();
                        JsonNode? v = rng.Next(8) switch
                        {
                            0 => -rng.Next(1, 5),
                            1 => 1.5,
                            2 => "4",
                            3 => long.MaxValue,
                            4 => (long)int.MaxValue + rng.Next(1, 1000),
                            5 => null,
                            _ => rng.Next(0, 20),
                        };
                        if (shape.Count == 0 || rng.Next(4) == 0) shape.Add(v);
                        else shape[rng.Next(shape.Count)] = v;
                        break;
                    }
                    case 7:
                    {
                        var off = entry["data_offsets"]!.AsArray();
                        int which = rng.Next(2);
                        long cur = off[which]!.GetValue<long>();
                        off[which] = rng.Next(6) switch
                        {
                            0 => cur + rng.Next(-16, 17),
                            1 => -cur - 1,
                            2 => long.MaxValue,
                            3 => JsonValue.Create(cur + 0.5),
                            4 => JsonValue.Create("0"),
                            _ => rng.Next(0, data.Length + 10),
                        };
                        if (rng.Next(10) == 0) off.Add(0);
                        break;
                    }
                    case 8: // remove or retype a field, or break metadata
                    {
                        string[] fields = ["dtype", "shape", "data_offsets"];
                        var f = fields[rng.Next(3)];
                        switch (rng.Next(4))
                        {
                            case 0: entry.Remove(f); break;
                            case 1: entry[f] = new JsonObject(); break;
                            case 2: o["__metadata__"] = rng.Next(2) == 0 ? new JsonArray(1) : new JsonObject { ["format"] = 1 }; break;
                            default: o[names[rng.Next(names.Count)]] = JsonValue.Create(rng.Next(3)); break;
                        }
                        break;
                    }
                    default: // textual edits the JSON model cannot express: duplicate keys, garbage, deep nesting
                    {
                        var text = o.ToJsonString();
                        int pos = 1 + rng.Next(text.Length - 1);
                        string insert = rng.Next(6) switch
                        {
                            0 => $"\"{names[rng.Next(names.Count)]}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}},",
                            1 => new string('[', 100),
                            2 => "\u00ff\u0000",
                            3 => ",",
                            4 => "}",
                            _ => "\"",
                        };
                        var edited = rng.Next(2) == 0 ? text.Insert(pos, insert) : text.Insert(1, insert);
                        var b = Encoding.UTF8.GetBytes(edited);
                        if (rng.Next(3) == 0) b[rng.Next(b.Length)] = 0xC3; // invalid UTF-8 lead byte
                        return SafeTensorsTestFiles.Build(Encoding.Latin1.GetString(b), data) is var img && rng.Next(2) == 0
                            ? RawHeader(b, data) : img;
                    }
                }
                return SafeTensorsTestFiles.Build(o.ToJsonString(), data);
            }
        }
    }

    static byte[] RawHeader(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "fewer than the 8-byte")]
    [InlineData(new byte[] { 255, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "only 2 bytes follow")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)']' }, "does not start with '{'")]
    [InlineData(new byte[] { 4, 0, 0, 0, 0, 0, 0, 0, (byte)'{', 0xFF, 0xFE, (byte)'}' }, "not valid UTF-8")]
    [InlineData(new byte[] { 3, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'1', (byte)'}' }, "not valid JSON")]
    public void Specific_header_defects_are_named(byte[] bytes, string fragment)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(bytes, "bad.safetensors"));
        Assert.Contains(fragment, e.Message);
        Assert.Contains("bad.safetensors", e.Message);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlaps")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""", 16, "hole")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, "data region holds 12")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}""", 8, "past the end")]
    [InlineData("""{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}""", 8, "unsupported dtype 'F8_E4M3'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "negative dimension")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}""", 8, "duplicate entry 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}""", 8, "not an array")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "before begin")]
    [InlineData("""{"__metadata__":{"format":["pt"]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "not a string")]
    [InlineData("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, "no \"dtype\"")]
    public void Specific_layout_defects_are_named(string header, int dataBytes, string fragment)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsReader.Read(SafeTensorsTestFiles.Build(header, new byte[dataBytes]), "bad.safetensors"));
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public async Task Mutated_torch_pickles_load_or_fail_typed()
    {
        byte[] pickle = [];
        var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using (var zip = ZipFile.OpenRead(SafeTensorsTestFiles.SeqClsBin))
        {
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                if (e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)) pickle = ms.ToArray();
                else if (e.FullName.Contains("/data/", StringComparison.Ordinal)) storages[e.FullName[(e.FullName.LastIndexOf('/') + 1)..]] = ms.ToArray();
            }
        }
        using (var clean = TorchCheckpointReader.FromPickle(pickle, k => storages.GetValueOrDefault(k), "fuzz.bin"))
            Assert.Equal(42, clean.Count);

        var rng = new Random(4242);
        int loaded = 0, rejected = 0, unsafeGlobals = 0;
        var run = Task.Run(() =>
        {
            for (int i = 0; i < 3000; i++)
            {
                var p = (byte[])pickle.Clone();
                switch (i % 4)
                {
                    case 0: p[rng.Next(p.Length)] = (byte)rng.Next(256); break;
                    case 1: for (int f = 0; f < 4; f++) p[rng.Next(p.Length)] ^= (byte)(1 << rng.Next(8)); break;
                    case 2: p = p.AsSpan(0, rng.Next(p.Length)).ToArray(); break;
                    default:
                    {
                        int pos = rng.Next(p.Length);
                        var ins = new byte[rng.Next(1, 6)];
                        rng.NextBytes(ins);
                        p = [.. p.AsSpan(0, pos), .. ins, .. p.AsSpan(pos)];
                        break;
                    }
                }
                try
                {
                    using var sd = TorchCheckpointReader.FromPickle(p, k => storages.GetValueOrDefault(k), "fuzz.bin");
                    foreach (var t in sd.Values)
                        if (t.ElementCount < 100_000) { if (DTypes.IsFloatingPoint(t.DType)) t.ToFloat32(); else t.ToInt64(); }
                    loaded++;
                }
                catch (CheckpointFormatException e) { Assert.Contains("fuzz.bin", e.Message); rejected++; }
                catch (UnsafePickleException e) { Assert.Contains("fuzz.bin", e.Message); unsafeGlobals++; }
                catch (Exception e) { Assert.Fail($"case {i} threw {e.GetType().Name}: {e.Message}"); }
            }
        });
        await run.WaitAsync(TimeSpan.FromSeconds(60)); // TimeoutException = a hang
        Assert.Equal(3000, loaded + rejected + unsafeGlobals);
        Assert.True(rejected > 500, $"only {rejected} rejections");
        Assert.True(unsafeGlobals > 0 && loaded > 0, $"loaded {loaded}, unsafe {unsafeGlobals}");
    }

    [Fact]
    public async Task Mutated_torch_zip_archives_load_or_fail_typed()
    {
        var pickle = new TorchPickleBuilder().Proto().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])
            .Str("b").Tensor("FloatStorage", "1", 3, 0, [3], [1])
            .SetItems().Stop().ToArray();
        var zip = TorchPickleBuilder.Zip(pickle, new Dictionary<string, byte[]>
        {
            ["0"] = TorchPickleBuilder.Floats(1, 2, 3, 4, 5, 6),
            ["1"] = TorchPickleBuilder.Floats(7, 8, 9),
        });
        using (var ok = TorchCheckpointReader.Read(new MemoryStream(zip), "fuzz.bin")) Assert.Equal([7f, 8, 9], ok["b"].ToFloat32());
        var rng = new Random(77);
        var failures = new List<string>();
        int rejected = 0;
        await Task.Run(() =>
        {
            for (int i = 0; i < 2000; i++)
            {
                var z = (byte[])zip.Clone();
                if (i % 3 == 2) z = z.AsSpan(0, rng.Next(z.Length)).ToArray();
                else for (int f = 0; f <= i % 3; f++) z[rng.Next(z.Length)] = (byte)rng.Next(256);
                try
                {
                    using var sd = TorchCheckpointReader.Read(new MemoryStream(z), "fuzz.bin");
                    foreach (var t in sd.Values) t.ToFloat32();
                }
                catch (CheckpointFormatException e) { Assert.Contains("fuzz.bin", e.Message); rejected++; }
                catch (UnsafePickleException) { rejected++; }
                catch (Exception e) { failures.Add($"case {i}: {e.GetType().Name}: {e.Message}"); }
            }
        }).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        Assert.True(rejected > 500, $"only {rejected} rejections");
    }
}
