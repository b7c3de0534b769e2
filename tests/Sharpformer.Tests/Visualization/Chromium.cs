using System.Diagnostics;
using System.IO.Compression;

namespace Sharpformer.Tests.Visualization;

/// <summary>A [Fact] that is skipped, with a message, where Chromium is not installed.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Chromium.Path is null)
            Skip = "Chromium is not installed (apt-get install -y chromium); the headless-browser check cannot run here.";
    }
}

/// <summary>Drives headless Debian Chromium: screenshots and DOM dumps.</summary>
public static class Chromium
{
    public static string? Path { get; } = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);

    static string[] CommonArgs(string profile) =>
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", $"--user-data-dir={profile}",
    ];

    /// <summary>Screenshots <paramref name="url"/> (a file path or http URL) into a PNG and returns its path.</summary>
    public static string Screenshot(string url, string pngPath, int width = 1200, int height = 900, int virtualTimeBudgetMs = 0)
    {
        var profile = TempDir();
        var args = CommonArgs(profile).ToList();
        args.Add($"--screenshot={pngPath}");
        args.Add($"--window-size={width},{height}");
        if (virtualTimeBudgetMs > 0) args.Add($"--virtual-time-budget={virtualTimeBudgetMs}");
        args.Add(url);
        try { Run(args, out _); }
        finally { TryDelete(profile); }
        if (!File.Exists(pngPath)) throw new InvalidOperationException($"chromium wrote no screenshot to {pngPath}.");
        return pngPath;
    }

    /// <summary>The DOM after scripts ran (<c>--dump-dom</c>).</summary>
    public static string DumpDom(string url, int virtualTimeBudgetMs = 5000)
    {
        var profile = TempDir();
        var args = CommonArgs(profile).ToList();
        args.Add("--dump-dom");
        args.Add($"--virtual-time-budget={virtualTimeBudgetMs}");
        args.Add(url);
        try { Run(args, out var stdout); return stdout; }
        finally { TryDelete(profile); }
    }

    static string TempDir()
    {
        var d = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sf-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static void Run(IEnumerable<string> args, out string stdout)
    {
        var psi = new ProcessStartInfo(Path ?? throw new InvalidOperationException("chromium missing"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(90_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException("chromium did not finish within 90 s."); }
        stdout = outTask.Result;
        _ = errTask.Result;
    }
}

/// <summary>Minimal PNG reader (8-bit RGB/RGBA/gray, non-interlaced) to check that a screenshot shows something.</summary>
public sealed class PngImage
{
    public int Width { get; private init; }
    public int Height { get; private init; }
    public int Channels { get; private init; }
    public byte[] Pixels { get; private init; } = [];

    public static PngImage Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        byte[] sig = [137, 80, 78, 71, 13, 10, 26, 10];
        if (bytes.Length < 8 || !bytes.AsSpan(0, 8).SequenceEqual(sig)) throw new InvalidDataException($"{path} is not a PNG.");
        int pos = 8, width = 0, height = 0, channels = 0;
        var idat = new MemoryStream();
        while (pos + 8 <= bytes.Length)
        {
            int len = (bytes[pos] << 24) | (bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3];
            var type = System.Text.Encoding.ASCII.GetString(bytes, pos + 4, 4);
            var body = bytes.AsSpan(pos + 8, len);
            if (type == "IHDR")
            {
                width = (body[0] << 24) | (body[1] << 16) | (body[2] << 8) | body[3];
                height = (body[4] << 24) | (body[5] << 16) | (body[6] << 8) | body[7];
                if (body[8] != 8 || body[12] != 0) throw new NotSupportedException("only 8-bit non-interlaced PNGs are read here.");
                channels = body[9] switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new NotSupportedException($"PNG colour type {body[9]}") };
            }
            else if (type == "IDAT") idat.Write(body);
            else if (type == "IEND") break;
            pos += 12 + len;
        }
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        var data = raw.ToArray();
        int stride = width * channels;
        var px = new byte[height * stride];
        for (int y = 0; y < height; y++)
        {
            int f = data[y * (stride + 1)];
            for (int x = 0; x < stride; x++)
            {
                int a = x >= channels ? px[y * stride + x - channels] : 0;
                int b = y > 0 ? px[(y - 1) * stride + x] : 0;
                int c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
                int v = data[y * (stride + 1) + 1 + x];
                int pred = f switch
                {
                    0 => 0, 1 => a, 2 => b, 3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"bad PNG filter {f}"),
                };
                px[y * stride + x] = (byte)(v + pred);
            }
        }
        return new PngImage { Width = width, Height = height, Channels = channels, Pixels = px };
    }

    static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>Number of distinct RGB colours (alpha ignored).</summary>
    public int DistinctColors()
    {
        var set = new HashSet<int>();
        for (int i = 0; i + Channels <= Pixels.Length; i += Channels)
            set.Add(Channels >= 3 ? (Pixels[i] << 16) | (Pixels[i + 1] << 8) | Pixels[i + 2] : Pixels[i]);
        return set.Count;
    }

    /// <summary>Fraction of pixels whose colour is "blue-ish" (the heatmap ramp): b − r ≥ 15.</summary>
    public double FractionMatching(Func<byte, byte, byte, bool> predicate)
    {
        long hit = 0, all = 0;
        for (int i = 0; i + Channels <= Pixels.Length; i += Channels, all++)
            if (Channels >= 3 && predicate(Pixels[i], Pixels[i + 1], Pixels[i + 2])) hit++;
        return (double)hit / all;
    }
}
