using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Cli.Commands;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>The <c>sharpformer tokenize --jsonl</c> verb, run in-process on redirected streams, against the fixture records.</summary>
public class TokenizeCommandTests
{
    static readonly string[] Fields = ["ids", "tokens", "type_ids", "attention_mask", "special_tokens_mask", "offsets", "word_ids", "sequence_ids"];

    static TokenizeCommand.Settings Jsonl(string tokenizer) =>
        new(tokenizer, [], null, null, TruncationStrategy.None, PaddingStrategy.None, Jsonl: true);

    [Fact]
    public void JsonlOutputEqualsFixtureRecords()
    {
        var records = File.ReadLines(SharedData.Fixture("tokenizer", "bert-base-uncased.jsonl"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(r => (string)r["mode"]! is "single" or "pair")
            .Where(r => (string)r["id"]! is "s0000" or "s0100" or "p0000").ToList();
        Assert.Equal(3, records.Count);
        var input = string.Join("\n", records.Select(r => r["text_pair"] is null
            ? new JsonObject { ["text"] = (string)r["text"]! }.ToJsonString()
            : new JsonObject { ["text"] = (string)r["text"]!, ["text_pair"] = (string)r["text_pair"]! }.ToJsonString()));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = TokenizeCommand.Execute(Jsonl(SharedData.DataFile("bert-base-uncased", "tokenizer.json")), new StringReader(input), stdout, stderr);
        Assert.Equal(0, rc);
        Assert.Equal("", stderr.ToString());
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(records.Count, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            var got = JsonNode.Parse(lines[i])!.AsObject();
            Assert.Equal(Fields, got.Select(p => p.Key));
            foreach (var f in Fields)
                Assert.True(JsonNode.DeepEquals(records[i][f], got[f]), $"{records[i]["id"]} {f}: expected {records[i][f]!.ToJsonString()} got {got[f]!.ToJsonString()}");
        }
    }

    [Fact]
    public void PretokenizedLineMatchesFixture()
    {
        var record = File.ReadLines(SharedData.Fixture("tokenizer", "bert-base-cased.jsonl"))
            .Select(l => JsonNode.Parse(l)!.AsObject()).First(r => (string)r["mode"]! == "pretokenized_derived");
        var input = new JsonObject { ["words"] = record["words"]!.DeepClone() }.ToJsonString();
        var stdout = new StringWriter();
        int rc = TokenizeCommand.Execute(Jsonl(SharedData.DataFile("bert-base-cased", "tokenizer.reconstructed.json")), new StringReader(input), stdout, new StringWriter());
        Assert.Equal(0, rc);
        var got = JsonNode.Parse(stdout.ToString())!.AsObject();
        foreach (var f in Fields) Assert.True(JsonNode.DeepEquals(record[f], got[f]), f);
    }

    [Fact]
    public void BadJsonLineNamesTheLineAndExitsWithOne()
    {
        var stderr = new StringWriter();
        int rc = TokenizeCommand.Execute(Jsonl(SharedData.DataFile("bert-base-uncased", "tokenizer.json")),
            new StringReader("{\"text\": \"fine\"}\n{\"text\": 5}\n"), new StringWriter(), stderr);
        Assert.Equal(1, rc);
        Assert.StartsWith("error: stdin line 2:", stderr.ToString());
        Assert.DoesNotContain("   at ", stderr.ToString());
    }

    [Fact]
    public void TableShowsTokensIdsAndOffsets()
    {
        var stdout = new StringWriter();
        var settings = new TokenizeCommand.Settings(SharedData.Fixture("bert-tiny-uncased-seqcls"), ["Hello, world!"], null, null,
            TruncationStrategy.None, PaddingStrategy.None, false);
        Assert.Equal(0, TokenizeCommand.Execute(settings, new StringReader(""), stdout, new StringWriter()));
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2 + 6, lines.Length);
        Assert.Matches(@"^\s+1\s+hello\s+7592\s+0\s+0\s+0\s+\[0, 5\)\s+""Hello""", lines[3]);
    }

    [Fact]
    public void AByteLevelBpeFolderIsDetectedAndEncodesAsTheFixture()
    {
        var stdout = new StringWriter();
        var rc = TokenizeCommand.Execute(Jsonl(SharedData.Fixture("gpt2-tiny")), new StringReader("{\"text\": \"Hello world\"}\n"), stdout, new StringWriter());
        Assert.Equal(0, rc);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout.ToString());
        Assert.Equal([40, 482, 79, 737], doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal("Ġworld", doc.RootElement.GetProperty("tokens")[3].GetString());
    }

    [Fact]
    public void LeftPaddingWithAPadTokenForGpt2()
    {
        var stdout = new StringWriter();
        var settings = Jsonl(SharedData.Fixture("gpt2-tiny")) with { Padding = PaddingStrategy.Longest };
        settings = settings with { PaddingSide = PaddingSide.Left, PadToken = "<|endoftext|>" };
        var rc = TokenizeCommand.Execute(settings, new StringReader("{\"text\": \"Hello world\"}\n{\"text\": \"Hello\"}\n"), stdout, new StringWriter());
        Assert.Equal(0, rc);
        var second = System.Text.Json.JsonDocument.Parse(stdout.ToString().Split('\n')[1]).RootElement;
        Assert.Equal([0, 1, 1, 1], second.GetProperty("attention_mask").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(0, second.GetProperty("ids")[0].GetInt32());
    }
}
