using System.IO.Compression;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>
/// Small hostile .bin files must be refused (or loaded cheaply) without the memory they ask for. Each case is sized so that the
/// unbounded reader allocates well over <see cref="AllocationBound"/>; the bounded one must stay under it.
/// </summary>
public class TorchCheckpointLimitTests
{
    const long AllocationBound = 64L << 20;
    const string Name = "hostile.bin";

    static (T Result, long Allocated) Measure<T>(Func<T> load)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = load();
        return (result, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    static CheckpointLimitException ReadRefused(byte[] zip, CheckpointLimit limit, TorchCheckpointLimits? limits = null)
    {
        var (e, allocated) = Measure(() => Assert.Throws<CheckpointLimitException>(() => TorchCheckpointReader.Read(new MemoryStream(zip), Name, limits)));
        Assert.Equal(limit, e.Limit);
        Assert.Equal(Name, e.File);
        Assert.Contains(Name, e.Message);
        Assert.Contains(limit.ToString(), e.Message);
        Assert.True(allocated < AllocationBound, $"allocated {allocated >> 20} MB before refusing");
        return e;
    }

    static byte[] Repeat(byte[] head, byte op, int count, byte[] tail)
    {
        var b = new byte[head.Length + count + tail.Length];
        head.CopyTo(b, 0);
        b.AsSpan(head.Length, count).Fill(op);
        tail.CopyTo(b, head.Length + count);
        return b;
    }

    [Fact]
    public void EmptyDictFlood_IsRefusedByTheObjectBudgetOfItsSize()
    {
        // 1 MB of EMPTY_DICT opcodes: unbounded, 1M dicts (~160 MB); bounded, at most 32 bytes of objects per pickle byte.
        var pickle = Repeat([0x80, 2, (byte)'('], (byte)'}', 1_000_000, [(byte)'l', (byte)'.']);
        var e = ReadRefused(TorchPickleBuilder.Zip(pickle, new Dictionary<string, byte[]>()), CheckpointLimit.UnpickledObjects);
        Assert.Equal(TorchCheckpointLimits.UnpickledBytesPerPickleByte * (long)pickle.Length, e.LimitBytes);
        Assert.Contains("MaxUnpickledBytes", e.Message);
    }

    [Fact]
    public void DeflatedPickle_LargerThanTheArchive_IsRefusedBeforeInflating()
    {
        // A 24 MB pickle of cheap opcodes (None, POP) deflates to ~25 KB; unbounded, it was inflated and unpickled in full.
        var pickle = Repeat([0x80, 2], (byte)'N', 12_000_000, [(byte)'}', (byte)'.']);
        for (int i = 3; i < pickle.Length - 2; i += 2) pickle[i] = (byte)'0';
        var zip = TorchPickleBuilder.Zip(pickle, new Dictionary<string, byte[]>(), pickleCompression: CompressionLevel.SmallestSize);
        Assert.True(zip.Length < 100_000);
        var e = ReadRefused(zip, CheckpointLimit.DecompressedBytes);
        Assert.Contains("data.pkl", e.Message);
        Assert.Contains("torch.save", e.Message);

        // The same pickle stored uncompressed is within the archive, so only the configurable cap applies.
        var stored = TorchPickleBuilder.Zip(pickle, new Dictionary<string, byte[]>());
        var cap = ReadRefused(stored, CheckpointLimit.PickleBytes, new TorchCheckpointLimits { MaxPickleBytes = 1 << 20 });
        Assert.Equal(1 << 20, cap.LimitBytes);
        using var ok = TorchCheckpointReader.Read(new MemoryStream(stored), Name);
        Assert.Empty(ok);
    }

    /// <summary>A 1024×1024 float storage (4 MB) holding its own flat index.</summary>
    static Dictionary<string, byte[]> SquareStorage() =>
        new() { ["0"] = TorchPickleBuilder.Floats(Enumerable.Range(0, 1 << 20).Select(i => (float)i).ToArray()) };

    [Fact]
    public void DistinctTransposedViews_BeyondTwiceTheirStorage_AreRefusedBeforeAnyCopy()
    {
        // 40 transposed 1000×1000 windows (4 MB each) of one 4 MB storage: unbounded, 160 MB of copies.
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark();
        for (int i = 0; i < 40; i++) p.Str($"v{i}").Tensor("FloatStorage", "0", 1 << 20, i, [1000, 1000], [1, 1024]);
        var e = ReadRefused(TorchPickleBuilder.Zip(p.SetItems().Stop().ToArray(), SquareStorage()), CheckpointLimit.MaterializedBytes);
        Assert.Equal((1 << 20) + 2L * (4 << 20), e.LimitBytes);
        Assert.Contains("tensor 'v2' brings the total to 12000000", e.Message); // v0 + v1 fit in 1 MiB + 2 × 4 MB
    }

    [Fact]
    public void ZeroStrideViews_AreRefusedBeforeAnyCopy()
    {
        // Three broadcasts of a 16-byte storage to 64 MB each: unbounded, 192 MB of copies.
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark();
        for (int i = 0; i < 3; i++) p.Str($"b{i}").Tensor("FloatStorage", "0", 4, 0, [1 << 22, 4], [0, 1]);
        var e = ReadRefused(TorchPickleBuilder.Zip(p.SetItems().Stop().ToArray(), new Dictionary<string, byte[]> { ["0"] = TorchPickleBuilder.Floats(1, 2, 3, 4) }),
            CheckpointLimit.MaterializedBytes);
        Assert.Equal((1 << 20) + 32, e.LimitBytes);
        Assert.Contains("tensor 'b0'", e.Message);
    }

    [Fact]
    public void MemoizedViewUnderManyNames_IsCopiedOnceAndOnlyWhenRead()
    {
        // One transposed 4 MB view, memoized and referenced by 300 names: unbounded, 300 copies (1.2 GB). torch.load
        // gives every name the same tensor, so one lazy copy is the faithful answer.
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark()
            .Str("t0").Tensor("FloatStorage", "0", 1 << 20, 0, [1024, 1024], [1, 1024]).Put(1);
        for (int i = 1; i < 300; i++) p.Str($"t{i}").Get(1);
        var zip = TorchPickleBuilder.Zip(p.SetItems().Stop().ToArray(), SquareStorage());

        var (sd, loadBytes) = Measure(() => TorchCheckpointReader.Read(new MemoryStream(zip), Name));
        using (sd)
        {
            Assert.Equal(300, sd.Count);
            Assert.True(loadBytes < 3 * (4 << 20), $"loading allocated {loadBytes >> 20} MB"); // the storage read, no copy yet
            var (first, firstBytes) = Measure(() => sd["t0"].ToFloat32());
            var (last, lastBytes) = Measure(() => sd["t299"].ToFloat32());
            Assert.Equal(first, last);
            Assert.Equal(1024f, first[1]);               // t[0,1] = storage[1·1024]
            Assert.Equal(1f + 3 * 1024, first[1024 + 3]); // t[1,3] = storage[1 + 3·1024]
            Assert.InRange(firstBytes, 8L << 20, 9L << 20);  // the one row-major copy + the float[] result
            Assert.InRange(lastBytes, 4L << 20, 5L << 20);   // only the float[] result
        }
    }

    [Fact]
    public void SmallBroadcastAndSlices_WithinTheirStorage_StillLoad()
    {
        // Legitimate views: two column slices of a 2×4 storage and a broadcast row, 7 × 4 bytes of copies for 32 of storage.
        var p = new TorchPickleBuilder().Proto().EmptyDict().Mark()
            .Str("left").Tensor("FloatStorage", "0", 8, 0, [2, 2], [4, 1])
            .Str("right").Tensor("FloatStorage", "0", 8, 2, [2, 2], [4, 1])
            .Str("rows").Tensor("FloatStorage", "0", 8, 4, [3, 1], [0, 1])
            .SetItems().Stop().ToArray();
        using var sd = TorchCheckpointReader.Read(new MemoryStream(TorchPickleBuilder.Zip(p, new Dictionary<string, byte[]> { ["0"] = TorchPickleBuilder.Floats(0, 1, 2, 3, 4, 5, 6, 7) })), Name);
        Assert.Equal([0f, 1, 4, 5], sd["left"].ToFloat32());
        Assert.Equal([2f, 3, 6, 7], sd["right"].ToFloat32());
        Assert.Equal([4f, 4, 4], sd["rows"].ToFloat32());
    }

    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("gpt2-tiny")]
    public void RealStateDictPickles_SpendLessThanHalfTheirDerivedBudget(string fixture)
    {
        var path = SharedData.Fixture(fixture, "pytorch_model.bin");
        byte[] pickle;
        using (var zip = ZipFile.OpenRead(path))
        {
            var entry = zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
            using var s = entry.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            pickle = ms.ToArray();
        }
        var unpickler = new RestrictedUnpickler(pickle, path, pid => new TorchStorageRef((string)pid[2]!, DType.F32, (long)pid[4]!, "cpu"), long.MaxValue);
        Assert.IsType<PyDict>(unpickler.Load());
        double perByte = (double)unpickler.SpentBytes / pickle.Length;
        Assert.InRange(perByte, 4, TorchCheckpointLimits.UnpickledBytesPerPickleByte / 2.0);
    }
}
