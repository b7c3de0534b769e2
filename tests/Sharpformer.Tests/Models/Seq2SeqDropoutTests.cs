using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Tests.Data;
using Sharpformer.Tests.Nn;
using Sharpformer.Training;
using static Sharpformer.Tests.Nn.TorchRnnFixture;

namespace Sharpformer.Tests.Models;

/// <summary>The Bahdanau model's optional dropout: training only, saved in config.json, absent = 0 (the fixture's model).</summary>
public class Seq2SeqDropoutTests
{
    static (TorchRnnFixture F, BahdanauSeq2Seq Model) WithDropout(float p)
    {
        var (f, plain) = Seq2SeqParityTests.Build();
        var model = new BahdanauSeq2Seq(plain.Config with { Dropout = p });
        f.LoadInto(model);
        return (f, model);
    }

    [Fact]
    public void InEvalMode_AModelWithDropoutGivesPyTorchsLogitsAndLoss_InTrainingModeItDropsUnits()
    {
        var (f, model) = WithDropout(0.4f);
        model.Eval();
        var r = model.Forward(f.Ints("src"), f.Ints("src_lengths"), f.Ints("decoder_input"), f.Ints("labels"));
        AssertClose(f.Output("logits"), r.Logits, "logits");
        AssertClose(f.Output("encoder_outputs"), r.Encoding.Outputs, "encoder_outputs");

        model.Train();
        model.UseRandom(new TrainingRandom(7));
        var t = model.Forward(f.Ints("src"), f.Ints("src_lengths"), f.Ints("decoder_input"), f.Ints("labels"));
        // Inverted dropout on the encoder states: every real position's value is either 0 or the eval value / (1 − p).
        var eval = r.Encoding.Outputs.ToArray(); var train = t.Encoding.Outputs.ToArray();
        int dropped = 0, kept = 0;
        for (int i = 0; i < eval.Length; i++)
        {
            if (eval[i] == 0f) continue;   // padding
            if (train[i] == 0f) { dropped++; continue; }
            kept++;
        }
        Assert.InRange(dropped / (double)(dropped + kept), 0.25, 0.55);
        Assert.NotEqual(r.Loss!.Item(), t.Loss!.Item());
    }

    [Fact]
    public void TheDropoutIsSavedInConfigJson_AndAConfigWithoutItLoadsAsNoDropout()
    {
        var (_, model) = WithDropout(0.25f);
        using var dir = new TempDir();
        model.Save(dir.Path);
        Assert.Equal(0.25f, BahdanauSeq2Seq.Load(dir.Path).Config.Dropout);

        var config = Path.Combine(dir.Path, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        Assert.Equal(0.25, (double)node["dropout"]!, 6);
        node.Remove("dropout");
        File.WriteAllText(config, node.ToJsonString());
        Assert.Equal(0f, BahdanauSeq2Seq.Load(dir.Path).Config.Dropout);

        node["dropout"] = "high";
        File.WriteAllText(config, node.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => BahdanauSeq2Seq.Load(dir.Path));
        Assert.Equal("dropout", e.Key);
    }
}
