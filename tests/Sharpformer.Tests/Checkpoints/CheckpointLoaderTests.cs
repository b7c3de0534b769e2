using Sharpformer.Nn;
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
        // Bare encoder parameters (no "bert." prefix) from a head checkpoint: the builder finds them under the prefix.
        var vb = VarBuilder.FromWeights(sd, new WeightLoadOptions("bert"));
        var w = vb.Push("encoder").Push("layer").Push("1").Get("output.dense.weight", sd["bert.encoder.layer.1.output.dense.weight"].CopyShape(), WeightInit.Zeros);
        Assert.Equal(sd["bert.encoder.layer.1.output.dense.weight"].ToFloat32(), w.ToArray());
        var report = vb.Finish();
        Assert.Equal(["encoder.layer.1.output.dense.weight"], report.Loaded);
        Assert.Contains("classifier.weight", report.Unexpected);
        Assert.Contains("bert.embeddings.position_ids", report.Ignored);

        // Head-model names from a bare, TF-era checkpoint with gamma/beta names: prefix stripped for lookup, names fixed.
        var legacy = new StateDict([
            CheckpointTensor.FromFloat32("embeddings.LayerNorm.gamma", new float[] { 2f, 3f }, 2),
            CheckpointTensor.FromFloat32("embeddings.LayerNorm.beta", new float[] { 4f, 5f }, 2),
            CheckpointTensor.FromInt64("embeddings.position_ids", new long[] { 0, 1 }, 1, 2)]);
        var head = VarBuilder.FromWeights(legacy, new WeightLoadOptions("bert"));
        var ln = head.Push("bert.embeddings.LayerNorm");
        Assert.Equal([2f, 3f], ln.Get("weight", [2], WeightInit.Ones).ToArray());
        Assert.Equal([4f, 5f], ln.Get("bias", [2], WeightInit.Zeros).ToArray());
        Assert.Equal([0f, 0f], head.Get("classifier.weight", [1, 2], WeightInit.Zeros).ToArray());
        var r2 = head.Finish();
        Assert.Equal(["classifier.weight"], r2.Missing);
        Assert.Empty(r2.Unexpected);
    }
}
