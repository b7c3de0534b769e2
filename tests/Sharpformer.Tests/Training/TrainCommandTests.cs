using System.Text.Json.Nodes;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Tests.Training;

/// <summary>The train / evaluate verbs run in-process on a tiny emotion slice.</summary>
public sealed class TrainCommandTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "sf-traincli-" + Guid.NewGuid().ToString("N"));
    static readonly object ConsoleLock = new();

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    static (int Rc, string Out) Run(System.CommandLine.Command verb, params string[] args)
    {
        lock (ConsoleLock)
        {
            var previous = Console.Out;
            var sw = new StringWriter();
            Console.SetOut(sw);
            try
            {
                var root = new System.CommandLine.RootCommand("test");
                root.Subcommands.Add(verb);
                int rc = root.Parse(args).Invoke();
                return (rc, sw.ToString());
            }
            finally { Console.SetOut(previous); }
        }
    }

    [Fact]
    public void SeedTransformerTextClassifierWritesJsonPerEpochAndALoadableModel()
    {
        Directory.CreateDirectory(_root);
        var lines = File.ReadLines(SharedData.DataFile("emotion", "train.txt")).Take(60).ToList();
        string train = Path.Combine(_root, "train.txt"), eval = Path.Combine(_root, "eval.txt"), output = Path.Combine(_root, "model");
        File.WriteAllLines(train, lines.Take(40));
        File.WriteAllLines(eval, lines.Skip(40));
        var (rc, stdout) = Run(TrainCommand.Create(), "train", "text-classifier", "--train", train, "--eval", eval, "--architecture", "seed-transformer",
            "--epochs", "2", "--batch-size", "16", "--seed", "1", "--output", output, "--json", "--no-progress");
        Assert.Equal(0, rc);
        var records = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(2, records.Count);
        string[] keys = ["epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_f1_weighted", "samples_per_s"];
        foreach (var r in records) Assert.Equal(keys, r.Select(kv => kv.Key));
        Assert.Equal([1.0, 2.0], records.Select(r => r["epoch"]!.GetValue<double>()));
        Assert.Equal([3L, 6L], records.Select(r => r["step"]!.GetValue<long>()));
        Assert.Equal("sharpformer-seed-transformer", JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["model_type"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(output, "metrics.jsonl")));

        var (rc2, evalOut) = Run(EvaluateCommand.Create(), "evaluate", "--model", output, "--data", eval, "--json");
        Assert.Equal(0, rc2);
        var evaluated = JsonNode.Parse(evalOut)!;
        Assert.Equal(records[1]["eval_accuracy"]!.GetValue<double>(), evaluated["eval_accuracy"]!.GetValue<double>(), 12);
        Assert.Equal(records[1]["eval_loss"]!.GetValue<double>(), evaluated["eval_loss"]!.GetValue<double>(), 5);
    }

    [Fact]
    public async Task StopOnCtrlC_CancelledTraining_SaysWhereTheCheckpointIsAndHowToResume()
    {
        Task<int> run;
        var sw = new StringWriter();
        lock (ConsoleLock)
        {
            var previous = Console.Error;
            Console.SetError(sw);
            try
            {
                run = TrainCommand.StopOnCtrlC(CancellationToken.None,
                    ct => throw new Sharpformer.Training.TrainingCancelledException(7, "/runs/a/checkpoint-7", ct));
            }
            finally { Console.SetError(previous); }
        }
        Assert.Equal(130, await run);
        Assert.Equal("stopped at step 7; checkpoint saved to /runs/a/checkpoint-7; resume with --resume /runs/a/checkpoint-7 (and the same other options)",
            sw.ToString().Trim());
    }

    [Fact]
    public void ArchitectureAndModelAreMutuallyExclusive()
    {
        Directory.CreateDirectory(_root);
        string train = Path.Combine(_root, "t.txt");
        File.WriteAllLines(train, File.ReadLines(SharedData.DataFile("emotion", "train.txt")).Take(5));
        var (rc, _) = Run(TrainCommand.Create(), "train", "text-classifier", "--train", train, "--output", Path.Combine(_root, "o"));
        Assert.NotEqual(0, rc);
        Assert.False(Directory.Exists(Path.Combine(_root, "o")));
    }
}
