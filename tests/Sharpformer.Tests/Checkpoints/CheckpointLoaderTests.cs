using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

public class CheckpointLoaderTests
{
    [Fact]
    public void Directory_prefers_safetensors_and_file_paths_pick_the_reader()
    {
        using (var sd = CheckpointLoader.Load(SafeTensorsTestFiles.SeqClsDir))
        {
            Assert.Equal(CheckpointFormat.SafeTensors, sd.Format);
            Assert.Equal(SafeTensorsTestFiles.SeqClsSafeTensors, sd.Path);
        }
        using (var sd = CheckpointLoader.Load(SafeTensorsTestFiles.SeqClsBin))
            Assert.Equal(CheckpointFormat.TorchZip, sd.Format);
        var empty = SafeTensorsTestFiles.TempDir();
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => CheckpointLoader.Load(empty));
            Assert.Contains("model.safetensors", e.Message);
        }
        finally { Directory.Delete(empty, true); }
    }

    [Fact]
    public void Sharded_safetensors_load_like_the_single_file()
    {
        var tmp = SafeTensorsTestFiles.TempDir();
        try
        {
            using var full = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
            var names = full.Names.ToList();
            var first = names.Where(n => n.StartsWith("bert.embeddings", StringComparison.Ordinal)).ToList();
            var second = names.Except(first).ToList();
            SafeTensorsWriter.Write(Path.Combine(tmp, "model-00001-of-00002.safetensors"), first.Select(n => full[n]));
            SafeTensorsWriter.Write(Path.Combine(tmp, "model-00002-of-00002.safetensors"), second.Select(n => full[n]));
            var map = new JsonObject();
            foreach (var n in first) map[n] = "model-00001-of-00002.safetensors";
            foreach (var n in second) map[n] = "model-00002-of-00002.safetensors";
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 1 }, ["weight_map"] = map };
            File.WriteAllText(Path.Combine(tmp, "model.safetensors.index.json"), index.ToJsonString());

            using (var sd = CheckpointLoader.Load(tmp))
            {
                Assert.Equal(CheckpointFormat.SafeTensorsSharded, sd.Format);
                Assert.Equal(2, sd.SourceFiles.Count);
                Assert.Equal(names.Count, sd.Count);
                foreach (var n in names) Assert.Equal(full[n].ToBytes(), sd[n].ToBytes());
            }

            // A tensor mapped to the wrong shard, and a shard escaping the directory, are format errors naming the index.
            map[first[0]] = "model-00002-of-00002.safetensors";
            File.WriteAllText(Path.Combine(tmp, "model.safetensors.index.json"), index.ToJsonString());
            var e = Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(tmp));
            Assert.Contains("model.safetensors.index.json", e.Message);
            map[first[0]] = "../model.safetensors";
            File.WriteAllText(Path.Combine(tmp, "model.safetensors.index.json"), index.ToJsonString());
            Assert.Contains("plain file name", Assert.Throws<CheckpointFormatException>(() => CheckpointLoader.Load(tmp)).Message);
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Key_mapping_strips_or_adds_the_base_prefix_and_fixes_legacy_names()
    {
        using var sd = SafeTensorsReader.Read(SafeTensorsTestFiles.SeqClsSafeTensors);
        // Bare BertModel (no pooler is irrelevant here: the seqcls checkpoint has one) from a head checkpoint.
        var baseKeys = sd.Names.Select(n => StateDictKeys.StripPrefix(n, "bert")).OfType<string>().Where(n => !StateDictKeys.IsIgnoredBuffer(n)).ToList();
        var m = StateDictKeys.Map(sd.Names, baseKeys, "bert");
        Assert.Empty(m.Missing);
        Assert.Equal(["classifier.bias", "classifier.weight"], m.Unexpected.Order(StringComparer.Ordinal));
        Assert.Equal("bert.encoder.layer.1.output.dense.weight", m.ModelToCheckpoint["encoder.layer.1.output.dense.weight"]);

        // Head model from a bare, TF-era checkpoint with gamma/beta names: prefix added to lookups, names fixed.
        var legacy = new[] { "embeddings.LayerNorm.gamma", "embeddings.LayerNorm.beta", "embeddings.position_ids" };
        var head = new[] { "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias", "classifier.weight" };
        var m2 = StateDictKeys.Map(legacy, head, "bert");
        Assert.Equal("embeddings.LayerNorm.gamma", m2.ModelToCheckpoint["bert.embeddings.LayerNorm.weight"]);
        Assert.Equal("embeddings.LayerNorm.beta", m2.ModelToCheckpoint["bert.embeddings.LayerNorm.bias"]);
        Assert.Equal(["classifier.weight"], m2.Missing);
        Assert.Empty(m2.Unexpected);
    }
}
