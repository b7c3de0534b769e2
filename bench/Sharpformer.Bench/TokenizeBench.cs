using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Sharpformer.Tokenization;

namespace Sharpformer.Bench;

/// <summary>
/// <c>tokenize</c>: bert-base-uncased over the 7,600 AG News test texts (title + " " + description), no padding.
/// Prints JSON lines: batch throughput on 1 and 2 threads (median of repeats), single-text latency (median µs)
/// and bytes allocated per text. Options: --data DIR (folder holding ag_news/ and bert-base-uncased/; else
/// SHARPFORMER_DATA, else the first shared/data found walking up from the working directory), --repeats N.
/// <c>tokenize-bpe</c>: the same over the GPT-2-style byte-level BPE of shared/fixtures/tokenizer-bytelevel-bpe, plus one
/// line timing <see cref="BpeTrainer"/> on the AG News train subset (the fixture's training run). --tokenizer PATH
/// benchmarks any tokenizer folder or file instead.
/// </summary>
internal static class TokenizeBench
{
    public static int Run(string[] args) => Run(args, bpe: false);

    public static int RunBpe(string[] args) => Run(args, bpe: true);

    static int Run(string[] args, bool bpe)
    {
        bool json = args.Contains("--json");
        string? dataArg = Arg(args, "--data");
        int repeats = int.TryParse(Arg(args, "--repeats"), out var r) ? r : 7;
        var data = dataArg ?? Environment.GetEnvironmentVariable("SHARPFORMER_DATA") ?? FindSharedData();
        if (data == null || !Directory.Exists(data))
        {
            Console.Error.WriteLine("error: cannot find the data folder; pass --data DIR or set SHARPFORMER_DATA.");
            return 1;
        }
        string suite = bpe ? "tokenize-bpe" : "tokenize";
        var tokenizerPath = Arg(args, "--tokenizer") ?? (bpe
            ? Path.Combine(data, "..", "fixtures", "tokenizer-bytelevel-bpe", "tokenizer.json")
            : Path.Combine(data, "bert-base-uncased", "tokenizer.json"));
        var tokenizer = Tokenizer.Load(tokenizerPath);
        var texts = ReadAgNews(Path.Combine(data, "ag_news", "test.csv"));
        var opts1 = new EncodeOptions { Threads = 1 };
        var opts2 = new EncodeOptions { Threads = 2 };

        long tokens = tokenizer.EncodeBatch(texts, opts1).Sum(e => (long)e.Length); // warm-up + token count
        for (int i = 0; i < 2; i++) tokenizer.EncodeBatch(texts, opts2);

        void Emit(object o)
        {
            var line = JsonSerializer.Serialize(o);
            if (json) Console.WriteLine(line); else Console.WriteLine(line.Replace(",\"", ", \""));
        }

        foreach (var (threads, o) in new[] { (1, opts1), (2, opts2) })
        {
            var secs = new List<double>();
            var cpu = new List<double>();
            var proc = Process.GetCurrentProcess();
            for (int i = 0; i < repeats; i++)
            {
                proc.Refresh();
                var cpu0 = proc.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                tokenizer.EncodeBatch(texts, o);
                secs.Add(sw.Elapsed.TotalSeconds);
                proc.Refresh();
                cpu.Add((proc.TotalProcessorTime - cpu0).TotalSeconds);
            }
            double med = Median(secs);
            Emit(new
            {
                suite, tokenizer = tokenizer.GetType().Name, mode = "batch", threads, texts = texts.Count, tokens,
                texts_per_s = Math.Round(texts.Count / med), tokens_per_s = Math.Round(tokens / med),
                median_s = Math.Round(med, 4), min_s = Math.Round(secs.Min(), 4), repeats,
                // CPU seconds of the whole process per batch: on a shared machine, texts per CPU-second shows the cost
                // independent of how much of the wall clock other processes took.
                cpu_s_median = Math.Round(Median(cpu), 4), texts_per_cpu_s = Math.Round(texts.Count / Median(cpu)),
                load_average = LoadAverage(),
            });
        }

        // Single-text latency: every text once per repeat, median over all calls.
        var lat = new double[texts.Count];
        var all = new List<double>();
        for (int rep = 0; rep < 3; rep++)
        {
            for (int i = 0; i < texts.Count; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                tokenizer.Encode(texts[i]);
                lat[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }
            all.AddRange(lat);
        }
        // Allocation per text, and its proportionality to length (bytes per token of the largest vs smallest quartile).
        var bytes = new long[texts.Count];
        var lens = new int[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            long b0 = GC.GetAllocatedBytesForCurrentThread();
            var e = tokenizer.Encode(texts[i]);
            bytes[i] = GC.GetAllocatedBytesForCurrentThread() - b0;
            lens[i] = e.Length;
        }
        var order = Enumerable.Range(0, texts.Count).OrderBy(i => lens[i]).ToArray();
        double PerToken(IEnumerable<int> idx) => idx.Sum(i => (double)bytes[i]) / idx.Sum(i => (double)lens[i]);
        int q = texts.Count / 4;
        Emit(new
        {
            suite, tokenizer = tokenizer.GetType().Name, mode = "single", threads = 1, texts = texts.Count,
            median_us = Math.Round(Median(all), 2), mean_us = Math.Round(all.Average(), 2), p90_us = Math.Round(Percentile(all, 0.9), 2),
            bytes_per_text_mean = Math.Round(bytes.Average()), bytes_per_token_mean = Math.Round(PerToken(Enumerable.Range(0, texts.Count)), 1),
            bytes_per_token_shortest_quartile = Math.Round(PerToken(order.Take(q)), 1),
            bytes_per_token_longest_quartile = Math.Round(PerToken(order.Skip(texts.Count - q)), 1),
        });
        if (bpe) TrainOnce(data, Emit);
        return 0;
    }

    // The trainer on the fixture's corpus (14,551 lines, vocabulary 2,000): wall time of one run.
    static void TrainOnce(string data, Action<object> emit)
    {
        var lines = Sharpformer.Data.AgNews.ReadTrainSubset(Path.Combine(data, "ag_news", "train_subset.csv")).Examples.Select(e => e.Text + "\n").ToList();
        var sw = Stopwatch.StartNew();
        var trained = BpeTrainer.Train(lines, new BpeTrainerOptions { VocabSize = 2000, SpecialTokens = ["<|endoftext|>"] });
        emit(new
        {
            suite = "tokenize-bpe", mode = "train", texts = lines.Count, vocab_size = trained.VocabSize,
            seconds = Math.Round(sw.Elapsed.TotalSeconds, 3), load_average = LoadAverage(),
        });
    }

    static double? LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static string? FindSharedData()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
        {
            var c = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(c)) return c;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var c = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(c)) return c;
        }
        return null;
    }

    static double Median(List<double> xs) => Percentile(xs, 0.5);

    static double Percentile(List<double> xs, double p)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s[Math.Min(s.Length - 1, (int)(p * (s.Length - 1) + 0.5))];
    }

    /// <summary>AG News CSV: three double-quoted fields per line, "" escapes a quote; returns title + " " + description.</summary>
    internal static List<string> ReadAgNews(string path)
    {
        var texts = new List<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            var fields = new List<string>();
            var sb = new StringBuilder();
            int i = 0;
            while (i < line.Length)
            {
                if (line[i] != '"') throw new FormatException($"{path}:{lineNo}: expected a quoted field at column {i + 1}.");
                sb.Clear();
                i++;
                while (true)
                {
                    if (i >= line.Length) throw new FormatException($"{path}:{lineNo}: unterminated quoted field.");
                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    sb.Append(line[i++]);
                }
                fields.Add(sb.ToString());
                if (i < line.Length)
                {
                    if (line[i] != ',') throw new FormatException($"{path}:{lineNo}: expected ',' at column {i + 1}.");
                    i++;
                }
            }
            if (fields.Count != 3) throw new FormatException($"{path}:{lineNo}: expected 3 fields (class, title, description), found {fields.Count}.");
            texts.Add(fields[1] + " " + fields[2]);
        }
        return texts;
    }
}
