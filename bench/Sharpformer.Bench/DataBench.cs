using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Metrics;

namespace Sharpformer.Bench;

/// <summary>
/// Reader throughput on the shared datasets and seqeval scoring speed.
/// Options: --json, --repeats N (default 5), --data DIR (default: $SHARPFORMER_DATA, else shared/data above the binary).
/// Reports the median and fastest of the timed repeats after one warm-up read.
/// </summary>
internal static class DataBench
{
    public static int Run(string[] args)
    {
        bool json = args.Contains("--json");
        int repeats = int.Parse(BenchData.Option(args, "--repeats") ?? "5", CultureInfo.InvariantCulture);
        var data = BenchData.Folder(args);
        var cases = new (string Name, string File, Func<string, int> Read)[]
        {
            ("agnews_test", Path.Combine(data, "ag_news", "test.csv"), p => AgNews.ReadTest(p).Count),
            ("agnews_train_subset", Path.Combine(data, "ag_news", "train_subset.csv"), p => AgNews.ReadTrainSubset(p).Count),
            ("conll_iob1_train_to_iob2", Path.Combine(data, "conll2003", "original_iob1", "eng.train"), p => Conll.Read(p, new ConllOptions(Tags: ConllTags.ToIob2)).Count),
            ("conll_hf_train", Path.Combine(data, "conll2003", "hf_iob2", "train.txt"), p => Conll.Read(p).Count),
            ("emotion_train", Path.Combine(data, "emotion", "train.txt"), p => Emotion.Read(p).Count),
        };
        foreach (var (name, file, read) in cases)
        {
            int rows = read(file);
            var times = BenchData.Time(repeats, () => read(file));
            double mb = new FileInfo(file).Length / 1e6;
            BenchData.Print(json, new { suite = "data", name, rows, mb = Math.Round(mb, 3), ms = times.Median, best_ms = times.Best, mb_per_s = Math.Round(mb / (times.Median / 1000), 1) });
        }
        var gold = Conll.Read(Path.Combine(data, "conll2003", "hf_iob2", "train.txt"));
        var tags = gold.Select(s => s.Tags).ToArray();
        var t = BenchData.Time(repeats, () => Seqeval.Evaluate(tags, tags));
        BenchData.Print(json, new { suite = "data", name = "seqeval_evaluate_conll_train", rows = tags.Length, ms = t.Median, best_ms = t.Best });
        return 0;
    }
}

internal static class BenchData
{
    public static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static string Folder(string[] args)
    {
        var given = Option(args, "--data") ?? Environment.GetEnvironmentVariable("SHARPFORMER_DATA");
        if (!string.IsNullOrEmpty(given)) return given;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("Cannot find shared/data above the benchmark binary; pass --data DIR or set SHARPFORMER_DATA.");
    }

    public static (double Median, double Best) Time(int repeats, Action call)
    {
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            call();
            times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        return (Math.Round(times[repeats / 2], 2), Math.Round(times[0], 2));
    }

    public static void Print<T>(bool json, T row)
    {
        var text = JsonSerializer.Serialize(row);
        Console.WriteLine(json ? text : text.Trim('{', '}').Replace(",\"", "  ").Replace("\"", ""));
    }
}
