using System.Text.Json.Nodes;
using Sharpformer.Cli;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// Malformed token ids in tokenizer.json / vocab.txt are refused with a <see cref="TokenizerFormatException"/> naming the
/// file and the token or key — never an index, overflow or allocation failure — and the CLI reports them on one line.
/// </summary>
public sealed class TokenizerFileValidationTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sharpformer-tokval-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    // A complete, valid 7-token BERT tokenizer.json; each test breaks one thing.
    static JsonObject Valid() => JsonNode.Parse("""
        {
          "added_tokens": [
            {"id": 0, "content": "[PAD]", "special": true, "normalized": false},
            {"id": 1, "content": "[UNK]", "special": true, "normalized": false},
            {"id": 2, "content": "[CLS]", "special": true, "normalized": false},
            {"id": 3, "content": "[SEP]", "special": true, "normalized": false},
            {"id": 4, "content": "[MASK]", "special": true, "normalized": false}
          ],
          "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
          },
          "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                    "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hello": 5, "world": 6}}
        }
        """)!.AsObject();

    string Write(Action<JsonObject> edit)
    {
        var json = Valid();
        edit(json);
        var path = Path.Combine(_dir, $"{Guid.NewGuid():N}.tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    static JsonObject Vocab(JsonObject j) => j["model"]!["vocab"]!.AsObject();
    static JsonNode AddedToken(JsonObject j, int i) => j["added_tokens"]![i]!;

    [Fact]
    public void ValidMiniatureLoadsAndEncodes()
    {
        var tok = BertTokenizer.FromTokenizerJson(Write(_ => { }));
        Assert.Equal([2, 5, 6, 1, 3], tok.Encode("Hello world foo").Ids);
    }

    public static TheoryData<string, Action<JsonObject>, string[]> Malformed => new()
    {
        { "added token id −1", j => AddedToken(j, 4)["id"] = -1, ["added_tokens[4]", "[MASK]", "-1"] },
        { "added token id 2³¹−1", j => { AddedToken(j, 4)["id"] = int.MaxValue; Vocab(j).Remove("[MASK]"); }, ["added token '[MASK]'", "2147483647"] },
        { "added token id as a string", j => AddedToken(j, 1)["id"] = "1", ["added_tokens[1]", "[UNK]"] },
        { "added token without id", j => AddedToken(j, 1).AsObject().Remove("id"), ["added_tokens[1]", "[UNK]"] },
        { "vocab id 2³¹−1", j => Vocab(j)["world"] = int.MaxValue, ["vocabulary token 'world'", "2147483647"] },
        { "vocab id −1", j => Vocab(j)["world"] = -1, ["model.vocab['world']", "-1"] },
        { "vocab id 2³¹ (beyond int)", j => Vocab(j)["world"] = 2147483648L, ["model.vocab['world']", "2147483648"] },
        { "vocab id fractional", j => Vocab(j)["world"] = 5.5, ["model.vocab['world']", "5.5"] },
        { "two tokens with one id", j => Vocab(j)["world"] = 5, ["'hello'", "'world'", "both have id 5"] },
        { "hole in the ids", j => Vocab(j)["world"] = 7, ["no token has id 6"] },
        { "added token reusing another token's id", j => AddedToken(j, 4)["id"] = 5, ["added token '[MASK]'", "id 5", "'hello'"] },
        { "post-processor id outside the vocabulary", j => j["post_processor"]!["special_tokens"]!["[CLS]"]!["ids"]![0] = 99999, ["post_processor", "99999"] },
        { "post-processor id not a number", j => j["post_processor"]!["special_tokens"]!["[SEP]"]!["ids"]![0] = "x", ["post_processor.special_tokens.[SEP].ids", "\"x\""] },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedIdIsATypedErrorNamingFileAndToken(string name, Action<JsonObject> edit, string[] mentions)
    {
        var path = Write(edit);
        var ex = Assert.Throws<TokenizerFormatException>(() => BertTokenizer.FromTokenizerJson(path));
        Assert.Contains(path, ex.Message);
        foreach (var m in mentions) Assert.True(ex.Message.Contains(m, StringComparison.Ordinal), $"{name}: '{m}' not in: {ex.Message}");
    }

    [Fact]
    public void VocabTxtWithARepeatedLineNamesBothLines()
    {
        var path = Path.Combine(_dir, "vocab.txt");
        File.WriteAllLines(path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "hello"]);
        var ex = Assert.Throws<TokenizerFormatException>(() => BertTokenizer.FromVocabFile(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("line 8 repeats the token 'hello' of line 6", ex.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    public void TokenizeCommand_MalformedIds_PrintsOneErrorLineAndExitsNonZero(int badId)
    {
        var path = Write(j => { AddedToken(j, 4)["id"] = badId; Vocab(j).Remove("[MASK]"); });
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliHost.Invoke(["tokenize", "--tokenizer", path, "hello world"], new StringReader(""), stdout, stderr);
        Assert.Equal(1, code);
        var lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: " + path, lines[0]);
        Assert.Contains("[MASK]", lines[0]);
        Assert.DoesNotContain("   at ", stderr.ToString());
        Assert.Equal("", stdout.ToString());
    }
}
