using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Training;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Tests.Training.Distributed;

/// <summary>
/// Data-parallel masked- and causal-LM pretraining with dropout on (N ranks as N threads, <see cref="ThreadWorld"/>): dropout
/// masks keyed by the example's place in the global micro-batch, MLM masks by (seed, epoch, example), and per-token mean
/// losses weighted by the global token count make N ranks × batch B follow one process with batch N·B; evaluation is
/// sharded over the ranks and gives one process's metrics.
/// </summary>
public sealed class DataParallelPretrainingTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-ddp-lm-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    const int Vocab = 50, Block = 12;

    // 22 blocks: a global batch of 8 ends each epoch on 6, which leaves rank 1 of 2 × 4 two blocks and rank 3 of 4 × 2 none;
    // the masked positions per rank differ, so a per-rank token mean would not add up to the micro-batch's.
    static List<int[]> Blocks(int count, int salt) => Enumerable.Range(0, count)
        .Select(i => Enumerable.Range(0, Block).Select(j => 5 + (i * 31 + j * 7 + salt * 13 + i * j) % (Vocab - 5)).ToArray()).ToList();

    static readonly MaskedLanguageModeling Masking = new(Vocab, maskTokenId: 4, specialTokenIds: [0, 1, 2, 3, 4], padTokenId: 0);

    static ITrainingData<CollatedBatch> Data(bool mlm, int count, int salt) =>
        mlm ? LanguageModelingData.Masked(Blocks(count, salt), Masking, seed: 11) : LanguageModelingData.Causal(Blocks(count, salt));

    // Dropout 0.1 everywhere (hidden, attention probabilities, embeddings): BERT's and GPT-2's defaults.
    static ITrainableModel<CollatedBatch> Model(bool mlm, int seed) => mlm
        ? new MaskedLMTrainable(new BertForMaskedLM(new BertConfig
            {
                VocabSize = Vocab, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 32, MaxPositionEmbeddings = Block,
            }, seed))
        : new CausalLMTrainable(new Gpt2LMHeadModel(new Gpt2Config { VocabSize = Vocab, NPositions = Block, NEmbd = 16, NLayer = 2, NHead = 2 }, seed));

    // Accuracy, the number of predictions, and an order-sensitive checksum of them (the predictions must arrive in one process's order).
    static IReadOnlyDictionary<string, double> Metrics(EvalPredictions e)
    {
        var p = e.Predicted.SelectMany(x => x).ToArray(); var l = e.Labels.SelectMany(x => x).ToArray();
        return new Dictionary<string, double>
        {
            ["accuracy"] = p.Zip(l).Count(t => t.First == t.Second) / (double)p.Length,
            ["predictions"] = p.Length,
            ["checksum"] = p.Select((v, i) => (double)v * (i + 1)).Sum() + l.Select((v, i) => (double)v * (i + 7)).Sum(),
            ["examples"] = e.Predicted.Count,
        };
    }

    sealed record Run(IReadOnlyList<double> Losses, IReadOnlyList<IReadOnlyDictionary<string, double>> Evaluations, float[] Weights);

    (Trainer<CollatedBatch> Trainer, ITrainableModel<CollatedBatch> Model) Trainer(bool mlm, IProcessGroup group, int batch, string output, int modelSeed)
    {
        var args = new TrainingArguments
        {
            OutputDir = output, NumTrainEpochs = 2, PerDeviceTrainBatchSize = batch, PerDeviceEvalBatchSize = 2, LearningRate = 3e-3, Seed = 5,
            LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = 1, EvaluationStrategy = IntervalStrategy.Epoch, SaveStrategy = IntervalStrategy.No,
            DisableProgressBar = true, Execution = new Sharpformer.Tensors.ExecutionOptions(1), MaxGradNorm = 1.0,
        };
        var model = Model(mlm, modelSeed);
        return (new Trainer<CollatedBatch>(model, args, Data(mlm, 22, 0), Data(mlm, 7, 1), Metrics, processGroup: group), model);
    }

    Run Train(bool mlm, IProcessGroup group, int batch, string output)
    {
        var (trainer, model) = Trainer(mlm, group, batch, output, modelSeed: group.Rank == 0 ? 7 : 50 + group.Rank);   // rank 0's weights are broadcast
        var losses = new List<double>(); var evaluations = new List<IReadOnlyDictionary<string, double>>();
        trainer.Logged += log =>
        {
            if (log is TrainingProgressLog p) losses.Add(p.TrainLoss);
            if (log is EvaluationLog e) evaluations.Add(e.Metrics);
        };
        trainer.Train();
        var weights = TrainingOptimizer.TrainableParameters(model.Module).SelectMany(p => p.Parameter.Value.ToArray()).ToArray();
        return new Run(losses, evaluations, weights);
    }

    static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what} {i}: {expected[i]} vs {actual[i]}");
    }

    [Theory]
    [InlineData(true, 2, 4)]
    [InlineData(true, 4, 2)]
    [InlineData(false, 2, 4)]
    public void NRanksOfBatchB_WithDropout_FollowOneProcessOfBatchNB_LossesWeightsAndEvaluations(bool mlm, int ranks, int batch)
    {
        var one = Train(mlm, SingleProcessGroup.Instance, ranks * batch, Path.Combine(_dir, "one"));
        var many = new ThreadWorld(ranks).Run(g => Train(mlm, g, batch, Path.Combine(_dir, $"rank{g.Rank}")));

        Assert.Equal(6, one.Losses.Count);   // ⌈22 / 8⌉ = 3 steps × 2 epochs
        // Tolerance: the same sums in another order (per-rank partial sums, then the all-reduce) through 6 AdamW steps; the
        // dropout and MLM masks are the same bits, so nothing else differs.
        AssertClose(one.Losses, many[0].Losses, 2e-5, "step");
        AssertClose(one.Weights.Select(w => (double)w).ToList(), many[0].Weights.Select(w => (double)w).ToList(), 2e-5, "weight");
        for (int r = 1; r < ranks; r++) Assert.Equal(many[0].Weights, many[r].Weights);
        Assert.Equal(2, one.Evaluations.Count);
        for (int e = 0; e < 2; e++)
        {
            Assert.Equal(one.Evaluations[e]["eval_loss"], many[0].Evaluations[e]["eval_loss"], 2e-5);
            Assert.Equal(one.Evaluations[e]["eval_predictions"], many[0].Evaluations[e]["eval_predictions"]);
            Assert.Equal(one.Evaluations[e]["eval_examples"], many[0].Evaluations[e]["eval_examples"]);
        }
    }

    [Theory]
    [InlineData(true, 2)]
    [InlineData(true, 3)]
    [InlineData(false, 2)]
    public void ShardedEvaluation_OnNRanks_EqualsOneProcessExactly(bool mlm, int ranks)
    {
        // Identical weights everywhere (same initialisation seed), no training: every metric must be the same bits.
        var one = Trainer(mlm, SingleProcessGroup.Instance, 4, Path.Combine(_dir, "one"), modelSeed: 7).Trainer.Evaluate();
        var many = new ThreadWorld(ranks).Run(g => Trainer(mlm, g, 4, Path.Combine(_dir, $"rank{g.Rank}"), modelSeed: 7).Trainer.Evaluate());
        Assert.Equal(7, one["eval_examples"]);
        foreach (var m in many)
            foreach (var key in new[] { "eval_loss", "eval_accuracy", "eval_predictions", "eval_checksum", "eval_examples" })
                Assert.Equal(one[key], m[key]);
    }
}
