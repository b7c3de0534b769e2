using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Training;

/// <summary>The G2P workflow's pieces around the model: the dev sample of early stopping and the alignment of a prediction.</summary>
public sealed class G2PWorkflowTests
{
    static readonly G2PEntry[] Entries = [new("cab", ["K", "AE", "B"]), new("bad", ["B", "AE", "D"]), new("dab", ["D", "AE", "B"]), new("abcd", ["AE", "B", "K", "D"])];

    static (BahdanauSeq2Seq Model, G2PVocabulary Vocab) Untrained()
    {
        var vocab = G2PVocabulary.Build(Entries);
        var model = new BahdanauSeq2Seq(new Seq2SeqConfig(vocab.Count, 4, 5, 6, 7), seed: 3);
        model.Eval();
        return (model, vocab);
    }

    static IReadOnlyList<G2PWord> Dev(int n) =>
        Enumerable.Range(0, n).Select(i => new G2PWord(new string((char)('a' + i % 26), 1 + i * 7 % 9), [["AH"]])).ToList();

    [Fact]
    public void DevSample_IsAFixedDrawOfDistinctWords_SortedByLength_IndependentOfTheRunSeed()
    {
        var dev = Dev(50);
        var a = G2PTraining.DevSample(dev, 20);
        Assert.Equal(20, a.Count);
        Assert.Equal(20, a.Distinct().Count());
        Assert.All(a, w => Assert.Contains(w, dev));
        Assert.Equal(a.Select(w => w.Word.Length).Order(), a.Select(w => w.Word.Length));
        Assert.Equal(a, G2PTraining.DevSample(dev, 20));
        // 0 or more than there are: the whole split.
        Assert.Equal(50, G2PTraining.DevSample(dev, 0).Count);
        Assert.Equal(dev.OrderBy(w => w.Word.Length), G2PTraining.DevSample(dev, 80));
    }

    [Fact]
    public void Alignment_HasARowPerOutputStepAndAColumnPerLetter_WithoutTheBatchPadding()
    {
        var (model, vocab) = Untrained();
        // "cab" shares its batch with the longer "abcd": its attention rows are padded to 4 columns.
        var batched = G2PTraining.Predict(model, vocab, ["cab", "abcd"], beamWidth: 3);
        var p = batched[0];
        Assert.Equal(4, p.Attention![0].Length);
        var a = p.Alignment();
        Assert.Equal(["c", "a", "b"], a.Letters);
        Assert.Equal(p.Attention.Length, a.Outputs.Length);
        Assert.Equal((a.Outputs.Length, 3), (a.Weights.GetLength(0), a.Weights.GetLength(1)));
        // The outputs are the best hypothesis' symbols: its phonemes, then the end symbol when it finished.
        var phonemes = a.Outputs.Where(o => o != "</s>").ToArray();
        Assert.Equal(p.Best.Phonemes, phonemes);
        if (p.Best.Finished) Assert.Equal("</s>", a.Outputs[^1]);
        // The padding column carried no weight: each row over the real letters sums to 1 …
        for (int t = 0; t < a.Outputs.Length; t++)
            Assert.Equal(1.0, Enumerable.Range(0, 3).Sum(j => (double)a.Weights[t, j]), 5);
        // … and equals the word decoded on its own.
        var alone = G2PTraining.Predict(model, vocab, ["cab"], beamWidth: 3)[0].Alignment();
        Assert.Equal(alone.Outputs, a.Outputs);
        for (int t = 0; t < a.Outputs.Length; t++)
            for (int j = 0; j < 3; j++) Assert.Equal(alone.Weights[t, j], a.Weights[t, j], 5);
    }

    [Fact]
    public void Predict_ReturnsResultsInTheGivenOrder_ThoughItBatchesByLength()
    {
        var (model, vocab) = Untrained();
        string[] words = ["abcd", "cab", "ba", "dab"];
        var together = G2PTraining.Predict(model, vocab, words, beamWidth: 2, batchSize: 2);
        for (int i = 0; i < words.Length; i++)
        {
            var alone = G2PTraining.Predict(model, vocab, [words[i]], beamWidth: 2)[0];
            Assert.Equal(words[i], together[i].Word);
            Assert.Equal(alone.Best.Phonemes, together[i].Best.Phonemes);
            Assert.Equal(alone.Best.Score, together[i].Best.Score, 5);
        }
    }

    [Fact]
    public void IsModelDirectory_RecognisesASavedG2PModel_AndNothingElse()
    {
        var dir = Directory.CreateTempSubdirectory("sf-g2pdir-").FullName;
        try
        {
            Assert.False(G2PTraining.IsModelDirectory(dir));
            var (model, vocab) = Untrained();
            G2PTraining.Save(model, vocab, dir);
            Assert.True(G2PTraining.IsModelDirectory(dir));
            File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "gpt2"}""");
            Assert.False(G2PTraining.IsModelDirectory(dir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
