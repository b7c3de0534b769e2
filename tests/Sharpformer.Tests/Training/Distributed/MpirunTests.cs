using System.Diagnostics;
using System.Text.Json;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Training.Distributed;

/// <summary>A [Fact] skipped, with a message, where Open MPI's mpirun is not installed.</summary>
public sealed class MpirunFactAttribute : FactAttribute
{
    public MpirunFactAttribute()
    {
        if (MpirunTests.Mpirun is null)
            Skip = "Open MPI's mpirun is not installed (apt-get install -y openmpi-bin libopenmpi-dev); the data-parallel run over MPI cannot be checked here.";
    }
}

/// <summary>The CLI's <c>train</c> and <c>pretrain</c> verbs under <c>mpirun -np 2</c> on loopback, against one process with the doubled batch.</summary>
public sealed class MpirunTests : IDisposable
{
    public static string? Mpirun { get; } = new[] { "/usr/bin/mpirun", "/usr/local/bin/mpirun" }.FirstOrDefault(File.Exists);

    readonly string _dir = Directory.CreateTempSubdirectory("sf-mpirun-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "Sharpformer.Cli.dll");

    string[] TrainArgs(string output, int batch) =>
    [
        "train", "text-classifier", "--architecture", "seed-transformer", "--train", Path.Combine(_dir, "train.csv"), "--output", Path.Combine(_dir, output),
        "--epochs", "2", "--batch-size", batch.ToString(), "--dropout", "0", "--logging-steps", "1", "--threads", "1", "--no-progress",
    ];

    static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Root in a container: Open MPI refuses to start without these two.
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(entireProcessTree: true); throw new TimeoutException($"{file} did not finish in 3 minutes."); }
        return (p.ExitCode, output, err.Result);
    }

    static List<double> Losses(string metrics, string kind = "log", string key = "train_loss") => File.ReadLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
        .Where(e => e.GetProperty("kind").GetString() == kind).Select(e => e.GetProperty(key).GetDouble()).ToList();

    static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) Assert.True(Math.Abs(expected[i] - actual[i]) < tolerance, $"{what} {i + 1}: {expected[i]} vs {actual[i]}");
    }

    static void AssertSameModel(string one, string two, float tolerance)
    {
        using var a = SafeTensorsReader.Read(Path.Combine(one, "model.safetensors"));
        using var b = SafeTensorsReader.Read(Path.Combine(two, "model.safetensors"));
        Assert.Equal(a.Names, b.Names);
        foreach (var name in a.Names)
        {
            if (!DTypes.IsFloatingPoint(a[name].DType)) { Assert.Equal(a[name].ToInt64(), b[name].ToInt64()); continue; }   // BERT's position_ids
            float[] x = a[name].ToFloat32(), y = b[name].ToFloat32();
            for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(x[i] - y[i]) < tolerance, $"{name}[{i}]: {x[i]} vs {y[i]}");
        }
    }

    [MpirunFact]
    public void TrainUnderMpirunTwoRanks_FollowsOneProcessOfTwiceTheBatch_AndOnlyRankZeroPrints()
    {
        string[][] words = [["ball", "goal", "team", "match", "score"], ["chip", "code", "cpu", "software", "data"]];
        var rng = new Random(0);
        // 36 texts, global batch 8: the epoch's last batch (4) leaves rank 1 without examples.
        File.WriteAllLines(Path.Combine(_dir, "train.csv"), ["text,label", .. Enumerable.Range(0, 36).Select(i =>
            string.Join(' ', Enumerable.Range(0, 5).Select(_ => words[i % 2][rng.Next(5)])) + "," + (i % 2 == 0 ? "sports" : "tech"))]);

        var one = Run("dotnet", [Cli, .. TrainArgs("one", 8)]);
        Assert.True(one.Code == 0, one.Err);
        var two = Run(Mpirun!, ["-np", "2", "--oversubscribe", "--bind-to", "none", "dotnet", Cli, .. TrainArgs("two", 4)]);
        Assert.True(two.Code == 0, two.Out + two.Err);

        // Rank 0 alone prints: one summary line, as the single process.
        // (Open MPI hands the ranks a pseudo-terminal, so .NET may prefix terminal-mode escapes: match within lines.)
        Assert.Equal(1, two.Out.Split('\n').Count(l => l.Contains("trained 10 steps", StringComparison.Ordinal)));
        var expected = Losses(Path.Combine(_dir, "one", "metrics.jsonl"));
        var actual = Losses(Path.Combine(_dir, "two", "metrics.jsonl"));
        Assert.Equal(10, expected.Count);   // ⌈36 / 8⌉ = 5 steps × 2 epochs
        Assert.Equal(expected.Count, actual.Count);
        // Tolerance: the same sums in another order (two half-batch means, then the all-reduce) over 10 Adam steps.
        for (int i = 0; i < expected.Count; i++) Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-5, $"step {i + 1}: {expected[i]} vs {actual[i]}");
        AssertSameModel(Path.Combine(_dir, "one"), Path.Combine(_dir, "two"), 1e-5f);
    }

    string[] PretrainArgs(string output, int batch, params string[] more) =>
    [
        "pretrain", "--corpus", Path.Combine(_dir, "corpus"), "--config", Path.Combine(_dir, "bert.json"), "--output", Path.Combine(_dir, output),
        "--vocab-size", "300", "--block-size", "16", "--batch-size", batch.ToString(), "--max-steps", "6", "--eval-steps", "3", "--eval-blocks", "5",
        "--log-steps", "1", "--threads", "1", "--json",
        // 0.06 ms: a checkpoint after every update, asked for by each rank's own clock (the ranks must agree to save together).
        "--checkpoint-minutes", "0.000001", .. more,
    ];

    [MpirunFact]
    public void PretrainUnderMpirunTwoRanks_FollowsOneProcessOfTwiceTheBatch_WithDropoutAndMasking_AndResumesOnOneProcess()
    {
        // 600 lines of a made-up language (6 held out); a tiny BERT with its default dropout 0.1.
        string[] words = ["the", "cat", "dog", "sat", "on", "mat", "ran", "to", "a", "house", "big", "small", "red", "green", "quickly",
            "and", "then", "jumped", "over", "fence", "garden", "morning", "played", "with", "ball", "children", "happy", "tired"];
        var rng = new Random(11);
        Directory.CreateDirectory(Path.Combine(_dir, "corpus"));
        File.WriteAllLines(Path.Combine(_dir, "corpus", "tiny.txt"), Enumerable.Range(0, 600)
            .Select(_ => string.Join(' ', Enumerable.Range(0, 6 + rng.Next(10)).Select(_ => words[rng.Next(words.Length)])) + " ."));
        File.WriteAllText(Path.Combine(_dir, "bert.json"), """{"model_type": "bert", "vocab_size": 10, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16}""");

        var one = Run("dotnet", [Cli, .. PretrainArgs("one", 8)]);
        Assert.True(one.Code == 0, one.Err);
        var two = Run(Mpirun!, ["-np", "2", "--oversubscribe", "--bind-to", "none", "dotnet", Cli, .. PretrainArgs("two", 4)]);
        Assert.True(two.Code == 0, two.Out + two.Err);

        // Rank 0 alone prints: six step lines, two evaluations and one summary, as the single process. (Lines are matched by
        // content: Open MPI's pseudo-terminal may prefix escapes.)
        int Count(string output, string kind) => output.Split('\n').Count(l => l.Contains($"\"kind\":\"{kind}\"", StringComparison.Ordinal));
        Assert.Equal((6, 2), (Count(two.Out, "log"), Count(two.Out, "eval")));
        Assert.Equal(1, two.Out.Split('\n').Count(l => l.Contains("\"objective\":\"mlm\"", StringComparison.Ordinal)));
        // Rank 0 trained the tokenizer and wrote the checkpoints (the last two kept) and the model, each once.
        Assert.Equal(File.ReadAllText(Path.Combine(_dir, "one", "tokenizer", "vocab.txt")), File.ReadAllText(Path.Combine(_dir, "two", "tokenizer", "vocab.txt")));
        Assert.Equal(["checkpoint-5", "checkpoint-6"], Directory.GetDirectories(Path.Combine(_dir, "two"), "checkpoint-*").Select(d => Path.GetFileName(d)!).Order().ToArray());
        Assert.Empty(Directory.GetDirectories(Path.Combine(_dir, "two"), ".tmp-*"));

        // Tolerance: the dropout and MLM masks are the same bits in both runs; the sums differ in order (two half-batch
        // sums, then the all-reduce) through 6 AdamW steps.
        string m1 = Path.Combine(_dir, "one", "metrics.jsonl"), m2 = Path.Combine(_dir, "two", "metrics.jsonl");
        AssertClose(Losses(m1), Losses(m2), 2e-5, "step");
        AssertClose(Losses(m1, "eval", "eval_loss"), Losses(m2, "eval", "eval_loss"), 2e-5, "evaluation");
        AssertSameModel(Path.Combine(_dir, "one"), Path.Combine(_dir, "two"), 2e-5f);

        // The 2-rank checkpoint of step 5 resumed by one process with the doubled batch: step 6 continues the same run.
        var resumed = Run("dotnet", [Cli, .. PretrainArgs("two", 8, "--resume", Path.Combine(_dir, "two", "checkpoint-5"))]);
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Equal(1, Count(resumed.Out, "log"));
        AssertClose(Losses(m1), Losses(m2), 2e-5, "step");
        AssertSameModel(Path.Combine(_dir, "one"), Path.Combine(_dir, "two"), 2e-5f);
    }
}
