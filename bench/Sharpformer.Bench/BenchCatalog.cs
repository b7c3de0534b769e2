namespace Sharpformer.Bench;

/// <summary>The list of benchmark suites. Add one line per suite.</summary>
internal static class BenchCatalog
{
    public static SortedDictionary<string, Func<string[], int>> All() => new()
    {
        ["allreduce"] = AllReduceBench.Run,
        ["block"] = BlockBench.Run,
        ["gemm"] = GemmBench.Run,
        ["loadtest"] = LoadTestBench.Run,
        ["infer"] = InferBench.Run,
        ["tokenize"] = TokenizeBench.Run,
        ["tokenize-bpe"] = TokenizeBench.RunBpe,
        ["data"] = DataBench.Run,
        ["logreg"] = LogisticRegressionBench.Run,
        ["train"] = TrainBench.Run,
        ["pretrain"] = PretrainBench.Run,
        ["checkpoints"] = CheckpointBench.Run,
        ["kernels"] = KernelsBench.Run,
        ["rnn"] = RnnBench.Run,
        ["generate"] = GenerateBench.Run,
        ["seq2seq"] = Seq2SeqBench.Run,
    };
}
