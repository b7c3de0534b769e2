using Microsoft.Extensions.AI;
using Sharpformer.Extensions.AI;
using Sharpformer.Pipelines;

namespace Sharpformer.Tests.Pipelines;

public class EmbeddingGeneratorTests
{
    [Fact]
    public async Task GeneratesUnitVectors_EqualToTheBaseModelsMaskedMean()
    {
        const string dir = "bert-tiny-uncased-seqcls";
        using IEmbeddingGenerator<string, Embedding<float>> generator = BertEmbeddingGenerator.FromPretrained(SharedData.Fixture(dir));
        var c = Fixtures.Case(dir, "padded_batch");
        var texts = c.GetProperty("text").EnumerateArray().Select(t => t.GetString()!).ToList();
        var result = await generator.GenerateAsync(texts);
        Assert.Equal(texts.Count, result.Count);

        var hidden = c.GetProperty("base_model_outputs").GetProperty("last_hidden_state");
        var mask = c.GetProperty("encoding").GetProperty("attention_mask");
        for (int b = 0; b < texts.Count; b++)
        {
            var rows = Enumerable.Range(0, hidden[b].GetArrayLength()).Where(t => mask[b][t].GetInt32() == 1)
                .Select(t => hidden[b][t].EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToList();
            var mean = Enumerable.Range(0, 64).Select(j => rows.Average(r => r[j])).ToArray();
            double norm = Math.Sqrt(mean.Sum(x => x * x));
            var v = result[b].Vector.Span;
            Assert.Equal(64, v.Length);
            for (int j = 0; j < 64; j++) Assert.Equal(mean[j] / norm, v[j], 1e-4);
            Assert.Equal(dir, result[b].ModelId);
        }
        int tokens = c.GetProperty("encoding").GetProperty("attention_mask").EnumerateArray().Sum(r => r.EnumerateArray().Sum(x => x.GetInt32()));
        Assert.Equal(tokens, result.Usage!.InputTokenCount);

        var meta = generator.GetService<EmbeddingGeneratorMetadata>();
        Assert.Equal("sharpformer", meta!.ProviderName);
        Assert.Equal(dir, meta.DefaultModelId);
        // Extension helper from Microsoft.Extensions.AI.Abstractions works over our generator.
        var single = await generator.GenerateVectorAsync(texts[0]);
        // Alone (no padding) it equals the batched vector up to float summation order.
        for (int j = 0; j < 64; j++) Assert.Equal(result[0].Vector.Span[j], single.Span[j], 1e-6);
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 32 }));
        await Assert.ThrowsAsync<PipelineInputException>(() => generator.GenerateAsync(["  "]));
    }
}
