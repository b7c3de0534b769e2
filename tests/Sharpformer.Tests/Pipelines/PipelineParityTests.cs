using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Pipelines;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Pipelines;

/// <summary>
/// The pipelines with the real tiny models against transformers 4.30.2's pipeline outputs in the fixtures:
/// scores within 1e-5, labels, words and offsets exact (fixture offsets are code points, converted to UTF-16).
/// </summary>
public class PipelineParityTests
{
    static readonly Dictionary<(string, PipelineTask), (ITokenizer, IPipelineModel)> Loaded = new();

    internal static (ITokenizer Tokenizer, IPipelineModel Model) Load(string dir, PipelineTask task)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue((dir, task), out var pair)) Loaded[(dir, task)] = pair = PipelineLoader.Load(SharedData.Fixture(dir), task);
            return pair;
        }
    }

    /// <summary>The word pieces of a text, without special tokens.</summary>
    internal static int Cls(ITokenizer tok) => tok.TokenToId("[CLS]")!.Value;
    internal static int Sep(ITokenizer tok) => tok.TokenToId("[SEP]")!.Value;

    internal static Encoding Pieces(ITokenizer tok, string text) => tok.Encode(text, null, new EncodeOptions { AddSpecialTokens = false });

    // ------------------------------------------------------------------ text classification

    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("distilbert-tiny-uncased-seqcls")]
    public void TextClassification_AllRecords(string dir)
    {
        var (tok, model) = Load(dir, PipelineTask.TextClassification);
        var tc = Fixtures.Expected(dir).GetProperty("text_classification_pipeline");
        var texts = tc.GetProperty("texts").EnumerateArray().Select(t => new TextInput(t.GetString()!)).ToList();
        var single = new TextClassificationPipeline(tok, model, new PipelineOptions { BatchSize = 1 });
        var top1 = single.Run(texts, topK: 1);
        var all = single.Run(texts, topK: null);
        var byId = single.Run(texts, topK: null, sortByScore: false);
        var batched = new TextClassificationPipeline(tok, model, new PipelineOptions { BatchSize = texts.Count }).Run(texts);
        for (int i = 0; i < texts.Count; i++)
        {
            RecordedOutputTests.AssertLabels(tc.GetProperty("default")[i], top1[i]);
            RecordedOutputTests.AssertLabels(tc.GetProperty("top_k_none")[i], all[i]);
            RecordedOutputTests.AssertLabels(tc.GetProperty("return_all_scores_true")[i][0], byId[i]);
            var b = tc.GetProperty("batched_list_input_default")[i];
            Assert.Equal(b.GetProperty("label").GetString(), batched[i][0].Label);
            Assert.Equal(b.GetProperty("score").GetSingle(), batched[i][0].Score, 1e-5);
        }
        var pair = tc.GetProperty("pair_input_dict");
        var input = pair.GetProperty("input");
        var r = single.Run([new TextInput(input.GetProperty("text").GetString()!, input.GetProperty("text_pair").GetString())])[0];
        Assert.Equal(pair.GetProperty("output").GetProperty("label").GetString(), r[0].Label);
        Assert.Equal(pair.GetProperty("output").GetProperty("score").GetSingle(), r[0].Score, 1e-5);
    }

    [Fact]
    public void TextClassification_Sigmoid_And_None_ApplyToTheSameLogits()
    {
        var (tok, model) = Load("bert-tiny-uncased-seqcls", PipelineTask.TextClassification);
        var p = new TextClassificationPipeline(tok, model);
        var logits = p.Logits([new TextInput("I love this movie!")])[0];
        var raw = p.Run([new TextInput("I love this movie!")], topK: null, ClassificationFunction.None, sortByScore: false)[0];
        var sig = p.Run([new TextInput("I love this movie!")], topK: null, ClassificationFunction.Sigmoid, sortByScore: false)[0];
        for (int k = 0; k < logits.Length; k++)
        {
            Assert.Equal(logits[k], raw[k].Score);
            Assert.Equal(1 / (1 + Math.Exp(-logits[k])), sig[k].Score, 1e-6);
        }
        Assert.Equal(ClassificationFunction.Softmax, p.ResolveFunction(ClassificationFunction.Default));
    }

    [Fact]
    public void TextClassification_TruncatesLongInputs_AndSaysSo()
    {
        var (tok, model) = Load("bert-tiny-uncased-seqcls", PipelineTask.TextClassification);
        var p = new TextClassificationPipeline(tok, model);
        var warnings = new List<TruncationWarning>();
        p.Truncated += warnings.Add;
        var text = string.Join(' ', Enumerable.Repeat("stocks rallied after the central bank cut rates.", 40));
        var r = p.Run([new TextInput("short one"), new TextInput(text)]);
        Assert.Equal(2, r.Count);
        var w = Assert.Single(warnings);
        Assert.Equal(1, w.InputIndex);
        Assert.Equal(128, w.MaxLength);
        Assert.Equal(Pieces(tok, text).Length + 2, w.TokenCount);
        // The truncated input scores exactly as its first 126 pieces would.
        var head = p.Logits([new TextInput(text)])[0];
        var cut = text[..Pieces(tok, text).Offsets[125].End];
        Assert.Equal(head, p.Logits([new TextInput(cut)])[0]);
    }

    // ------------------------------------------------------------------ token classification

    public static TheoryData<string, string, string> TokenRecords()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var dir in new[] { "bert-tiny-uncased-tokcls", "bert-tiny-cased-tokcls", "distilbert-tiny-uncased-tokcls" })
        {
            foreach (var s in new[] { "none", "simple", "first", "average", "max" }) data.Add(dir, "fast_path_emulated", s);
            foreach (var s in new[] { "none", "simple" }) data.Add(dir, "slow_tokenizer_rust_offsets", s);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TokenRecords))]
    public void TokenClassification_MatchesHf(string dir, string path, string strategy)
    {
        var (tok, model) = Load(dir, PipelineTask.TokenClassification);
        var tcp = Fixtures.Expected(dir).GetProperty("token_classification_pipeline");
        var texts = tcp.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var expected = tcp.GetProperty(path).GetProperty(strategy);
        var pipe = new TokenClassificationPipeline(tok, model, new PipelineOptions { BatchSize = 4 });
        if (strategy == "none")
        {
            var actual = pipe.RunTokens(texts);
            for (int t = 0; t < texts.Count; t++)
            {
                var e = expected[t];
                Assert.Equal(e.GetArrayLength(), actual[t].Count);
                for (int i = 0; i < actual[t].Count; i++)
                {
                    var x = e[i]; var a = actual[t][i];
                    Assert.Equal(x.GetProperty("entity").GetString(), a.Entity);
                    Assert.Equal(x.GetProperty("index").GetInt32(), a.Index);
                    Assert.Equal(x.GetProperty("word").GetString(), a.Word);
                    Assert.Equal(Fixtures.Utf16Index(texts[t], x.GetProperty("start").GetInt32()), a.Start);
                    Assert.Equal(Fixtures.Utf16Index(texts[t], x.GetProperty("end").GetInt32()), a.End);
                    Assert.Equal(x.GetProperty("score").GetSingle(), a.Score, 1e-5);
                }
            }
        }
        else
        {
            var s = Enum.Parse<AggregationStrategy>(strategy, ignoreCase: true);
            var actual = pipe.Run(texts, s);
            for (int t = 0; t < texts.Count; t++) AssertEntities(texts[t], expected[t], actual[t]);
        }
    }

    internal static void AssertEntities(string text, JsonElement expected, IReadOnlyList<TokenEntity> actual)
    {
        Assert.Equal(expected.GetArrayLength(), actual.Count);
        for (int i = 0; i < actual.Count; i++)
        {
            var x = expected[i]; var a = actual[i];
            Assert.Equal(x.GetProperty("entity_group").GetString(), a.EntityGroup);
            Assert.Equal(x.GetProperty("word").GetString(), a.Word);
            Assert.Equal(Fixtures.Utf16Index(text, x.GetProperty("start").GetInt32()), a.Start);
            Assert.Equal(Fixtures.Utf16Index(text, x.GetProperty("end").GetInt32()), a.End);
            Assert.Equal(x.GetProperty("score").GetSingle(), a.Score, 1e-5);
        }
    }

    [Theory]
    [InlineData("bert-tiny-uncased-tokcls")]
    [InlineData("bert-tiny-cased-tokcls")]
    public void Tokenizer_ReproducesTheRustEncodings_ThePipelineRecordsWereMadeWith(string dir)
    {
        var (tok, _) = Load(dir, PipelineTask.TokenClassification);
        var tcp = Fixtures.Expected(dir).GetProperty("token_classification_pipeline");
        var texts = tcp.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        for (int t = 0; t < texts.Count; t++)
        {
            var enc = tcp.GetProperty("rust_tokenizer").GetProperty("encodings")[t];
            var pieces = Pieces(tok, texts[t]);
            var ids = enc.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(ids[1..^1], pieces.Ids);
            var offsets = enc.GetProperty("offsets").EnumerateArray().Skip(1).SkipLast(1)
                .Select(o => (Fixtures.Utf16Index(texts[t], o[0].GetInt32()), Fixtures.Utf16Index(texts[t], o[1].GetInt32()))).ToArray();
            Assert.Equal(offsets, pieces.Offsets.Select(o => (o.Start, o.End)));
        }
    }

    [Fact]
    public void TokenClassification_LongText_UsesOverlappingWindows_AndLosesNoTokenNearTheEnd()
    {
        const string dir = "bert-tiny-uncased-tokcls";
        var (tok, model) = Load(dir, PipelineTask.TokenClassification);
        var pipe = new TokenClassificationPipeline(tok, model, new PipelineOptions { BatchSize = 3 }, stride: 32);
        const string sentence = "Angela Merkel met Emmanuel Macron in Paris on Tuesday. ";
        var text = string.Concat(Enumerable.Repeat(sentence, 50)) + "Barack Obama was born in Honolulu, Hawaii.";
        var pieces = Pieces(tok, text);
        Assert.True(pieces.Length > 512, $"the test text has only {pieces.Length} pieces");

        var pre = pipe.PreEntities([text])[0];
        Assert.Equal(Enumerable.Range(1, pieces.Length), pre.Select(p => p.Index));   // every piece kept, HF indices
        Assert.All(pre, p => Assert.Equal(1f, p.Scores.Sum(), 1e-4));

        // Windows of 126 pieces advancing by 94; the tail pieces come from the last window: check them against a
        // direct forward of exactly that window.
        int window = 126, step = 126 - 32, lastStart = 0;
        while (lastStart + window < pieces.Length) lastStart += step;
        var ids = new[] { Cls(tok) }.Concat(pieces.Ids.Skip(lastStart)).Append(Sep(tok)).ToArray();
        var batch = new PaddingCollator().Collate([ids]);
        var logits = model.Forward(batch, new ForwardRequest()).Logits!;
        int c = model.Info.Id2Label.Count;
        int previousEnd = lastStart - step + window;   // the window before covers pieces up to here
        for (int i = previousEnd + 1; i < pieces.Length; i++)
        {
            var direct = Scores.Softmax(logits.AsSpan((i - lastStart + 1) * c, c));
            for (int k = 0; k < c; k++) Assert.Equal(direct[k], pre[i].Scores[k], 1e-6);
        }

        // The entities of the final sentence, past piece 512, are reported with offsets into the full text.
        var entities = pipe.Run([text], AggregationStrategy.Simple)[0];
        int tailStart = text.LastIndexOf("Barack", StringComparison.Ordinal);
        var tail = entities.Where(e => e.Start >= tailStart).ToList();
        Assert.NotEmpty(tail);
        Assert.All(tail, e => Assert.Equal(text[e.Start..e.End].ToLowerInvariant(), e.Word));
        Assert.Contains(pieces.Offsets.Select((o, i) => (s: o.Start, i)), p => p.s >= tailStart && p.i > 512);
    }

    // ------------------------------------------------------------------ fill-mask

    [Fact]
    public void FillMask_MatchesHf_WithTheRealModel()
    {
        var (tok, model) = Load("bert-tiny-uncased-mlm", PipelineTask.FillMask);
        var fm = Fixtures.Expected("bert-tiny-uncased-mlm").GetProperty("mlm").GetProperty("fill_mask_pipeline");
        var texts = fm.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        foreach (var batchSize in new[] { 1, 3 })
        {
            var results = new FillMaskPipeline(tok, model, new PipelineOptions { BatchSize = batchSize }).Run(texts, fm.GetProperty("top_k").GetInt32());
            for (int t = 0; t < texts.Count; t++)
            {
                var expected = fm.GetProperty("outputs")[t];
                if (expected[0].ValueKind == JsonValueKind.Array)
                    for (int m = 0; m < results[t].Count; m++) RecordedOutputTests.AssertCandidates(expected[m], results[t][m]);
                else RecordedOutputTests.AssertCandidates(expected, Assert.Single(results[t]));
            }
        }
    }

    // ------------------------------------------------------------------ feature extraction & attention

    [Fact]
    public void FeatureExtraction_PoolsTheBaseModelHiddenStates()
    {
        const string dir = "bert-tiny-uncased-seqcls";
        var c = Fixtures.Case(dir, "padded_batch");
        var texts = c.GetProperty("text").EnumerateArray().Select(t => t.GetString()!).ToList();
        var hidden = c.GetProperty("base_model_outputs").GetProperty("last_hidden_state");
        var pooled = c.GetProperty("base_model_outputs").GetProperty("pooler_output");
        var mask = c.GetProperty("encoding").GetProperty("attention_mask");
        var (tok, model) = Load(dir, PipelineTask.FeatureExtraction);
        var cls = new FeatureExtractionPipeline(tok, model, new PipelineOptions { BatchSize = 3 }, Pooling.Cls).Run(texts);
        var mean = new FeatureExtractionPipeline(tok, model, new PipelineOptions { BatchSize = 2 }, Pooling.MaskedMean, normalize: true).Run(texts);
        var pool = new FeatureExtractionPipeline(tok, model, null, Pooling.Pooled).Run(texts);
        for (int b = 0; b < texts.Count; b++)
        {
            var rows = Enumerable.Range(0, hidden[b].GetArrayLength()).Where(t => mask[b][t].GetInt32() == 1)
                .Select(t => hidden[b][t].EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToList();
            var m = Enumerable.Range(0, 64).Select(j => rows.Average(r => r[j])).ToArray();
            double norm = Math.Sqrt(m.Sum(x => x * x));
            for (int j = 0; j < 64; j++)
            {
                Assert.Equal(rows[0][j], cls[b][j], 1e-4);
                Assert.Equal(m[j] / norm, mean[b][j], 1e-4);
                Assert.Equal(pooled[b][j].GetDouble(), pool[b][j], 1e-4);
            }
        }
        // A checkpoint without a pooler says so instead of returning a random pooler's output.
        var (mt, mm) = Load("bert-tiny-uncased-tokcls", PipelineTask.FeatureExtraction);
        Assert.Throws<NotSupportedException>(() => new FeatureExtractionPipeline(mt, mm, null, Pooling.Pooled).Run(["hello"]));
    }

    [Fact]
    public void Attention_EqualsTheRecordedProbabilities()
    {
        const string dir = "bert-tiny-uncased-seqcls";
        var c = Fixtures.Case(dir, "accents");
        var (tok, model) = Load(dir, PipelineTask.TextClassification);
        var maps = new AttentionPipeline(tok, model).Run(c.GetProperty("text").GetString()!);
        Assert.Equal(c.GetProperty("encoding").GetProperty("tokens")[0].EnumerateArray().Select(t => t.GetString()), maps.Tokens);
        var att = c.GetProperty("base_model_outputs").GetProperty("attentions");
        for (int l = 0; l < maps.Layers; l++)
            for (int h = 0; h < maps.Heads; h++)
            {
                var m = maps.Head(l, h);
                for (int q = 0; q < maps.Length; q++)
                    for (int k = 0; k < maps.Length; k++) Assert.Equal(att[l][0][h][q][k].GetSingle(), m[q, k], 1e-5);
            }
        var avg = maps.Average(1);
        for (int q = 0; q < maps.Length; q++)
            Assert.Equal(Enumerable.Range(0, 4).Average(h => att[1][0][h][q][3].GetDouble()), avg[q, 3], 1e-5);
    }

    // ------------------------------------------------------------------ loading & bad input

    [Fact]
    public void Loading_RejectsTheWrongHead_AndBadInputsAreTypedErrors()
    {
        var e = Assert.Throws<PipelineLoadException>(() => PipelineLoader.Load(SharedData.Fixture("bert-tiny-uncased-tokcls"), PipelineTask.TextClassification));
        Assert.Contains("BertForTokenClassification", e.Message);
        var (tok, model) = Load("bert-tiny-uncased-tokcls", PipelineTask.TokenClassification);
        var p = new TokenClassificationPipeline(tok, model);
        Assert.Contains("empty", Assert.Throws<PipelineInputException>(() => p.Run([" \t "])).Message);
        Assert.Contains("limit", Assert.Throws<PipelineInputException>(() => p.Run([new string('a', 200_000)])).Message);
        Assert.Contains("surrogate", Assert.Throws<PipelineInputException>(() => p.Run(["bad \uD800 text"])).Message);
    }
}
