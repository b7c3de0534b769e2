using Sharpformer.Data;
using Sharpformer.Pipelines;
using Sharpformer.Tokenization;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Pipelines;

/// <summary>
/// The one way from text to a model batch: a pipeline's batch is the tokenizer's encodings under its own options
/// (special tokens, truncation, stride windows), padded by the one collator; the features workflow is the pipeline.
/// </summary>
public class TextToBatchTests
{
    /// <summary>Records the batches a pipeline sends and forwards them to the real model.</summary>
    sealed class Spy(IPipelineModel inner) : IPipelineModel
    {
        public List<CollatedBatch> Batches { get; } = [];
        public PipelineModelInfo Info => inner.Info;

        public PipelineModelOutput Forward(CollatedBatch batch, ForwardRequest request, CancellationToken cancellationToken = default)
        {
            Batches.Add(batch);
            return inner.Forward(batch, request, cancellationToken);
        }
    }

    static void AssertSameBatch(CollatedBatch expected, CollatedBatch actual)
    {
        Assert.Equal((expected.Batch, expected.Seq), (actual.Batch, actual.Seq));
        Assert.Equal(expected.InputIds, actual.InputIds);
        Assert.Equal(expected.TypeIds, actual.TypeIds);
        Assert.Equal(expected.AttentionMask, actual.AttentionMask);
    }

    const string Sentence = "Angela Merkel met Emmanuel Macron in Paris on Tuesday. ";

    [Fact]
    public void TokenClassification_LongTextBatch_IsTheTokenizersStrideWindowsCollated()
    {
        var (tok, model) = PipelineParityTests.Load("bert-tiny-uncased-tokcls", PipelineTask.TokenClassification);
        var spy = new Spy(model);
        var pipe = new TokenClassificationPipeline(tok, spy, new PipelineOptions { BatchSize = 64, MaxLength = 32 }, stride: 8);
        var text = string.Concat(Enumerable.Repeat(Sentence, 6));
        var pre = pipe.PreEntities([text])[0];

        var e = tok.Encode(text, null, new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = 32, Stride = 8 });
        Assert.True(e.Overflowing.Count >= 2, $"only {e.Overflowing.Count + 1} windows");
        AssertSameBatch(new PaddingCollator().Collate([e, .. e.Overflowing]), Assert.Single(spy.Batches));
        // Every piece of the text is reported once, at its index in the un-windowed [CLS] pieces [SEP].
        Assert.Equal(Enumerable.Range(1, e.Length - 2 + e.NumTruncatedTokens), pre.Select(p => p.Index));
    }

    [Fact]
    public void TextClassification_Batch_IsTheTokenizersTruncatedEncodingsCollated()
    {
        var (tok, model) = PipelineParityTests.Load("bert-tiny-uncased-seqcls", PipelineTask.TextClassification);
        var spy = new Spy(model);
        var pipe = new TextClassificationPipeline(tok, spy, new PipelineOptions { BatchSize = 8, MaxLength = 16 });
        var warnings = new List<TruncationWarning>();
        pipe.Truncated += warnings.Add;
        var longText = string.Concat(Enumerable.Repeat(Sentence, 3));
        TextInput[] inputs = [new("short one"), new(longText), new(longText, "the pair is cut too when it is the longer")];
        pipe.Logits(inputs);

        var options = new EncodeOptions { Truncation = TruncationStrategy.LongestFirstPython, MaxLength = 16 };
        var encodings = inputs.Select(i => tok.Encode(i.Text, i.TextPair, options)).ToList();
        AssertSameBatch(new PaddingCollator().Collate(encodings), Assert.Single(spy.Batches));
        Assert.Equal([1, 2], warnings.Select(w => w.InputIndex));
        Assert.Equal(encodings[1].Length + encodings[1].NumTruncatedTokens, warnings[0].TokenCount);
    }

    [Fact]
    public void FeaturesWorkflow_VectorsAreTheFeatureExtractionPipelines()
    {
        const string dir = "bert-tiny-uncased-seqcls";
        var (tok, model) = PipelineParityTests.Load(dir, PipelineTask.FeatureExtraction);
        string[] texts = ["stocks rallied", string.Concat(Enumerable.Repeat(Sentence, 3)), "a"];
        var pipeline = new FeatureExtractionPipeline(tok, model, new PipelineOptions { BatchSize = 2, MaxLength = 16 }, Pooling.MaskedMean).Run(texts);
        var workflow = FeatureExtraction.Extract(FeatureExtraction.LoadEncoder(SharedData.Fixture(dir), Pooling.MaskedMean), tok, texts,
            new FeatureOptions { Pooling = Pooling.MaskedMean, BatchSize = 2, MaxLength = 16 });
        for (int i = 0; i < texts.Length; i++)
            for (int j = 0; j < pipeline[i].Length; j++) Assert.Equal(pipeline[i][j], workflow[i][j], 1e-6);
    }
}
