using System.Text.Json.Nodes;
using Sharpformer.Cli.Commands;
using Sharpformer.Training.Workflows;

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

    // The fine-tuning verb's last --json line is a result row whose metrics are the last epoch's evaluation.
    [Fact]
    public void FineTuningVerbEndsWithAResultLine()
    {
        string seqCls = SharedData.Fixture("bert-tiny-uncased-seqcls");
        Directory.CreateDirectory(_root);
        var lines = File.ReadLines(SharedData.DataFile("emotion", "train.txt")).Take(36).ToList();
        string train = Path.Combine(_root, "train.txt"), eval = Path.Combine(_root, "test.txt");
        File.WriteAllLines(train, lines.Take(24));
        File.WriteAllLines(eval, lines.Skip(24));
        var (code, stdout) = Run(TrainCommand.Create(), "train", "text-classifier", "--model", seqCls, "--train", train, "--eval", eval, "--output", Path.Combine(_root, "m"),
            "--epochs", "1", "--batch-size", "8", "--learning-rate", "1e-3", "--max-length", "32", "--seed", "2", "--random-init", "--task", "emotion",
            "--json", "--no-progress", "--threads", "1");
        Assert.Equal(0, code);
        var outLines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, outLines.Length);
        var epoch = System.Text.Json.Nodes.JsonNode.Parse(outLines[0])!;
        var row = TaskResult.Parse(outLines[1], "stdout", 2);
        Assert.Equal(("emotion", "test", "fine-tune", seqCls, "bert", "random", 2), (row.Task, row.Split, row.Method, row.Model, row.ModelType, row.Init, row.Seed));
        Assert.Equal(epoch["eval_accuracy"]!.GetValue<double>(), row.Metrics["accuracy"], 6);
        Assert.Equal(epoch["eval_f1_weighted"]!.GetValue<double>(), row.Metrics["f1_weighted"], 6);
        Assert.Equal(1.0, row.Budget["epochs"]);
        Assert.Equal(8.0, row.Budget["batch_size"]);
        Assert.Equal(24.0, row.Budget["train_examples"]);
        Assert.Equal(3.0, row.Budget["steps"]);
        Assert.Equal(32.0, row.Budget["max_length"]);
        Assert.True(row.Seconds > 0 && row.CpuSeconds > 0);
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
