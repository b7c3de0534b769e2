using Sharpformer.Checkpoints;
using Sharpformer.Models;
using Sharpformer.Tests.Data;
using Sharpformer.Tests.Nn;
using Sharpformer.Training;

namespace Sharpformer.Tests.Models;

/// <summary>Saving a <see cref="BahdanauSeq2Seq"/> as config.json + model.safetensors and loading it back; batch collation for training.</summary>
public class Seq2SeqCheckpointTests
{
    [Fact]
    public void SavedAndReloadedModelGivesBitIdenticalLogits()
    {
        var f = TorchRnnFixture.Load("seq2seq_bahdanau.json");
        var model = new BahdanauSeq2Seq(new Seq2SeqConfig(11, 6, 8, 8, 10));
        f.LoadInto(model);
        using var dir = new TempDir();
        model.Save(dir.Path);
        var back = BahdanauSeq2Seq.Load(dir.Path);
        Assert.Equal(model.Config, back.Config);
        var a = model.Forward(f.Ints("src"), f.Ints("src_lengths"), f.Ints("decoder_input")).Logits.ToArray();
        var b = back.Forward(f.Ints("src"), f.Ints("src_lengths"), f.Ints("decoder_input")).Logits.ToArray();
        Assert.Equal(a, b);
        using var stored = SafeTensorsReader.Read(Path.Combine(dir.Path, "model.safetensors"));
        Assert.Equal(f.Parameters().Select(p => p.Name).Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));   // PyTorch state-dict names
    }

    [Fact]
    public void LoadingAnotherModelTypeNamesTheConfigKey()
    {
        using var dir = new TempDir();
        dir.Write("config.json", "{\"model_type\": \"bert\"}");
        var e = Assert.Throws<ConfigException>(() => BahdanauSeq2Seq.Load(dir.Path));
        Assert.Equal("model_type", e.Key);
    }

    [Fact]
    public void CollatePadsSourcesAndShiftsTargetsIntoDecoderInputAndLabels()
    {
        var batch = Seq2SeqBatch.Collate([([4, 5, 6], [1, 7, 8, 2], 10), ([4], [1, 9, 2], 11)], padId: 0);
        Assert.Equal([4, 5, 6, 4, 0, 0], batch.Src);
        Assert.Equal([3, 1], batch.SrcLengths);
        Assert.Equal([1, 7, 8, 1, 9, 0], batch.DecoderInput);
        Assert.Equal([7, 8, 2, 9, 2, 0], batch.Labels);
        Assert.Equal([10, 11], batch.Keys);
    }
}
