namespace Sharpformer.Bench;

/// <summary>The list of benchmark suites. Add one line per suite.</summary>
internal static class BenchCatalog
{
    public static SortedDictionary<string, Func<string[], int>> All() => new()
    {
        ["gemm"] = GemmBench.Run,
        ["infer"] = InferBench.Run,
        ["loadtest"] = LoadTestBench.Run,
        ["tokenize"] = TokenizeBench.Run,
    };
}
