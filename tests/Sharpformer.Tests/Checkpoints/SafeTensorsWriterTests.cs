using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

public class SafeTensorsWriterTests
{
    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("bert-tiny-uncased-mlm")]
    [InlineData("distilbert-tiny-uncased-tokcls")]
    public void Rewriting_a_fixture_reproduces_it_byte_for_byte(string dir)
    {
        var path = SharedData.Fixture(dir, "model.safetensors");
        var original = File.ReadAllBytes(path);
        using var sd = SafeTensorsReader.Read(path);
        var tmp = SafeTensorsTestFiles.TempDir();
        try
        {
            var outPath = Path.Combine(tmp, "model.safetensors");
            SafeTensorsWriter.Write(outPath, sd.Values, sd.Metadata);
            Assert.Equal(original, File.ReadAllBytes(outPath));
            Assert.Empty(Directory.GetFiles(tmp, "*.tmp", SearchOption.AllDirectories));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Float_tuples_round_trip_and_layout_is_hf_style()
    {
        var rng = new Random(3);
        var w = Enumerable.Range(0, 12).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var b = new[] { 1f, float.Epsilon, -0f };
        var tmp = SafeTensorsTestFiles.TempDir();
        try
        {
            var path = Path.Combine(tmp, "sub", "out.safetensors");
            SafeTensorsWriter.Write(path, [("z.weight", new[] { 3, 4 }, (ReadOnlyMemory<float>)w), ("a.bias", new[] { 3 }, b)]);
            var bytes = File.ReadAllBytes(path);
            ulong n = BitConverter.ToUInt64(bytes, 0);
            Assert.Equal(0UL, n % 8);
            var header = System.Text.Encoding.UTF8.GetString(bytes, 8, (int)n);
            Assert.StartsWith("""{"__metadata__":{"format":"pt"},"a.bias":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"z.weight":""", header);
            using var sd = SafeTensorsReader.Read(path);
            Assert.Equal(["a.bias", "z.weight"], sd.Names);
            Assert.Equal(w, sd["z.weight"].ToFloat32());
            Assert.Equal(b.Select(BitConverter.SingleToInt32Bits), sd["a.bias"].ToFloat32().Select(BitConverter.SingleToInt32Bits));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Duplicate_names_and_shape_mismatch_are_rejected()
    {
        var t = CheckpointTensor.FromFloat32("x", new float[2], 2);
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.ToBytes([t, t]));
        Assert.Throws<ArgumentException>(() => CheckpointTensor.FromFloat32("y", new float[3], 2, 2));
    }
}
