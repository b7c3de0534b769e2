using System.Text.Json;
using Sharpformer.Cli;
using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;
using Sharpformer.Tests.Data;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Cli;

/// <summary>
/// <c>sharpformer g2p</c> on a (small, untrained) model directory saved as <c>train seq2seq</c> saves it: JSON lines equal
/// the workflow's beam predictions, and <c>--evaluate</c> prints the scorer's WER/PER of those predictions.
/// </summary>
public sealed class G2PCliTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-g2pcli-").FullName;
    readonly G2PEntry[] _entries = [new("cab", ["K", "AE", "B"]), new("bad", ["B", "AE", "D"]), new("dab", ["D", "AE", "B"])];

    public G2PCliTests()
    {
        var vocab = G2PVocabulary.Build(_entries);
        var model = new BahdanauSeq2Seq(new Seq2SeqConfig(vocab.Count, 4, 5, 6, 7), seed: 3);
        G2PTraining.Save(model, vocab, _dir);
        File.WriteAllText(Path.Combine(_dir, "dev.tsv"), string.Join("\n", _entries.Select(e => e.Word + "\t" + string.Join(' ', e.Phonemes))) + "\n");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static (int Code, string Out, string Err) Cli(params string[] args) => CliRun.Invoke(args);

    [Fact]
    public void JsonLinesGiveTheWorkflowsBeamPronunciationsPerWord()
    {
        var (code, output, err) = Cli("g2p", "--model", _dir, "--json", "--beam", "3", "--n-best", "2", "cab", "dab");
        Assert.True(code == 0, err);
        var (model, vocab) = G2PTraining.Load(_dir);
        var expected = G2PTraining.Predict(model, vocab, ["cab", "dab"], beamWidth: 3, nBest: 2);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        for (int i = 0; i < 2; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            var root = doc.RootElement;
            Assert.Equal(expected[i].Word, root.GetProperty("word").GetString());
            Assert.Equal(string.Join(' ', expected[i].Best.Phonemes), root.GetProperty("phonemes").GetString());
            var nBest = root.GetProperty("n_best").EnumerateArray().ToArray();
            Assert.Equal(2, nBest.Length);
            Assert.Equal(expected[i].NBest[1].Score, nBest[1].GetProperty("score").GetDouble(), 12);
        }
    }

    [Fact]
    public void EvaluatePrintsTheScorersWerAndPerOfTheSplit()
    {
        var (code, output, err) = Cli("g2p", "--model", _dir, "--evaluate", "--split", "dev", "--data", _dir, "--json", "--beam", "2");
        Assert.True(code == 0, err);
        var (model, vocab) = G2PTraining.Load(_dir);
        var words = CmuDict.ByWord(_entries);
        var predictions = G2PTraining.Predict(model, vocab, words.Select(w => w.Word).ToList(), beamWidth: 2);
        var score = G2PScoring.Score(predictions.Select(p => p.Best.Phonemes).ToList(), words.Select(w => w.References).ToList());
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(3, doc.RootElement.GetProperty("words").GetInt32());
        Assert.Equal(score.Wer, doc.RootElement.GetProperty("wer").GetDouble(), 12);
        Assert.Equal(score.Per, doc.RootElement.GetProperty("per").GetDouble(), 12);
    }

    [Fact]
    public void JsonLinesOnStdin_AreAnsweredOneJsonObjectPerLine_InOrder()
    {
        var stdout = new StringWriter(); var stderr = new StringWriter();
        int code = CliHost.Invoke(["g2p", "--model", _dir, "--beam", "2"], new StringReader("{\"word\": \"dab\"}\n\n{\"word\": \"cab\"}\n"), stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        var (model, vocab) = G2PTraining.Load(_dir);
        var expected = G2PTraining.Predict(model, vocab, ["dab", "cab"], beamWidth: 2);
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        for (int i = 0; i < 2; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            Assert.Equal(expected[i].Word, doc.RootElement.GetProperty("word").GetString());
            Assert.Equal(string.Join(' ', expected[i].Best.Phonemes), doc.RootElement.GetProperty("phonemes").GetString());
        }
        stderr = new StringWriter();
        Assert.NotEqual(0, CliHost.Invoke(["g2p", "--model", _dir], new StringReader("{\"word\": \"cab\"}\n{\"text\": 1}\n"), new StringWriter(), stderr));
        Assert.Contains("stdin line 2", stderr.ToString());
    }

    [Fact]
    public void TheEvaluateVerb_ScoresAG2PModelLikeG2PEvaluate()
    {
        var (code, output, err) = Cli("evaluate", "--model", _dir, "--data", _dir, "--split", "dev", "--json", "--beam", "2");
        Assert.True(code == 0, err);
        var (code2, output2, err2) = Cli("g2p", "--model", _dir, "--evaluate", "--split", "dev", "--data", _dir, "--json", "--beam", "2");
        Assert.True(code2 == 0, err2);
        Assert.Equal(output2, output);
        // A split file instead of a folder.
        var (code3, output3, err3) = Cli("evaluate", "--model", _dir, "--data", Path.Combine(_dir, "dev.tsv"), "--json", "--beam", "2");
        Assert.True(code3 == 0, err3);
        Assert.Equal(output2, output3);
    }

    [Fact]
    public void TheAttentionVerb_DrawsTheWordsAlignment_LettersByOutputSteps()
    {
        var svgPath = Path.Combine(_dir, "cab.svg");
        var (code, output, err) = Cli("attention", "--model", _dir, "cab", "--out", svgPath);
        Assert.True(code == 0, err);
        Assert.Contains("3 letters", output);
        var (model, vocab) = G2PTraining.Load(_dir);
        var a = G2PTraining.Predict(model, vocab, ["cab"])[0].Alignment();
        var svg = System.Xml.Linq.XDocument.Parse(File.ReadAllText(svgPath));
        System.Xml.Linq.XNamespace ns = "http://www.w3.org/2000/svg";
        var cells = svg.Descendants(ns + "rect").Where(r => r.Element(ns + "title") != null).ToList();
        Assert.Equal(a.Outputs.Length * 3, cells.Count);
        for (int t = 0; t < a.Outputs.Length; t++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(Sharpformer.Visualization.AttentionSvg.Color(a.Weights[t, j]), cells[t * 3 + j].Attribute("fill")!.Value);
        var htmlPath = Path.Combine(_dir, "cab.html");
        (code, _, err) = Cli("attention", "--model", _dir, "cab", "--out", htmlPath);
        Assert.True(code == 0, err);
        Assert.Contains("\"cols\":[\"c\",\"a\",\"b\"]", File.ReadAllText(htmlPath));
        (code, _, err) = Cli("attention", "--model", _dir, "cab", "--layer", "0", "--out", svgPath);
        Assert.NotEqual(0, code);
        Assert.Contains("--layer", err);
    }

    [Fact]
    public void AnNBestLargerThanTheBeamIsRejected()
    {
        var (code, _, err) = Cli("g2p", "--model", _dir, "--beam", "2", "--n-best", "3", "cab");
        Assert.NotEqual(0, code);
        Assert.Contains("--n-best", err);
    }

    [Fact]
    public void ATransformerModelDirectoryPronouncesThroughTheSameVerb()
    {
        using var dir = new TempDir();
        var vocab = G2PVocabulary.Build(_entries);
        var model = new TransformerG2P(DModel: 16, Heads: 2, EncoderLayers: 1, DecoderLayers: 1, FeedForward: 32).Create(vocab, seed: 4);
        G2PTraining.Save(model, vocab, dir.Path);
        var (code, output, err) = Cli("g2p", "--model", dir.Path, "--json", "--beam", "3", "--n-best", "2", "cab");
        Assert.True(code == 0, err);
        var (loaded, _) = G2PTraining.Load(dir.Path);
        Assert.IsType<TransformerSeq2Seq>(loaded);
        var expected = G2PTraining.Predict(loaded, vocab, ["cab"], beamWidth: 3, nBest: 2)[0];
        Assert.NotNull(expected.Attention);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(string.Join(' ', expected.Best.Phonemes), doc.RootElement.GetProperty("phonemes").GetString());
        Assert.Equal(expected.NBest[1].Score, doc.RootElement.GetProperty("n_best")[1].GetProperty("score").GetDouble(), 12);
    }

    [Fact]
    public void TrainSeq2SeqTransformerWritesAModelWhoseTestScoreItPrints()
    {
        using var data = new TempDir();
        foreach (var split in new[] { "train.tsv", "dev.tsv", "test.tsv" })
            data.Write(split, string.Join("\n", _entries.Select(e => e.Word + "\t" + string.Join(' ', e.Phonemes))) + "\n");
        var output = Path.Combine(data.Path, "model");
        var (code, stdout, err) = Cli("train", "seq2seq", "--architecture", "transformer", "--data", data.Path, "--output", output, "--epochs", "2",
            "--batch-size", "2", "--d-model", "16", "--heads", "2", "--layers", "1", "--feed-forward", "32", "--eval-steps", "2", "--json", "--no-progress");
        Assert.True(code == 0, err);
        Assert.Contains("\"transformer-seq2seq\"", File.ReadAllText(Path.Combine(output, "config.json")));
        var (model, vocab) = G2PTraining.Load(output);
        var score = G2PTraining.Evaluate(model, vocab, CmuDict.ByWord(_entries));
        using var doc = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.Equal(score.Wer, doc.RootElement.GetProperty("wer").GetDouble(), 12);
        Assert.Equal(score.Per, doc.RootElement.GetProperty("per").GetDouble(), 12);
    }
}
