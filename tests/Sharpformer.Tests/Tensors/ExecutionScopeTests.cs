using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Tensors;

/// <summary>
/// Tests that compare or observe thread counts. They run one at a time (not beside each other), so a test that asks for
/// two threads gets them and a fork count seen on a thread belongs to that test.
/// </summary>
[CollectionDefinition(nameof(ThreadCountCollection), DisableParallelization = true)]
public sealed class ThreadCountCollection;

[Collection(nameof(ThreadCountCollection))]
public class ExecutionScopeTests
{
    [Fact]
    public void InnermostScopeWinsAndNoPreferenceKeepsTheOuterCount()
    {
        using (ExecutionScope.Enter(3))
        {
            Assert.Equal(3, ExecutionScope.Threads);
            using (ExecutionScope.Enter(ExecutionOptions.Default)) Assert.Equal(3, ExecutionScope.Threads);
            using (ExecutionScope.Enter(new ExecutionOptions(1))) Assert.Equal(1, ExecutionScope.Threads);
            Assert.Equal(3, ExecutionScope.Threads);
        }
        Assert.Equal(Environment.ProcessorCount, ExecutionScope.Threads);
    }

    [Fact]
    public void ScopeDoesNotReachAnotherThread()
    {
        using var scope = ExecutionScope.Enter(5);
        int other = 0;
        var t = new Thread(() => other = ExecutionScope.Threads, maxStackSize: 0);
        // A thread started with a suppressed flow sees no scope, as a request thread of a server would.
        using (ExecutionContext.SuppressFlow()) t.Start();
        t.Join();
        Assert.Equal(Environment.ProcessorCount, other);
    }

    static PretrainedModel Encoder(int threads) => AutoModel.FromConfig(
        new BertConfig { VocabSize = 200, HiddenSize = 256, NumHiddenLayers = 1, NumAttentionHeads = 4, IntermediateSize = 1024, MaxPositionEmbeddings = 128 },
        new ModelLoadOptions { Seed = 1, Execution = new ExecutionOptions(threads) });

    /// <summary>Runs the model on its own thread, after both threads are ready, and returns the worker count of every fork its kernels made.</summary>
    static List<int> ForksOf(PretrainedModel model, EncoderInput input, bool fastPath, Barrier start)
    {
        var forks = new List<int>();
        start.SignalAndWait();
        using (Parallelism.ObserveForks(forks.Add))
            for (int i = 0; i < 3; i++)
            {
                if (fastPath) { model.Eval(); using (Autograd.NoGrad()) model.Run(input); }
                else { model.Train(); model.Run(input).Encoder.LastHiddenState.Sum().Backward(); }
            }
        return forks;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TwoModelsWithDifferentThreadCountsRunConcurrentlyEachWithItsOwn(bool fastPath)
    {
        var one = Encoder(1); var two = Encoder(2);
        var ids = Enumerable.Range(0, 4 * 128).Select(i => i % 200).ToArray();
        var input = new EncoderInput(ids, 4, 128);
        using var start = new Barrier(2);
        var a = Task.Factory.StartNew(() => ForksOf(one, input, fastPath, start), TaskCreationOptions.LongRunning);
        var b = Task.Factory.StartNew(() => ForksOf(two, input, fastPath, start), TaskCreationOptions.LongRunning);
        var (forksOne, forksTwo) = (await a, await b);
        Assert.Empty(forksOne);                 // one thread: no kernel forked
        Assert.NotEmpty(forksTwo);
        Assert.All(forksTwo, workers => Assert.Equal(2, workers));
    }
}
