using System.Text.Json.Nodes;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>Malformed vocab.json / merges.txt / tokenizer.json give typed errors that name the file and the line, index or token.</summary>
public class ByteLevelBpeFileValidationTests : IDisposable
{
    const string Dir = "tokenizer-bytelevel-bpe";
    readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpformer-bpe-bad-" + Guid.NewGuid().ToString("N"));

    public ByteLevelBpeFileValidationTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, true);

    string WriteMerges(Func<List<string>, List<string>> edit)
    {
        var path = Path.Combine(_dir, "merges.txt");
        File.WriteAllLines(path, edit(File.ReadAllLines(SharedData.Fixture(Dir, "merges.txt")).ToList()));
        return path;
    }

    [Theory]
    [InlineData("Ġt", "line 3", "two tokens separated by one space")]
    [InlineData("Ġ zzz", "line 3", "'zzz' is not in the vocabulary")]
    [InlineData("a  b", "line 3", "two tokens separated by one space")]
    public void ABadMergesLineNamesTheFileAndLine(string badLine, string where, string what)
    {
        var merges = WriteMerges(l => { l[2] = badLine; return l; });
        var ex = Assert.Throws<TokenizerFormatException>(() => ByteLevelBpeTokenizer.FromFiles(SharedData.Fixture(Dir, "vocab.json"), merges));
        Assert.Contains("merges.txt", ex.Message);
        Assert.Contains(where, ex.Message);
        Assert.Contains(what, ex.Message);
    }

    [Fact]
    public void AMergeWhoseResultIsNotInTheVocabularyIsRejected()
    {
        var merges = WriteMerges(l => { l.Add("Ġ !"); return l; });
        var ex = Assert.Throws<TokenizerFormatException>(() => ByteLevelBpeTokenizer.FromFiles(SharedData.Fixture(Dir, "vocab.json"), merges));
        Assert.Contains("merge 1744", ex.Message);
        Assert.Contains("'Ġ!'", ex.Message);
    }

    static JsonObject Json() => JsonNode.Parse(File.ReadAllText(SharedData.Fixture(Dir, "tokenizer.json")))!.AsObject();

    public static TheoryData<string, Action<JsonObject>, string[]> JsonCases => new()
    {
        { "merge not a pair", j => j["model"]!["merges"]![5] = 42, ["model.merges[5]", "42"] },
        { "merge of unknown token", j => j["model"]!["merges"]![7] = new JsonArray("Ġ", "nope"), ["model.merges[7]", "'nope'"] },
        { "negative id", j => j["model"]!["vocab"]!["!"] = -3, ["model.vocab['!']", "-3"] },
        { "id gap", j => j["model"]!["vocab"]!["!"] = 5000, ["'!'", "5000"] },
        { "no merges", j => j["model"]!.AsObject().Remove("merges"), ["model.merges"] },
    };

    [Theory]
    [MemberData(nameof(JsonCases))]
    public void MalformedTokenizerJsonNamesTheKey(string name, Action<JsonObject> edit, string[] expected)
    {
        var j = Json();
        edit(j);
        var path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, j.ToJsonString());
        var ex = Assert.Throws<TokenizerFormatException>(() => ByteLevelBpeTokenizer.FromTokenizerJson(path));
        Assert.Contains(path, ex.Message);
        foreach (var s in expected) Assert.True(ex.Message.Contains(s), $"{name}: '{ex.Message}' lacks '{s}'");
    }

    [Fact]
    public void UnsupportedSettingsAreRefusedNotIgnored()
    {
        var j = Json();
        j["pre_tokenizer"]!["add_prefix_space"] = true;
        var path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, j.ToJsonString());
        Assert.Contains("add_prefix_space", Assert.Throws<NotSupportedException>(() => ByteLevelBpeTokenizer.FromTokenizerJson(path)).Message);
        var wp = Assert.Throws<NotSupportedException>(() => BertTokenizer.FromTokenizerJson(SharedData.Fixture(Dir, "tokenizer.json")));
        Assert.Contains("BPE", wp.Message);
    }
}
