using Sharpformer.Kernels;
using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Models;

/// <summary>
/// bf16 linear layers against fp32: cosine ≥ 0.999 of every token's last hidden state (the bar) on the fixture
/// models and their inputs and on a BERT-base-sized random model. Runs the fastest bf16 kernel of the machine (the emitted
/// vdpbf16ps one where AVX512_BF16 exists); the kernels themselves are checked against reference twins in JitKernelTests.
/// </summary>
public class Bf16InferenceTests
{
    static float[] Last(PretrainedModel m, EncoderInput input)
    {
        using var _ = Autograd.NoGrad();
        return m.Run(input).Encoder.LastHiddenState.Contiguous().ToArray();
    }

    public static TheoryData<string> FixtureDirs => new(FixtureModels.Dirs);

    [Theory]
    [MemberData(nameof(FixtureDirs))]
    public void Bf16FixtureModelsKeepEveryTokenAtCosine0999(string dir)
    {
        var fp32 = FixtureModels.Model(dir, baseModel: false);
        var b = AutoModel.FromPretrained(SharedData.Fixture(dir));
        Bf16Inference.Convert(b);
        Assert.True(Bf16Inference.IsBf16(b));
        foreach (var c in FixtureModels.Expected(dir).Cases)
        {
            var a = Last(fp32, c.Input);
            var cos = DynamicQuantizationTests.MinTokenCosine(a, Last(b, c.Input), a.Length / (c.Input.BatchSize * c.Input.SequenceLength), c.Input.AttentionMask);
            Assert.True(cos >= 0.999, $"{dir} case {c.Name}: min token cosine {cos:F5} ({Bf16Gemm.Best})");
        }
    }

    [Fact]
    public void Bf16BertBaseSizedLayersKeepEveryTokenAtCosine0999AndMultiplyByBf16Weights()
    {
        var config = new BertConfig { VocabSize = 2000, NumHiddenLayers = 2 };
        var fp32 = new BertModel(config, addPoolingLayer: false, seed: 3);
        var b = new BertModel(config, addPoolingLayer: false, seed: 3);
        fp32.Eval();
        Bf16Inference.Convert(b);
        var rng = new Random(4);
        int[][] ids = [Enumerable.Range(0, 128).Select(_ => 1 + rng.Next(1999)).ToArray(), Enumerable.Range(0, 128).Select(_ => 1 + rng.Next(1999)).ToArray()];
        int[][] mask = [Enumerable.Repeat(1, 128).ToArray(), Enumerable.Range(0, 128).Select(i => i < 77 ? 1 : 0).ToArray()];
        var input = EncoderInput.FromRows(ids, null, mask);
        var cos = DynamicQuantizationTests.MinTokenCosine(Last(fp32, input), Last(b, input), 768, input.AttentionMask);
        Assert.True(cos >= 0.999, $"min token cosine {cos:F5}");
        // One copy of the weights: bf16 only. Saving writes those bf16 values (low 16 bits zero) as F32 under the HF name.
        var query = b.Encoder.Layer[0].FastWeights().Query;
        Assert.NotNull(query.Bf16);
        Assert.True(query.Weight.IsEmpty);
        var saved = b.ToCheckpointTensors().Single(t => t.Name == "encoder.layer.0.attention.self.query.weight");
        Assert.Equal([768, 768], saved.Shape);
        var values = saved.ToFloat32();
        Assert.Equal(query.Bf16!.ToFloat(), values);
        Assert.All(values, v => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(v) & 0xFFFF));
    }

    [Fact]
    public void Bf16ModulePathRunsTheBf16LayersAndTheModelRefusesTrainingAndInt8Quantization()
    {
        var b = AutoModel.FromPretrained(SharedData.Fixture("bert-tiny-uncased-seqcls"));
        Bf16Inference.Convert(b);
        var input = FixtureModels.Expected("bert-tiny-uncased-seqcls").Cases[0].Input;
        var module = b.Run(input).Encoder.LastHiddenState.Contiguous().ToArray(); // grad enabled: the module path, Functional.Bf16Linear
        Assert.True(DynamicQuantizationTests.MinTokenCosine(Last(b, input), module, 64, null) >= 0.99999);
        Assert.Throws<InvalidOperationException>(() => DynamicQuantization.Quantize(b));
        b.Train();
        var e = Assert.Throws<NotSupportedException>(() => b.Run(FixtureModels.Expected("bert-tiny-uncased-seqcls").Cases[0].Input));
        Assert.Contains("bf16", e.Message);
    }
}
