using System.Net;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Serving;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Serving;

/// <summary><c>POST /v1/g2p</c> over a (small, untrained) G2P model: the workflow's beam answers, its limits and errors.</summary>
public sealed class G2PServerTests
{
    static readonly G2PEntry[] Entries = [new("cab", ["K", "AE", "B"]), new("bad", ["B", "AE", "D"]), new("dab", ["D", "AE", "B"])];

    static (BahdanauSeq2Seq Model, G2PVocabulary Vocab) Untrained()
    {
        var vocab = G2PVocabulary.Build(Entries);
        var model = new BahdanauSeq2Seq(new Seq2SeqConfig(vocab.Count, 4, 5, 6, 7), seed: 3);
        model.Eval();
        return (model, vocab);
    }

    [Fact]
    public async Task G2P_AnswersTheWorkflowsBeamPronunciations_NBest_AndAlignment()
    {
        var (model, vocab) = Untrained();
        var (server, client) = await ServerTests.Start(new G2PBackend(model, vocab, "g2p-test"));
        await using var _ = server;
        var (status, body) = await ServerTests.Post(client, "/v1/g2p", """{"inputs": ["cab", "Dab"], "n_best": 2, "alignment": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("g2p-test", body.GetProperty("model").GetString());
        var expected = G2PTraining.Predict(model, vocab, ["cab", "Dab"], G2PTraining.BeamWidth, G2PTraining.BeamAlpha, nBest: 2);
        var results = body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(2, results.Length);
        for (int i = 0; i < 2; i++)
        {
            var r = results[i];
            Assert.Equal(expected[i].Word, r.GetProperty("word").GetString());
            Assert.Equal(string.Join(' ', expected[i].Best.Phonemes), r.GetProperty("phonemes").GetString());
            var nBest = r.GetProperty("n_best").EnumerateArray().ToArray();
            Assert.Equal(2, nBest.Length);
            for (int h = 0; h < 2; h++) Assert.Equal(expected[i].NBest[h].Score, nBest[h].GetProperty("score").GetDouble(), 6);
            var a = expected[i].Alignment();
            var al = r.GetProperty("alignment");
            Assert.Equal(a.Letters, al.GetProperty("letters").EnumerateArray().Select(x => x.GetString()));
            Assert.Equal(a.Outputs, al.GetProperty("outputs").EnumerateArray().Select(x => x.GetString()));
            var w = al.GetProperty("weights").EnumerateArray().Select(row => row.EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray();
            for (int t = 0; t < a.Outputs.Length; t++)
                for (int j = 0; j < a.Letters.Length; j++) Assert.Equal(a.Weights[t, j], w[t][j], 5);
        }
        // Without "alignment" there is none, and one pronunciation by default.
        (status, body) = await ServerTests.Post(client, "/v1/g2p", """{"inputs": "cab"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var only = body.GetProperty("results")[0];
        Assert.Equal(JsonValueKind.Null, only.GetProperty("alignment").ValueKind);
        Assert.Equal(1, only.GetProperty("n_best").GetArrayLength());
    }

    [Fact]
    public async Task BadWordsAndOptions_Get400_OtherTasksRoutes404_AndTooManyLetters413()
    {
        var (model, vocab) = Untrained();
        var (server, client) = await ServerTests.Start(new G2PBackend(model, vocab, "g2p-test"), new ServerOptions { MaxQueuedTokens = 6 });
        await using var _ = server;
        async Task Expect(HttpStatusCode code, string path, string json, string type, string part)
        {
            var (status, body) = await ServerTests.Post(client, path, json);
            Assert.Equal(code, status);
            Assert.Equal(type, body.GetProperty("error").GetProperty("type").GetString());
            Assert.Contains(part, body.GetProperty("error").GetProperty("message").GetString());
        }
        await Expect(HttpStatusCode.BadRequest, "/v1/g2p", """{"inputs": "cab dab"}""", "invalid_request_error", "not one word");
        await Expect(HttpStatusCode.BadRequest, "/v1/g2p", """{"inputs": ["cab", "zap"]}""", "invalid_request_error", "'z'");
        await Expect(HttpStatusCode.BadRequest, "/v1/g2p", """{"inputs": "cab", "n_best": 9}""", "invalid_request_error", "n_best");
        await Expect(HttpStatusCode.BadRequest, "/v1/g2p", """{"inputs": "cab", "alignment": "yes"}""", "invalid_request_error", "alignment");
        await Expect(HttpStatusCode.BadRequest, "/v1/attention", """{"text": "cab"}""", "invalid_request_error", "/v1/g2p");
        await Expect(HttpStatusCode.NotFound, "/v1/classify", """{"inputs": "cab"}""", "not_found", "POST /v1/g2p");
        // "abcdab" costs 6 letters + BOS + EOS = 8 tokens, more than the whole budget of 6.
        await Expect(HttpStatusCode.RequestEntityTooLarge, "/v1/g2p", """{"inputs": "abcdab"}""", "request_too_large", "tokens");
        var health = JsonDocument.Parse(await client.GetStringAsync("/health")).RootElement;
        Assert.Equal("g2p", health.GetProperty("task").GetString());
    }

    /// <summary>The G2P backend behind a gate, so a test can hold the model while requests queue up.</summary>
    sealed class Held(IPipeline inner) : IPipeline
    {
        public ManualResetEventSlim Gate { get; } = new(initialState: false);
        public ServingTask Task => inner.Task;
        public string ModelName => inner.ModelName;
        public IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken ct) { Gate.Wait(ct); return inner.RunBatch(items, ct); }
        public int Validate(ServingItem item, int index) => inner.Validate(item, index);
        public int CountTokens(string text) => inner.CountTokens(text);
        public AttentionMaps Attention(string text, CancellationToken ct) => inner.Attention(text, ct);
    }

    [Fact]
    public async Task AFullQueue_Answers429_AndTheQueuedWordsStillGetTheirPronunciations()
    {
        var (model, vocab) = Untrained();
        var held = new Held(new G2PBackend(model, vocab, "g2p-test"));
        var (server, client) = await ServerTests.Start(held, new ServerOptions { MaxBatchSize = 1, MaxWaitMs = 0, QueueCapacity = 2 });
        await using var _ = server;
        (HttpStatusCode Status, JsonElement Body)[] answers;
        try
        {
            // Six at once: one word runs (held at the gate), at most two wait, so at least three are turned away while it is held
            // (four when all six arrive before the model takes the first).
            var posts = Enumerable.Range(0, 6).Select(_ => ServerTests.Post(client, "/v1/g2p", """{"inputs": "cab"}""")).ToList();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (posts.Count(p => p.IsCompleted) < 3 && DateTime.UtcNow < deadline) await Task.Delay(20);
            await Task.Delay(200);
            Assert.InRange(posts.Count(p => p.IsCompleted), 3, 4);
            foreach (var done in posts.Where(p => p.IsCompleted))
            {
                var r = await done;
                Assert.Equal(HttpStatusCode.TooManyRequests, r.Status);
                Assert.Equal("rate_limit_exceeded", r.Body.GetProperty("error").GetProperty("type").GetString());
            }
            held.Gate.Set();
            answers = await Task.WhenAll(posts);
        }
        finally { held.Gate.Set(); }
        var expected = string.Join(' ', G2PTraining.Predict(model, vocab, ["cab"])[0].Best.Phonemes);
        // Those admitted were answered.
        Assert.InRange(answers.Count(r => r.Status == HttpStatusCode.OK), 2, 3);
        foreach (var r in answers.Where(r => r.Status == HttpStatusCode.OK))
            Assert.Equal(expected, r.Body.GetProperty("results")[0].GetProperty("phonemes").GetString());
    }

    [Sharpformer.Tests.Visualization.BrowserFact]
    public async Task DemoPage_InChromium_ShowsThePronunciation_AndDrawsTheAlignment()
    {
        var (model, vocab) = Untrained();
        var (server, client) = await ServerTests.Start(new G2PBackend(model, vocab, "g2p-test"));
        await using var _ = server;
        Assert.Contains("Sharpformer — g2p", await client.GetStringAsync("/"));
        var dom = Sharpformer.Tests.Visualization.Chromium.DumpDom(client.BaseAddress + "?demo=cab", 10_000);
        Assert.Contains("data-done=\"1\"", dom);
        var p = G2PTraining.Predict(model, vocab, ["cab"], nBest: 5)[0];
        Assert.Contains($"<b>cab</b> → <b>{string.Join(' ', p.Best.Phonemes)}</b>", dom);
        // One cell per output step and letter; the layer/head switcher stays hidden for the single map.
        Assert.Equal(p.Alignment().Outputs.Length * 3, System.Text.RegularExpressions.Regex.Matches(dom, "<rect ").Count);
        Assert.Contains("id=\"attn-controls\" hidden", dom);
    }
}
