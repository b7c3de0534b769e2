namespace Sharpformer.Bench;

/// <summary>The list of benchmark suites. Add one line per suite.</summary>
internal static class BenchCatalog
{
    public static SortedDictionary<string, Func<string[], int>> All() => new()
    {
        ["data"] = DataBench.Run,
        ["gemm"] = GemmBench.Run,
        ["logreg"] = LogisticRegressionBench.Run,
    };
}
