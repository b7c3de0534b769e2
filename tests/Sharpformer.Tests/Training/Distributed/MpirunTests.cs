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

/// <summary>The CLI's <c>train</c> verb under <c>mpirun -np 2</c> on loopback, against one process with the doubled batch.</summary>
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

    static List<double> Losses(string metrics) => File.ReadLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
        .Where(e => e.GetProperty("kind").GetString() == "log").Select(e => e.GetProperty("train_loss").GetDouble()).ToList();

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
        using var a = SafeTensorsReader.Read(Path.Combine(_dir, "one", "model.safetensors"));
        using var b = SafeTensorsReader.Read(Path.Combine(_dir, "two", "model.safetensors"));
        Assert.Equal(a.Names, b.Names);
        foreach (var name in a.Names)
        {
            float[] x = a[name].ToFloat32(), y = b[name].ToFloat32();
            for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(x[i] - y[i]) < 1e-5, $"{name}[{i}]: {x[i]} vs {y[i]}");
        }
    }
}
