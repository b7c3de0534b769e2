using System.Text.Json;
using Sharpformer.Pipelines;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Pipelines;

/// <summary>
/// Pipelines end to end (real tokenizer, batching, padding, postprocessing) with the network replaced by the outputs
/// transformers recorded: fill-mask from the recorded [MASK] logits, text classification from the recorded scores
/// (log-probabilities are logits up to a per-row constant, which softmax ignores).
/// </summary>
public class RecordedOutputTests
{
    const string Mlm = "bert-tiny-uncased-mlm";

    static FillMaskPipeline RecordedFillMask(int batchSize)
    {
        var tokenizer = BertTokenizer.FromDirectory(SharedData.Fixture(Mlm));
        var model = new RecordedModel(new PipelineModelInfo("bert", 128, [], null, true, 2, 4), tokenizer.VocabSize, perToken: true);
        foreach (var c in Fixtures.Expected(Mlm).GetProperty("mlm").GetProperty("cases").EnumerateArray())
        {
            var ids = c.GetProperty("encoding").GetProperty("input_ids")[0].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var positions = c.GetProperty("mask_positions").EnumerateArray().Select(e => e.GetInt32()).ToList();
            var logits = c.GetProperty("mask_logits").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToList();
            model.Add(ids, j => positions.IndexOf(j) is var m and >= 0 ? logits[m] : new float[tokenizer.VocabSize]);
        }
        return new FillMaskPipeline(tokenizer, model, new PipelineOptions { BatchSize = batchSize });
    }

    internal static void AssertCandidates(JsonElement expected, IReadOnlyList<FillMaskCandidate> actual)
    {
        Assert.Equal(expected.GetArrayLength(), actual.Count);
        for (int i = 0; i < actual.Count; i++)
        {
            var e = expected[i];
            Assert.Equal(e.GetProperty("token").GetInt32(), actual[i].Token);
            Assert.Equal(e.GetProperty("token_str").GetString(), actual[i].TokenStr);
            Assert.Equal(e.GetProperty("sequence").GetString(), actual[i].Sequence);
            Assert.Equal(e.GetProperty("score").GetSingle(), actual[i].Score, 1e-5);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void FillMask_MatchesHfPipeline_OnRecordedLogits(int batchSize)
    {
        var pipe = RecordedFillMask(batchSize);
        var fm = Fixtures.Expected(Mlm).GetProperty("mlm").GetProperty("fill_mask_pipeline");
        var texts = fm.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var results = pipe.Run(texts, topK: fm.GetProperty("top_k").GetInt32());
        for (int t = 0; t < texts.Count; t++)
        {
            var expected = fm.GetProperty("outputs")[t];
            bool several = expected[0].ValueKind == JsonValueKind.Array;
            Assert.Equal(several ? expected.GetArrayLength() : 1, results[t].Count);
            if (several) for (int m = 0; m < results[t].Count; m++) AssertCandidates(expected[m], results[t][m]);
            else AssertCandidates(expected, results[t][0]);
        }
    }

    [Fact]
    public void FillMask_Targets_RestrictCandidates_ScoresStayFullVocabularyProbabilities()
    {
        var pipe = RecordedFillMask(1);
        var all = pipe.Run(["The capital of France is [MASK]."], topK: 5)[0][0];
        // Targets: two of the top five plus a word outside the vocabulary's whole words (its first piece is used).
        var restricted = pipe.Run(["The capital of France is [MASK]."], topK: 10, targets: ["mp", "morocco"])[0][0];
        Assert.Equal(2, restricted.Count);   // top_k capped at the number of targets
        Assert.Equal(all[0], restricted[0]);  // morocco, same score as unrestricted
        Assert.Equal(all[1], restricted[1]);  // mp
        Assert.Throws<PipelineInputException>(() => pipe.Run(["no mask here"]));
        Assert.Throws<PipelineInputException>(() => pipe.Run(["   "]));
    }

    static TextClassificationPipeline RecordedClassifier(string dir, int batchSize)
    {
        var tokenizer = BertTokenizer.FromDirectory(SharedData.Fixture(dir));
        var tc = Fixtures.Expected(dir).GetProperty("text_classification_pipeline");
        var texts = tc.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var labels = tc.GetProperty("return_all_scores_true")[0][0].EnumerateArray().Select(e => e.GetProperty("label").GetString()!).ToList();
        var model = new RecordedModel(new PipelineModelInfo("bert", 128, labels, null, true, 2, 4), labels.Count, perToken: false);
        for (int i = 0; i < texts.Count; i++)
        {
            var ids = new[] { tokenizer.ClsTokenId!.Value }.Concat(PipelineParityTests.Pieces(tokenizer, texts[i]).Ids).Append(tokenizer.SepTokenId!.Value).ToArray();
            var logp = tc.GetProperty("return_all_scores_true")[i][0].EnumerateArray().Select(e => MathF.Log(e.GetProperty("score").GetSingle())).ToArray();
            model.Add(ids, _ => logp);
        }
        return new TextClassificationPipeline(tokenizer, model, new PipelineOptions { BatchSize = batchSize });
    }

    internal static void AssertLabels(JsonElement expected, IReadOnlyList<LabelScore> actual)
    {
        Assert.Equal(expected.GetArrayLength(), actual.Count);
        for (int i = 0; i < actual.Count; i++)
        {
            Assert.Equal(expected[i].GetProperty("label").GetString(), actual[i].Label);
            Assert.Equal(expected[i].GetProperty("score").GetSingle(), actual[i].Score, 1e-5);
        }
    }

    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("distilbert-tiny-uncased-seqcls")]
    public void TextClassification_TopK_AllScores_Batched_OnRecordedScores(string dir)
    {
        var tc = Fixtures.Expected(dir).GetProperty("text_classification_pipeline");
        var texts = tc.GetProperty("texts").EnumerateArray().Select(t => new TextInput(t.GetString()!)).ToList();
        var one = RecordedClassifier(dir, 1);
        var top1 = one.Run(texts, topK: 1);
        var all = one.Run(texts, topK: null);
        var byId = one.Run(texts, topK: null, sortByScore: false);
        var batched = RecordedClassifier(dir, 4).Run(texts, topK: 1);
        for (int i = 0; i < texts.Count; i++)
        {
            AssertLabels(tc.GetProperty("default")[i], top1[i]);
            AssertLabels(tc.GetProperty("top_k_none")[i], all[i]);
            AssertLabels(tc.GetProperty("return_all_scores_true")[i][0], byId[i]);
            var b = tc.GetProperty("batched_list_input_default")[i];
            Assert.Equal(b.GetProperty("label").GetString(), batched[i][0].Label);
            Assert.Equal(b.GetProperty("score").GetSingle(), batched[i][0].Score, 1e-5);
        }
    }
}
