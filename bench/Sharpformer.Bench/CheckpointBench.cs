using System.Diagnostics;
using System.Globalization;
using Sharpformer.Checkpoints;

namespace Sharpformer.Bench;

/// <summary>
/// Checkpoint I/O: safetensors write, open (mmap + header validation) and conversion to float32 from F32, F16 and BF16
/// files of a BERT-base-sized synthetic state dict (default 110M parameters ≈ 440 MB as F32, written to the temp folder),
/// plus loading the fixture checkpoints (.safetensors and .bin) when found.
/// Options: --json, --repeats N (default 5), --params-millions N (default 110), --fixtures DIR (default: ../shared/fixtures
/// searched upwards, or SHARPFORMER_SHARED). Reports the median and best of the repeats (page cache warm after the first).
/// </summary>
internal static class CheckpointBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int repeats = int.Parse(Option(args, "--repeats") ?? "5", CultureInfo.InvariantCulture);
        double millions = double.Parse(Option(args, "--params-millions") ?? "110", CultureInfo.InvariantCulture);
        var dir = Path.Combine(Path.GetTempPath(), "sharpformer-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // BERT-base-like tensor sizes: 768×3072 blocks until the budget is used.
            const int Rows = 768, Cols = 3072;
            int count = Math.Max(1, (int)(millions * 1e6 / (Rows * Cols)));
            var rng = new Random(1);
            var data = new float[Rows * Cols];
            for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() - 0.5);
            long elements = (long)count * data.Length;
            var f32 = Enumerable.Range(0, count).Select(i => CheckpointTensor.FromFloat32($"layer.{i}.weight", data, Rows, Cols)).ToList();
            var halfBytes = new byte[data.Length * 2];
            var bf16Bytes = new byte[data.Length * 2];
            for (int i = 0; i < data.Length; i++)
            {
                BitConverter.TryWriteBytes(halfBytes.AsSpan(2 * i), (Half)data[i]);
                BitConverter.TryWriteBytes(bf16Bytes.AsSpan(2 * i), (ushort)(BitConverter.SingleToUInt32Bits(data[i]) >> 16));
            }
            var f16 = Enumerable.Range(0, count).Select(i => CheckpointTensor.FromBytes($"layer.{i}.weight", DType.F16, halfBytes, Rows, Cols)).ToList();
            var bf16 = Enumerable.Range(0, count).Select(i => CheckpointTensor.FromBytes($"layer.{i}.weight", DType.BF16, bf16Bytes, Rows, Cols)).ToList();

            var paths = new Dictionary<string, string>();
            foreach (var (name, tensors) in new[] { ("f32", f32), ("f16", f16), ("bf16", bf16) })
            {
                var path = Path.Combine(dir, $"{name}.safetensors");
                paths[name] = path;
                long bytes = tensors.Sum(t => t.ByteLength);
                Report(json, $"safetensors_write_{name}", bytes, Time(repeats, () => SafeTensorsWriter.Write(path, tensors)));
            }
            var buffer = new float[data.Length];
            foreach (var (name, path) in paths)
            {
                // Opening maps the file and validates the header; no tensor bytes are touched, so no throughput figure.
                Report(json, $"safetensors_open_{name}", new FileInfo(path).Length, Time(repeats, () => { using var sd = SafeTensorsReader.Read(path); }), throughput: false);
                Report(json, $"safetensors_to_f32_{name}", elements * 4, Time(repeats, () =>
                {
                    using var sd = SafeTensorsReader.Read(path);
                    foreach (var t in sd.Values) t.CopyTo(buffer);
                }));
            }

            if (FindFixtures(Option(args, "--fixtures")) is { } fixtures)
            {
                var seqcls = Path.Combine(fixtures, "bert-tiny-uncased-seqcls");
                long fbytes = new FileInfo(Path.Combine(seqcls, "model.safetensors")).Length;
                Report(json, "fixture_safetensors_load_all", fbytes, Time(repeats * 4, () =>
                {
                    using var sd = CheckpointLoader.Load(Path.Combine(seqcls, "model.safetensors"));
                    foreach (var t in sd.Values) { if (DTypes.IsFloatingPoint(t.DType)) t.ToFloat32(); else t.ToInt64(); }
                }));
                Report(json, "fixture_bin_load_all", new FileInfo(Path.Combine(seqcls, "pytorch_model.bin")).Length, Time(repeats * 4, () =>
                {
                    using var sd = CheckpointLoader.Load(Path.Combine(seqcls, "pytorch_model.bin"));
                    foreach (var t in sd.Values) { if (DTypes.IsFloatingPoint(t.DType)) t.ToFloat32(); else t.ToInt64(); }
                }));
            }
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    static (double Median, double Best) Time(int repeats, Action action)
    {
        action(); // warm-up: JIT and page cache
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            action();
            times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        return (times[repeats / 2], times[0]);
    }

    static void Report(bool json, string name, long bytes, (double Median, double Best) t, bool throughput = true)
    {
        double mb = bytes / 1e6, gbps = bytes / (t.Median * 1e6);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(json
            ? string.Create(inv, $"{{\"suite\":\"checkpoints\",\"name\":\"{name}\",\"mb\":{mb:F1},\"ms\":{t.Median:F2},\"best_ms\":{t.Best:F2}{(throughput ? $",\"gb_per_s\":{gbps:F2}" : "")}}}")
            : string.Create(inv, $"{name,-30} {mb,9:F1} MB {t.Median,10:F2} ms (best {t.Best,9:F2}){(throughput ? $" {gbps,7:F2} GB/s" : "")}"));
    }

    internal static string? FindFixtures(string? given)
    {
        if (given is not null) return Directory.Exists(given) ? given : null;
        if (Environment.GetEnvironmentVariable("SHARPFORMER_SHARED") is { Length: > 0 } env) return Path.Combine(env, "fixtures");
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
        {
            var c = Path.Combine(d.FullName, "shared", "fixtures");
            if (Directory.Exists(c)) return c;
        }
        return null;
    }

    static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
