using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

/// <summary>
/// The BPE trainer against HF: the fixture's tokenizer was trained by HF BpeTrainer(vocab_size=2000,
/// special_tokens=[&lt;|endoftext|&gt;], initial_alphabet=ByteLevel.alphabet()) on the AG News train subset, one row
/// per line; training on the same lines must give the same files byte for byte.
/// </summary>
public class BpeTrainerTests
{
    const string Dir = "tokenizer-bytelevel-bpe";
    static readonly string[] Files = ["tokenizer.json", "vocab.json", "merges.txt"];

    static readonly Lazy<ByteLevelBpeTokenizer> Trained = new(() =>
    {
        // HF Tokenizer.train(files) reads lines with their line endings.
        var rows = AgNews.ReadTrainSubset(SharedData.DataFile("ag_news", "train_subset.csv"));
        return BpeTrainer.Train(rows.Examples.Select(e => e.Text + "\n"),
            new BpeTrainerOptions { VocabSize = 2000, SpecialTokens = ["<|endoftext|>"] });
    });

    static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "sharpformer-bpe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Fact]
    public void SavingTheFixtureTokenizerRewritesItsFilesByteForByte()
    {
        var dir = TempDir();
        try
        {
            ByteLevelBpeConformanceTests.Tokenizer.Save(dir);
            foreach (var f in Files)
                Assert.True(File.ReadAllBytes(SharedData.Fixture(Dir, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, f))), $"{f} differs");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TrainingOnTheAgNewsSubsetReproducesHfMergesAndFiles()
    {
        var trained = Trained.Value;
        var expectedMerges = File.ReadLines(SharedData.Fixture(Dir, "merges.txt")).Skip(1).ToList();
        var merges = trained.Merges.Select(m => trained.IdToToken(m.Left) + " " + trained.IdToToken(m.Right)).ToList();
        int firstDiff = Enumerable.Range(0, Math.Min(merges.Count, expectedMerges.Count)).FirstOrDefault(i => merges[i] != expectedMerges[i], -1);
        Assert.True(firstDiff < 0, $"merge {firstDiff + 1}: '{(firstDiff < 0 ? "" : merges[firstDiff])}' != '{(firstDiff < 0 ? "" : expectedMerges[firstDiff])}'");
        Assert.Equal(1743, merges.Count);
        Assert.Equal(2000, trained.VocabSize);
        var dir = TempDir();
        try
        {
            trained.Save(dir);
            foreach (var f in Files)
                Assert.True(File.ReadAllBytes(SharedData.Fixture(Dir, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, f))), $"{f} differs");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ATrainedTokenizerSavedAndReloadedEncodesLikeTheOriginalAndRoundTrips()
    {
        var texts = new[] { "Hello world, it's 2024!", "  spaces\tand\nnewlines  ", "Café 😀 東京 <|endoftext|> done", "" };
        var trained = BpeTrainer.Train(texts.Concat(["the quick brown fox jumps over the lazy dog"]),
            new BpeTrainerOptions { VocabSize = 300, SpecialTokens = ["<|endoftext|>", "<pad>"] });
        var dir = TempDir();
        try
        {
            trained.Save(dir);
            foreach (var reloaded in new[] { ByteLevelBpeTokenizer.FromDirectory(dir),
                         ByteLevelBpeTokenizer.FromFiles(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"),
                             new ByteLevelBpeTokenizer.Options { AdditionalSpecialTokens = ["<|endoftext|>", "<pad>"] }) })
                foreach (var t in texts)
                {
                    var a = trained.Encode(t);
                    var b = reloaded.Encode(t);
                    Assert.Equal(a.Ids, b.Ids);
                    Assert.Equal(a.Offsets, b.Offsets);
                    Assert.Equal(t, reloaded.Decode(b.Ids, skipSpecialTokens: false));
                }
            Assert.Equal(0, trained.TokenToId("<|endoftext|>"));
            Assert.Equal(1, trained.TokenToId("<pad>"));
            Assert.Equal(2 + 256, trained.Merges.Count == 0 ? 0 : trained.Merges.Min(m => trained.TokenToId(trained.IdToToken(m.Left) + trained.IdToToken(m.Right))!.Value));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MinFrequencyStopsMergingRarePairs()
    {
        // Words "ab" ×1, "Ġab" ×2, "Ġcd" ×1: a+b (3) then Ġ+ab (2) reach min_frequency 2; Ġ+c and c+d (1) do not.
        var trained = BpeTrainer.Train(["ab ab ab cd"], new BpeTrainerOptions { VocabSize = 1000, MinFrequency = 2, FullByteAlphabet = false });
        var merges = trained.Merges.Select(m => trained.IdToToken(m.Left) + " " + trained.IdToToken(m.Right)).ToList();
        Assert.Equal(["a b", "Ġ ab"], merges);
    }

    [Fact]
    public void TrainingFromFilesReadsLinesWithTheirEndingsAsHfDoes()
    {
        var dir = TempDir();
        try
        {
            var path = Path.Combine(dir, "corpus.txt");
            File.WriteAllText(path, "low lower lowest\r\nnewer wider  \nlow low\n\nend");
            var options = new BpeTrainerOptions { VocabSize = 400 };
            var fromFile = BpeTrainer.TrainFromFiles([path], options);
            var fromLines = BpeTrainer.Train(["low lower lowest\r\n", "newer wider  \n", "low low\n", "\n", "end"], options);
            Assert.Equal(fromLines.Merges, fromFile.Merges);
            Assert.Contains(fromFile.Merges, m => fromFile.IdToToken(m.Left) == "č" && fromFile.IdToToken(m.Right) == "Ċ"); // \r\n is one piece
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void BytesMissingFromATrainedAlphabetAreDroppedWithoutShiftingLaterOffsets()
    {
        var tok = BpeTrainer.Train(["ab ab"], new BpeTrainerOptions { VocabSize = 100, FullByteAlphabet = false });
        var e = tok.Encode("ab é ab");
        Assert.Equal(["ab", "Ġ", "Ġab"], e.Tokens);
        Assert.Equal([new TokenOffset(0, 2), new(2, 4), new(4, 7)], e.Offsets);
    }

    [HfTokenizersFact]
    public void HfTokenizersLoadsWhatTheTrainerWroteAndEncodesIdentically()
    {
        var trained = Trained.Value;
        var dir = TempDir();
        try
        {
            trained.Save(dir);
            var texts = ByteLevelBpeConformanceTests.Records().Select(r => r.GetProperty("text").GetString()!)
                .Where(t => t.Length > 0 && !t.Contains('\n') && !t.Contains('\r')).Take(80).ToArray();
            string input = Path.Combine(dir, "texts.txt"), output = Path.Combine(dir, "hf.jsonl");
            File.WriteAllText(input, string.Join("\n", texts) + "\n");
            HfTokenizersNode.Run(HfTokenizersNode.EncodeScript, Path.Combine(dir, "tokenizer.json"), input, output);
            var hf = File.ReadLines(output).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
            Assert.Equal(texts.Length, hf.Length);
            for (int i = 0; i < texts.Length; i++) Assert.Equal(hf[i], trained.Encode(texts[i]).Ids);
        }
        finally { Directory.Delete(dir, true); }
    }
}
