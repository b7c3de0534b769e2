using System.Text.Json;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// Every record of shared/fixtures/tokenizer-bytelevel-bpe/records.jsonl (HF Rust tokenizers 0.23.2 through its Node
/// binding) reproduced exactly — ids, tokens, UTF-16 offsets, word ids, decode with and without special tokens — from
/// tokenizer.json and from vocab.json + merges.txt.
/// </summary>
public class ByteLevelBpeConformanceTests
{
    const string Dir = "tokenizer-bytelevel-bpe";
    static readonly Lazy<ByteLevelBpeTokenizer> FromJson = new(() => ByteLevelBpeTokenizer.FromTokenizerJson(SharedData.Fixture(Dir, "tokenizer.json")));
    static readonly Lazy<ByteLevelBpeTokenizer> FromVocabMerges = new(() =>
        ByteLevelBpeTokenizer.FromFiles(SharedData.Fixture(Dir, "vocab.json"), SharedData.Fixture(Dir, "merges.txt")));
    internal static ByteLevelBpeTokenizer Tokenizer => FromJson.Value;

    internal static IEnumerable<JsonElement> Records() =>
        File.ReadLines(SharedData.Fixture(Dir, "records.jsonl")).Select(l => JsonDocument.Parse(l).RootElement);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EveryFixtureRecordIsReproduced(bool tokenizerJson)
    {
        var tok = tokenizerJson ? FromJson.Value : FromVocabMerges.Value;
        var errors = new List<string>();
        int records = 0;
        foreach (var r in Records())
        {
            records++;
            var id = r.GetProperty("id").GetString()!;
            var text = r.GetProperty("text").GetString()!;
            var e = tok.Encode(text);
            int[] ids = [.. r.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
            string[] tokens = [.. r.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()!)];
            TokenOffset[] offsets = [.. r.GetProperty("offsets").EnumerateArray().Select(x => new TokenOffset(x[0].GetInt32(), x[1].GetInt32()))];
            int?[] words = [.. r.GetProperty("word_ids").EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Null ? (int?)null : x.GetInt32())];
            if (!e.Ids.SequenceEqual(ids)) errors.Add($"{id}: ids [{string.Join(",", e.Ids)}] != [{string.Join(",", ids)}]");
            else
            {
                if (!e.Tokens.SequenceEqual(tokens)) errors.Add($"{id}: tokens differ");
                if (!e.Offsets.SequenceEqual(offsets)) errors.Add($"{id}: offsets {string.Join(" ", e.Offsets)} != {string.Join(" ", offsets)}");
                if (!e.WordIds.SequenceEqual(words)) errors.Add($"{id}: word ids [{string.Join(",", e.WordIds)}] != [{string.Join(",", words)}]");
            }
            if (!e.AttentionMask.All(m => m == 1) || !e.TypeIds.All(t => t == 0)) errors.Add($"{id}: mask/type ids");
            var decoded = tok.Decode(ids, skipSpecialTokens: false);
            if (decoded != r.GetProperty("decoded").GetString()) errors.Add($"{id}: decoded '{decoded}'");
            var decodedSkip = tok.Decode(ids, skipSpecialTokens: true);
            if (decodedSkip != r.GetProperty("decoded_skip_special").GetString()) errors.Add($"{id}: decoded_skip_special '{decodedSkip}'");
        }
        Assert.Equal(300, records);
        Assert.True(errors.Count == 0, $"{errors.Count} mismatches:\n" + string.Join("\n", errors.Take(20)));
    }

    [Fact]
    public void BatchEncodingOnTwoThreadsEqualsOneByOne()
    {
        var tok = Tokenizer;
        var texts = Records().Select(r => r.GetProperty("text").GetString()!).ToList();
        var batch = tok.EncodeBatch(texts, new EncodeOptions { Threads = 2 });
        for (int i = 0; i < texts.Count; i++) Assert.Equal(tok.Encode(texts[i]).Ids, batch[i].Ids);
    }
}
