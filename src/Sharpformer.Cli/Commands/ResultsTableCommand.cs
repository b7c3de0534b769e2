using System.CommandLine;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer results-table FILE…</c>: the markdown table of result lines (the JSON the training, feature and baseline verbs print last).</summary>
internal static class ResultsTableCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "Results files: one JSON result line per run (e.g. bench/transfer/run.sh's results.jsonl).", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("results-table", "Print a markdown table of result lines: metrics per task, method, model and init, the change against the random-init control, budget and CPU minutes.");
        cmd.Arguments.Add(files);
        cmd.SetAction(r =>
        {
            var rows = r.GetValue(files)!.SelectMany(TaskResult.ReadFile).ToList();
            r.InvocationConfiguration.Output.Write(TaskResultTable.Markdown(rows));
            return 0;
        });
        return cmd;
    }
}
