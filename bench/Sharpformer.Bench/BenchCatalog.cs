namespace Sharpformer.Bench;

/// <summary>The list of benchmark suites. Add one line per suite.</summary>
internal static class BenchCatalog
{
    public static SortedDictionary<string, Func<string[], int>> All() => new()
    {
        ["block"] = BlockBench.Run,
        ["gemm"] = GemmBench.Run,
        ["infer"] = InferBench.Run,
        ["tokenize"] = TokenizeBench.Run,
        ["kernels"] = KernelsBench.Run,
        ["checkpoints"] = CheckpointBench.Run,
    };
}
