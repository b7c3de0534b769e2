using System.Text.Json;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Tests.Cli;

/// <summary><c>sharpformer generate</c> on ../shared/fixtures/gpt2-tiny: the streamed tokens are transformers' greedy ones.</summary>
public class GenerateCommandTests
{
    [Fact]
    public async Task Json_lines_stream_the_fixture_greedy_tokens_and_end_with_the_decoded_text()
    {
        var g = Fixtures.Expected("gpt2-tiny").GetProperty("generation");
        var prompt = g.GetProperty("prompts")[0];
        var greedy = g.GetProperty("runs").EnumerateArray().First(r => r.GetProperty("name").GetString() == "greedy").GetProperty("outputs")[0];
        var expected = greedy.GetProperty("new_tokens").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var output = new StringWriter();
        int rc = await GenerateCommand.ExecuteAsync(new GenerateCommand.Settings(SharedData.Fixture("gpt2-tiny"), prompt.GetProperty("text").GetString()!,
            MaxNewTokens: expected.Length, Json: true), output);
        Assert.Equal(0, rc);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expected.Length + 1, lines.Length);
        Assert.Equal(expected, lines[..^1].Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt32()));
        var summary = JsonDocument.Parse(lines[^1]).RootElement;
        Assert.Equal(greedy.GetProperty("new_text").GetString(), summary.GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_stop_string_ends_generation_at_the_token_that_completes_it()
    {
        var g = Fixtures.Expected("gpt2-tiny").GetProperty("generation");
        var prompt = g.GetProperty("prompts")[0].GetProperty("text").GetString()!;
        var output = new StringWriter();
        // greedy continues " federal took took …": "took" first appears with the 4th new token (ids 105, 1668, 1668, 1893)
        await GenerateCommand.ExecuteAsync(new GenerateCommand.Settings(SharedData.Fixture("gpt2-tiny"), prompt, MaxNewTokens: 20, Json: true, Stop: ["took"]), output);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var ids = lines[..^1].Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt32()).ToArray();
        Assert.Equal(1893, ids[^1]);
        Assert.DoesNotContain(1893, ids[..^1]);
    }
}
