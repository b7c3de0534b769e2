using System.Text.Json;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// Every record of shared/fixtures/tokenizer/*.jsonl (produced by HF's Rust tokenizers 0.23.2) reproduced exactly:
/// ids, tokens, type ids, masks, UTF-16 offsets, word ids, sequence ids, and for singles the normalizer output and decode.
/// </summary>
public class TokenizerConformanceTests
{
    static readonly Lazy<BertTokenizer> Uncased = new(() => BertTokenizer.FromTokenizerJson(SharedData.DataFile("bert-base-uncased", "tokenizer.json")));
    static readonly Lazy<BertTokenizer> Cased = new(() => BertTokenizer.FromTokenizerJson(SharedData.DataFile("bert-base-cased", "tokenizer.reconstructed.json")));

    internal static BertTokenizer UncasedTokenizer => Uncased.Value;
    internal static BertTokenizer CasedTokenizer => Cased.Value;

    static readonly EncodeOptions Trunc16 = new() { Truncation = TruncationStrategy.LongestFirst, MaxLength = 16 };
    static readonly EncodeOptions PadLongest = new() { Padding = PaddingStrategy.Longest };
    static readonly EncodeOptions Trunc16Pad16 = new() { Truncation = TruncationStrategy.LongestFirst, MaxLength = 16, Padding = PaddingStrategy.MaxLength };

    [Theory]
    [InlineData("bert-base-uncased.jsonl", true)]
    [InlineData("bert-base-cased.jsonl", false)]
    public void EveryFixtureRecordIsReproduced(string file, bool uncased)
    {
        var tok = uncased ? Uncased.Value : Cased.Value;
        var errors = new List<string>();
        int records = 0;
        foreach (var line in File.ReadLines(SharedData.Fixture("tokenizer", file)))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            var id = r.GetProperty("id").GetString()!;
            var mode = r.GetProperty("mode").GetString()!;
            records++;
            string Text() => r.GetProperty("text").GetString()!;
            string Pair() => r.GetProperty("text_pair").GetString()!;
            string[] Strings(string key) => [.. r.GetProperty(key).EnumerateArray().Select(x => x.GetString()!)];
            switch (mode)
            {
                case "single":
                    Compare(errors, $"{id}/{mode}", tok.Encode(Text()), r);
                    Check(errors, $"{id}/{mode}", "normalized", r.GetProperty("normalized").GetString(), tok.Normalize(Text()));
                    var enc = tok.Encode(Text());
                    Check(errors, $"{id}/{mode}", "decoded", r.GetProperty("decoded").GetString(), tok.Decode(enc.Ids));
                    break;
                case "single_trunc16": Compare(errors, $"{id}/{mode}", tok.Encode(Text(), Trunc16), r); break;
                case "pair": Compare(errors, $"{id}/{mode}", tok.Encode(Text(), Pair()), r); break;
                case "pair_trunc16": Compare(errors, $"{id}/{mode}", tok.Encode(Text(), Pair(), Trunc16), r); break;
                case "pretokenized_derived": Compare(errors, $"{id}/{mode}", tok.EncodePretokenized(Strings("words")), r); break;
                case "batch_pad_longest":
                case "batch_trunc16_pad16":
                    CompareBatch(errors, $"{id}/{mode}", tok.EncodeBatch(Strings("texts"), mode == "batch_pad_longest" ? PadLongest : Trunc16Pad16), r);
                    break;
                case "pair_batch_pad_longest":
                case "pair_batch_trunc16_pad16":
                    {
                        var texts = Strings("texts"); var pairs = Strings("text_pairs");
                        var input = texts.Zip(pairs).Select(t => (t.First, t.Second)).ToList();
                        CompareBatch(errors, $"{id}/{mode}", tok.EncodeBatch(input, mode == "pair_batch_pad_longest" ? PadLongest : Trunc16Pad16), r);
                        break;
                    }
                default: errors.Add($"{id}: unknown mode {mode}"); break;
            }
        }
        Assert.Equal(993, records);
        Assert.True(errors.Count == 0, $"{errors.Count} mismatches in {file}:\n" + string.Join("\n", errors.Take(40)));
    }

    static void CompareBatch(List<string> errors, string where, IReadOnlyList<Sharpformer.Tokenization.Encoding> got, JsonElement r)
    {
        var expected = r.GetProperty("encodings").EnumerateArray().ToList();
        Check(errors, where, "batch size", expected.Count, got.Count);
        for (int i = 0; i < Math.Min(expected.Count, got.Count); i++) Compare(errors, $"{where}[{i}]", got[i], expected[i]);
    }

    internal static void Compare(List<string> errors, string where, Sharpformer.Tokenization.Encoding e, JsonElement r)
    {
        static string Ints(IEnumerable<int?> xs) => "[" + string.Join(",", xs.Select(x => x?.ToString() ?? "null")) + "]";
        static string Json(JsonElement a) => "[" + string.Join(",", a.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Null ? "null"
            : x.ValueKind == JsonValueKind.Array ? "(" + string.Join(",", x.EnumerateArray().Select(y => y.ToString())) + ")" : x.ToString())) + "]";
        Check(errors, where, "ids", Json(r.GetProperty("ids")), Ints(e.Ids.Select(x => (int?)x)));
        Check(errors, where, "tokens", Json(r.GetProperty("tokens")), "[" + string.Join(",", e.Tokens) + "]");
        Check(errors, where, "type_ids", Json(r.GetProperty("type_ids")), Ints(e.TypeIds.Select(x => (int?)x)));
        Check(errors, where, "attention_mask", Json(r.GetProperty("attention_mask")), Ints(e.AttentionMask.Select(x => (int?)x)));
        Check(errors, where, "special_tokens_mask", Json(r.GetProperty("special_tokens_mask")), Ints(e.SpecialTokensMask.Select(x => (int?)x)));
        Check(errors, where, "offsets", Json(r.GetProperty("offsets")), "[" + string.Join(",", e.Offsets.Select(o => $"({o.Start},{o.End})")) + "]");
        Check(errors, where, "word_ids", Json(r.GetProperty("word_ids")), Ints(e.WordIds));
        Check(errors, where, "sequence_ids", Json(r.GetProperty("sequence_ids")), Ints(e.SequenceIds));
    }

    static void Check<T>(List<string> errors, string where, string field, T expected, T actual)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual)) errors.Add($"{where} {field}: expected {expected} got {actual}");
    }
}
