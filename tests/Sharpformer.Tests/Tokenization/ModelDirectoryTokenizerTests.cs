using System.Text.Json;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// The fixture model directories (vocab.txt + tokenizer_config.json, no tokenizer.json): the 15 <c>cases[].encoding</c>
/// produced by transformers 4.30's slow BertTokenizer with each case's call_kwargs, and for token-classification dirs the
/// Rust tokenizer encodings (offsets given in code points there, converted to UTF-16 here).
/// </summary>
public class ModelDirectoryTokenizerTests
{
    public static TheoryData<string> Dirs => new()
    {
        "bert-tiny-uncased-seqcls", "bert-tiny-uncased-tokcls", "bert-tiny-uncased-mlm",
        "bert-tiny-cased-tokcls", "distilbert-tiny-uncased-seqcls", "distilbert-tiny-uncased-tokcls",
    };

    [Theory]
    [MemberData(nameof(Dirs))]
    public void CasesEncodingMatchesTransformers(string dir)
    {
        var tok = BertTokenizer.FromDirectory(SharedData.Fixture(dir));
        Assert.Equal(128, tok.ModelMaxLength);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedData.Fixture(dir, "expected.json")));
        var errors = new List<string>();
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            n++;
            var name = c.GetProperty("name").GetString()!;
            var kw = c.GetProperty("call_kwargs");
            var o = new EncodeOptions();
            if (kw.TryGetProperty("padding", out var p) && p.ValueKind == JsonValueKind.True) o = o with { Padding = PaddingStrategy.Longest };
            if (kw.TryGetProperty("truncation", out var t))
            {
                Assert.True(t.ValueKind == JsonValueKind.True || t.GetString() == "longest_first", $"{dir}/{name}: unexpected truncation {t}");
                o = o with { Truncation = TruncationStrategy.LongestFirst };
            }
            if (kw.TryGetProperty("max_length", out var m)) o = o with { MaxLength = m.GetInt32() };
            IReadOnlyList<Sharpformer.Tokenization.Encoding> got = c.GetProperty("kind").GetString() switch
            {
                "batch" => tok.EncodeBatch([.. c.GetProperty("text").EnumerateArray().Select(x => x.GetString()!)], o),
                "pair" => [tok.Encode(c.GetProperty("text").GetString()!, c.GetProperty("text_pair").GetString()!, o)],
                _ => [tok.Encode(c.GetProperty("text").GetString()!, o)],
            };
            var enc = c.GetProperty("encoding");
            string Rows(Func<Sharpformer.Tokenization.Encoding, IEnumerable<object>> f) => string.Join(" | ", got.Select(e => string.Join(",", f(e))));
            string Json(string key) => string.Join(" | ", enc.GetProperty(key).EnumerateArray().Select(row => string.Join(",", row.EnumerateArray().Select(x => x.ToString()))));
            void Check(string key, string actual) { if (Json(key) != actual) errors.Add($"{dir}/{name} {key}: expected {Json(key)} got {actual}"); }
            Check("input_ids", Rows(e => e.Ids.Cast<object>()));
            Check("attention_mask", Rows(e => e.AttentionMask.Cast<object>()));
            Check("tokens", Rows(e => e.Tokens));
            if (enc.TryGetProperty("token_type_ids", out _)) Check("token_type_ids", Rows(e => e.TypeIds.Cast<object>()));
        }
        Assert.Equal(15, n);
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Theory]
    [InlineData("bert-tiny-uncased-tokcls")]
    [InlineData("bert-tiny-cased-tokcls")]
    [InlineData("distilbert-tiny-uncased-tokcls")]
    public void RustTokenizerEncodingsMatchIncludingOffsetsAndWordIds(string dir)
    {
        var tok = BertTokenizer.FromDirectory(SharedData.Fixture(dir));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedData.Fixture(dir, "expected.json")));
        var pipe = doc.RootElement.GetProperty("token_classification_pipeline");
        var texts = pipe.GetProperty("texts").EnumerateArray().Select(x => x.GetString()!).ToList();
        var encodings = pipe.GetProperty("rust_tokenizer").GetProperty("encodings").EnumerateArray().ToList();
        Assert.Equal(texts.Count, encodings.Count);
        for (int i = 0; i < texts.Count; i++)
        {
            var e = tok.Encode(texts[i]);
            var r = encodings[i];
            Assert.Equal(r.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), e.Ids);
            Assert.Equal(r.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()), e.Tokens);
            Assert.Equal(r.GetProperty("special_tokens_mask").EnumerateArray().Select(x => x.GetInt32()), e.SpecialTokensMask);
            Assert.Equal(r.GetProperty("word_ids").EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Null ? (int?)null : x.GetInt32()), e.WordIds);
            var offsets = r.GetProperty("offsets").EnumerateArray()
                .Select(x => new TokenOffset(CodePointToUtf16(texts[i], x[0].GetInt32()), CodePointToUtf16(texts[i], x[1].GetInt32()))).ToList();
            for (int k = 0; k < e.Length; k++)
                if (e.SpecialTokensMask[k] == 1) offsets[k] = default;
            Assert.Equal(offsets, e.Offsets);
        }
    }

    internal static int CodePointToUtf16(string s, int cp)
    {
        int u = 0;
        for (int c = 0; c < cp; c++) u += char.IsHighSurrogate(s[u]) && u + 1 < s.Length && char.IsLowSurrogate(s[u + 1]) ? 2 : 1;
        return u;
    }

    [Fact]
    public void VocabFileAndTokenizerJsonAgree()
    {
        var fromVocab = BertTokenizer.FromVocabFile(SharedData.DataFile("bert-base-uncased", "vocab.txt"));
        var fromJson = TokenizerConformanceTests.UncasedTokenizer;
        const string text = "Héllo, WORLD! naïve 日本 x[MASK]y don't 🤗";
        var a = fromVocab.Encode(text, "pair text");
        var b = fromJson.Encode(text, "pair text");
        Assert.Equal(b.Ids, a.Ids);
        Assert.Equal(b.Offsets, a.Offsets);
        Assert.Equal(b.WordIds, a.WordIds);
        Assert.Equal(fromJson.Decode(b.Ids), fromVocab.Decode(a.Ids));
    }

    [Fact]
    public void FillMaskSequencesEqualTransformersDecode()
    {
        // transformers 4.30 fill-mask: sequence = decode(input ids with the [MASK] replaced, skip_special_tokens = single mask).
        var tok = BertTokenizer.FromDirectory(SharedData.Fixture("bert-tiny-uncased-mlm"));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedData.Fixture("bert-tiny-uncased-mlm", "expected.json")));
        var fill = doc.RootElement.GetProperty("mlm").GetProperty("fill_mask_pipeline");
        var texts = fill.GetProperty("texts").EnumerateArray().Select(x => x.GetString()!).ToList();
        var outputs = fill.GetProperty("outputs").EnumerateArray().ToList();
        int checkedCount = 0;
        for (int t = 0; t < texts.Count; t++)
        {
            var ids = tok.Encode(texts[t]).GetIdsArray();
            var maskPositions = Enumerable.Range(0, ids.Length).Where(i => ids[i] == tok.MaskTokenId).ToList();
            var perMask = maskPositions.Count == 1 ? [outputs[t]] : outputs[t].EnumerateArray().ToList();
            for (int m = 0; m < maskPositions.Count; m++)
                foreach (var candidate in perMask[m].EnumerateArray())
                {
                    var filled = (int[])ids.Clone();
                    filled[maskPositions[m]] = candidate.GetProperty("token").GetInt32();
                    Assert.Equal(candidate.GetProperty("sequence").GetString(), tok.Decode(filled, skipSpecialTokens: maskPositions.Count == 1, cleanup: DecodeCleanup.WholeText));
                    Assert.Equal(candidate.GetProperty("token_str").GetString(), tok.Decode([filled[maskPositions[m]]]));
                    checkedCount++;
                }
        }
        Assert.Equal(20, checkedCount);
    }
}
