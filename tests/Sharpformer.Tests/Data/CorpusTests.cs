using System.IO.Compression;
using System.Text;
using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

public class CorpusTests
{
    static void WriteGz(string path, byte[] bytes)
    {
        using var f = File.Create(path);
        using var gz = new GZipStream(f, CompressionLevel.Fastest);
        gz.Write(bytes);
    }

    [Fact]
    public void Txt_and_gz_files_give_the_same_lines_with_BOM_and_CRLF_removed()
    {
        using var dir = new TempDir();
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("first line\r\nsecond\n\nlast without newline")).ToArray();
        File.WriteAllBytes(Path.Combine(dir.Path, "a.txt"), bytes);
        WriteGz(Path.Combine(dir.Path, "b.txt.gz"), bytes);
        var txt = Corpus.ReadLines(Path.Combine(dir.Path, "a.txt")).ToList();
        var gz = Corpus.ReadLines(Path.Combine(dir.Path, "b.txt.gz")).ToList();
        Assert.Equal([("first line", 1), ("second", 2), ("", 3), ("last without newline", 4)], txt);
        Assert.Equal(txt, gz);
        Assert.Equal([Path.Combine(dir.Path, "a.txt"), Path.Combine(dir.Path, "b.txt.gz")], Corpus.FindFiles([dir.Path]));
    }

    [Fact]
    public void Invalid_UTF8_names_the_file_and_line_or_is_skipped_and_counted()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "bad.txt");
        File.WriteAllBytes(path, [.. Encoding.UTF8.GetBytes("ok\nfine\nbro"), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("ken\nafter\n")]);
        var e = Assert.Throws<DataFormatException>(() => Corpus.Read([dir.Path]).ToList());
        Assert.Equal(path, e.File);
        Assert.Equal(3, e.Line);
        Assert.Contains("0xC3 at byte 4", e.Message);
        var stats = new CorpusStatistics();
        var lines = Corpus.Read([dir.Path], options: new CorpusOptions { SkipInvalidLines = true }, statistics: stats).ToList();
        Assert.Equal(["ok", "fine", "after"], lines.Select(l => l.Text));
        Assert.Equal([1, 2, 4], lines.Select(l => l.Line));
        Assert.Equal(1, stats.InvalidLines);
        Assert.Equal(4, stats.LinesRead);
    }

    [Fact]
    public void Whitespace_is_collapsed_and_canonically_equivalent_repeats_are_dropped()
    {
        Assert.Equal("cafe\u0301 au lait", Corpus.NormalizeLine("  cafe\u0301 \t au\u00a0\u2003lait \r"));
        Assert.Equal(Corpus.Hash("caf\u00e9 \uD55C"), Corpus.Hash("cafe\u0301 \u1112\u1161\u11AB"));
        var stats = new CorpusStatistics();
        CorpusLine L(string t, int n) => new(t, "mem", n, false);
        var lines = Corpus.Clean([[L("caf\u00e9 au lait", 1), L("cafe\u0301  au lait", 2), L("   ", 3), L("Caf\u00e9 au lait", 4)]], statistics: stats).ToList();
        Assert.Equal(["caf\u00e9 au lait", "Caf\u00e9 au lait"], lines.Select(l => l.Text));
        Assert.Equal((1L, 1L, 2L), (stats.Duplicates, stats.EmptyLines, stats.TrainLines));
        Assert.Equal(3, Corpus.Clean([[L("x", 1), L("x", 2), L("x", 3)]], new CorpusOptions { Deduplicate = false }).Count());
    }

    [Fact]
    public void Every_hundredth_kept_line_is_held_out_counting_after_deduplication()
    {
        var source = Enumerable.Range(1, 1000).Select(i => new CorpusLine(i % 10 == 0 ? "dup" : $"line {i}", "mem", i, false)).ToList();
        var stats = new CorpusStatistics();
        var lines = Corpus.Clean([source], statistics: stats).ToList();
        // 900 distinct "line i" plus one "dup" are kept: 901 lines, of which the 100th, 200th, …, 900th are held out.
        Assert.Equal(901, lines.Count);
        var heldOut = lines.Select((l, k) => (l, k)).Where(x => x.l.HeldOut).Select(x => x.k + 1).ToList();
        Assert.Equal(Enumerable.Range(1, 9).Select(i => i * 100), heldOut);
        Assert.Equal((892L, 9L, 99L), (stats.TrainLines, stats.HeldOutLines, stats.Duplicates));
        Assert.Equal(lines, Corpus.Clean([source]).ToList());
    }

    [Fact]
    public void Task_train_files_become_corpus_lines_and_test_splits_are_refused()
    {
        using var dir = new TempDir();
        var emotion = dir.Write("train.txt", "i feel great;joy\ni am sad;sadness\n");
        var conll = dir.Write("conll_train.txt", "EU B-ORG\nrejects O\n\nPeter B-PER\n");
        Assert.Equal(["i feel great", "i am sad"], Corpus.ReadTaskTrain(TaskText.Emotion, emotion).Select(l => l.Text));
        Assert.Equal(["EU rejects", "Peter"], Corpus.ReadTaskTrain(TaskText.Conll, conll).Select(l => l.Text));
        var test = dir.Write("test.txt", "x;joy\n");
        Assert.Contains("test split", Assert.Throws<ArgumentException>(() => Corpus.ReadTaskTrain(TaskText.Emotion, test)).Message);
    }

    [Fact]
    public void The_shared_Brown_file_has_the_line_count_its_SOURCE_md_states()
    {
        var path = SharedData.DataFile("pretrain", "brown.txt.gz");
        var stats = new CorpusStatistics();
        var lines = Corpus.Read([path], statistics: stats).ToList();
        Assert.Equal(15_422, stats.LinesRead);
        Assert.Equal(stats.TrainLines + stats.HeldOutLines, lines.Count);
        Assert.Equal(lines.Count / 100, stats.HeldOutLines);
    }

    [Fact]
    public void The_shared_task_train_splits_give_as_many_texts_as_their_SOURCE_md_states_and_their_test_splits_are_refused()
    {
        var data = SharedData.Data;
        Assert.Equal(14_551, Corpus.ReadTaskTrain(TaskText.AgNews, Corpus.TaskTrainFile(TaskText.AgNews, data)).Count());
        Assert.Equal(14_041, Corpus.ReadTaskTrain(TaskText.Conll, Corpus.TaskTrainFile(TaskText.Conll, data)).Count());
        Assert.Equal(16_000, Corpus.ReadTaskTrain(TaskText.Emotion, Corpus.TaskTrainFile(TaskText.Emotion, data)).Count());
        Assert.Throws<ArgumentException>(() => Corpus.ReadTaskTrain(TaskText.AgNews, Path.Combine(data, "ag_news", "test.csv")));
        Assert.Throws<ArgumentException>(() => Corpus.ReadTaskTrain(TaskText.Conll, Path.Combine(data, "conll2003", "original_iob1", "eng.testb")));
    }
}
