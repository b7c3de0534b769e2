using System.Text.Json;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Tests.Models;

/// <summary>The <c>summary</c> and <c>forward</c> verbs, in-process on a fixture directory, against expected.json.</summary>
public sealed class ModelCliTests
{
    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("distilbert-tiny-uncased-tokcls")]
    public void ForwardPrintsTokensAndOutputsEqualToTransformers(string dir)
    {
        var exp = FixtureModels.Expected(dir);
        var cases = exp.Cases.Where(c => c.Json.GetProperty("kind").GetString() != "batch" && c.Json.GetProperty("call_kwargs").EnumerateObject().Count() == 0).ToList();
        var stdin = string.Join("\n", cases.Select(c => JsonSerializer.Serialize(new { text = c.Json.GetProperty("text").GetString(), text_pair = c.Json.GetProperty("text_pair").GetString() })));
        var stdout = new StringWriter(); var stderr = new StringWriter();
        bool bert = dir.StartsWith("bert");
        string outputs = bert ? "logits,last_hidden_state,pooler_output" : "logits,hidden_states,attentions";
        int rc = ForwardCommand.Execute(SharedData.Fixture(dir), outputs, new StringReader(stdin), stdout, stderr);
        Assert.True(rc == 0, stderr.ToString());
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(cases.Count, lines.Length);
        var check = new ParityCheck(dir + " [cli forward]", 1e-5);
        for (int i = 0; i < cases.Count; i++)
        {
            var got = JsonDocument.Parse(lines[i]).RootElement;
            var c = cases[i];
            Assert.Equal(c.Json.GetProperty("encoding").GetProperty("tokens")[0].EnumerateArray().Select(t => t.GetString()), got.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
            CompareDroppingBatch(check, c.Name, "logits", c.Outputs.GetProperty("logits"), got.GetProperty("logits"), batchAxis: 0);
            if (bert)
            {
                CompareDroppingBatch(check, c.Name, "last_hidden_state", c.Outputs.GetProperty("last_hidden_state"), got.GetProperty("last_hidden_state"), 0);
                CompareDroppingBatch(check, c.Name, "pooler_output", c.BaseOutputs.GetProperty("pooler_output"), got.GetProperty("pooler_output"), 0);
            }
            else if (c.BaseOutputs.TryGetProperty("hidden_states", out var hs))
            {
                CompareDroppingBatch(check, c.Name, "hidden_states", hs, got.GetProperty("hidden_states"), batchAxis: 1);
                CompareDroppingBatch(check, c.Name, "attentions", c.BaseOutputs.GetProperty("attentions"), got.GetProperty("attentions"), batchAxis: 1);
            }
        }
        check.AssertAll(new NullOutput());
    }

    static void CompareDroppingBatch(ParityCheck check, string name, string quantity, JsonElement expected, JsonElement got, int batchAxis)
    {
        var (values, shape) = FixtureModels.Flatten(got);
        var (_, expShape) = FixtureModels.Flatten(expected);
        Assert.Equal(1, expShape[batchAxis]);
        check.Compare(name, quantity, expected, values.Select(v => (float)v).ToArray(), [.. shape[..batchAxis], 1, .. shape[batchAxis..]]);
    }

    sealed class NullOutput : Xunit.Abstractions.ITestOutputHelper
    {
        public void WriteLine(string message) { }
        public void WriteLine(string format, params object[] args) { }
    }

    [Theory]
    [InlineData("{\"text\": \"ok\"}\n{not json", "stdin line 2: not valid JSON")]
    [InlineData("{\"txt\": \"x\"}", "stdin line 1: expected an object with a string \"text\" field")]
    public void BadInputLineIsOneErrorLineAndExitCode1(string stdin, string message)
    {
        var stdout = new StringWriter(); var stderr = new StringWriter();
        int rc = ForwardCommand.Execute(SharedData.Fixture("bert-tiny-uncased-seqcls"), null, new StringReader(stdin), stdout, stderr);
        Assert.Equal(1, rc);
        var err = stderr.ToString().TrimEnd('\n', '\r');
        Assert.DoesNotContain('\n', err);
        Assert.StartsWith("error: " + message, err);
    }

    [Fact]
    public void UnknownOutputOrMissingTokenizerIsAnError()
    {
        var stderr = new StringWriter();
        Assert.Equal(1, ForwardCommand.Execute(SharedData.Fixture("bert-tiny-uncased-seqcls"), "logits,probabilities", new StringReader(""), new StringWriter(), stderr));
        Assert.Contains("unknown output 'probabilities'", stderr.ToString());
        stderr = new StringWriter();
        Assert.Equal(1, ForwardCommand.Execute(SharedData.Fixture("bert-tiny-uncased-tokcls"), "pooler_output", new StringReader(""), new StringWriter(), stderr));
        Assert.Contains("no pooler", stderr.ToString());

        var temp = Path.Combine(Path.GetTempPath(), "sf-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(temp);
        try
        {
            foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(SharedData.Fixture("distilbert-tiny-uncased-seqcls", f), Path.Combine(temp, f));
            stderr = new StringWriter();
            Assert.Equal(1, ForwardCommand.Execute(temp, null, new StringReader("{\"text\": \"hi\"}"), new StringWriter(), stderr));
            Assert.Contains("No tokenizer", stderr.ToString());
        }
        finally { Directory.Delete(temp, true); }
    }

    [Fact]
    public void SummaryListsLayersShapesAndParameterTotals()
    {
        var stdout = new StringWriter(); var stderr = new StringWriter();
        Assert.Equal(0, SummaryCommand.Execute(SharedData.Fixture("bert-tiny-uncased-seqcls"), 4, 8, stdout, stderr));
        var text = stdout.ToString();
        var model = FixtureModels.Model("bert-tiny-uncased-seqcls", false);
        long total = model.ParameterCount();
        Assert.Equal(30522 * 64 + 128 * 64 + 2 * 64 + 2 * 64 + 2 * (4 * (64 * 64 + 64) + 2 * 64 + 64 * 128 + 128 + 128 * 64 + 64 + 2 * 64) + 64 * 64 + 64 + 4 * 64 + 4, total);
        Assert.Contains($"Total params: {total:N0}", text);
        Assert.Contains($"Trainable params: {total:N0}", text);
        Assert.Contains("Non-trainable params: 0", text);
        Assert.Contains("embeddings (EncoderEmbeddings)", text);
        Assert.Contains("[1, 8, 64]", text);    // encoder layer outputs
        Assert.Contains("[1, 4]", text);        // classifier output
        Assert.Contains("0 (BertLayer)", text);
        Assert.Equal(1, SummaryCommand.Execute(Path.Combine(Path.GetTempPath(), "does-not-exist-" + Guid.NewGuid()), 3, 8, new StringWriter(), stderr));
        Assert.StartsWith("error: ", stderr.ToString());
    }
}
