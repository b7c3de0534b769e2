using Sharpformer.Checkpoints;
using Sharpformer.Cli;

namespace Sharpformer.Tests.Cli;

/// <summary>Checkpoints whose weights do not fit (random model) or are corrupt (NaN) never give silent output.</summary>
public sealed class UntrustedWeightsCliTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("sf-untrusted-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static (int Code, string Out, string Err) Cli(string stdin, params string[] args)
    {
        var output = new StringWriter(); var error = new StringWriter();
        int code = CliHost.Invoke(args, new StringReader(stdin), output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>A copy of a fixture's config and tokenizer with the weights replaced by <paramref name="tensors"/>.</summary>
    string ModelWith(string name, IReadOnlyList<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, name)).FullName;
        foreach (var f in new[] { "config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(SharedData.Fixture("bert-tiny-uncased-seqcls", f), Path.Combine(dir, f));
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        return dir;
    }

    string NoMatchingKeys() => ModelWith("nokeys", [("something.else.weight", [2], new float[] { 1, 2 })]);

    string WithNaN()
    {
        using var sd = SafeTensorsReader.Read(SharedData.Fixture("bert-tiny-uncased-seqcls", "model.safetensors"));
        var tensors = sd.Keys.Where(k => sd[k].DType == DType.F32).Select(k =>
        {
            var t = sd[k];
            var data = new float[t.Shape.Aggregate(1, (a, b) => a * b)];
            t.CopyTo(data);
            if (k == "classifier.bias") data[0] = float.NaN;
            return (k, t.Shape.ToArray(), (ReadOnlyMemory<float>)data);
        }).ToList();
        return ModelWith("nan", tensors);
    }

    [Fact]
    public void ForwardAndSummary_OnCheckpointWithNoMatchingKeys_WarnLikeTransformers()
    {
        var dir = NoMatchingKeys();
        foreach (var args in new[] { new[] { "forward", "--model", dir, "hello" }, ["summary", "--model", dir] })
        {
            var (code, stdout, stderr) = Cli("", args);
            Assert.True(code == 0, stderr);
            Assert.NotEqual("", stdout);
            Assert.Contains("warning: Some weights of BertForSequenceClassification were not initialized from the model checkpoint at", stderr);
            Assert.Contains("are newly initialized: [", stderr);
            Assert.Contains("bert.embeddings.word_embeddings.weight", stderr);
            Assert.Contains("classifier.weight", stderr);
            Assert.Contains("You should probably TRAIN this model", stderr);
        }
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("embed")]
    [InlineData("attention")]
    public void Pipelines_RefuseACheckpointWithMissingWeights(string verb)
    {
        var dir = NoMatchingKeys();
        string[] args = verb == "attention" ? [verb, "--model", dir, "hello", "--out", Path.Combine(_root, "a.svg")] : [verb, "--model", dir, "hello"];
        var (code, stdout, stderr) = Cli("", args);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("the checkpoint lacks", line);
        Assert.Contains("embeddings.word_embeddings.weight", line);
        Assert.Contains("would be random", line);
    }

    [Theory]
    [InlineData("classify", "--json")]
    [InlineData("classify", "--top-k")]
    [InlineData("forward", "")]
    public void NaNInLogits_IsATypedError_NotAScore(string verb, string flag)
    {
        var dir = WithNaN();
        var args = new List<string> { verb, "--model", dir };
        if (flag == "--json") args.Add(flag);
        if (flag == "--top-k") args.AddRange(["--top-k", "0"]);
        args.Add("hello world");
        var (code, stdout, stderr) = Cli("", [.. args]);
        Assert.Equal(1, code);
        Assert.DoesNotContain("NaN", stdout);
        Assert.DoesNotContain("JsonNumberHandling", stderr);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: model produced NaN in logits", line);
        Assert.Contains("the checkpoint may be corrupt", line);
    }
}
