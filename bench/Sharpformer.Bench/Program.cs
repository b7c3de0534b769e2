namespace Sharpformer.Bench;

/// <summary>
/// Benchmarks print one JSON object per line (with --json) so results can be compared by scripts.
/// Usage: dotnet run -c Release --project bench/Sharpformer.Bench -- &lt;suite&gt; [--json] [options]
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var suites = BenchCatalog.All();
        if (args.Length == 0 || !suites.TryGetValue(args[0], out var run))
        {
            Console.Error.WriteLine($"usage: Sharpformer.Bench <{string.Join('|', suites.Keys)}> [--json] [options]");
            return 2;
        }
        return run(args[1..]);
    }
}
