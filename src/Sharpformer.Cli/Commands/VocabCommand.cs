using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Tokenization;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer vocab</c> (alias <c>train-tokenizer</c>): learn a WordPiece vocabulary from corpus folders and task
/// train files (HF <c>BertWordPieceTokenizer.train</c>) and write vocab.txt + tokenizer.json to a directory.
/// </summary>
public static class VocabCommand
{
    /// <summary>Parsed settings of the verb.</summary>
    public sealed record Settings(IReadOnlyList<string> Corpus, IReadOnlyList<string> Tasks, string? Data, string Output, int VocabSize,
        long MinFrequency, int? LimitAlphabet, bool Cased, bool IncludeHeldOut, bool SkipInvalid, bool KeepDuplicates = false);

    internal static Command Create()
    {
        var corpus = new Option<string[]>("--corpus") { Description = "Folders of .txt/.txt.gz files (one text per line) or single files.", AllowMultipleArgumentsPerToken = true };
        var task = new Option<string[]>("--task") { Description = "Also read a task's train split: ag_news | conll | emotion (from --data).", AllowMultipleArgumentsPerToken = true };
        task.AcceptOnlyFromAmong("ag_news", "conll", "emotion");
        var data = TrainCommand.DataOption();
        var output = new Option<string>("--output") { Description = "Directory to write vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json.", Required = true };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size including special tokens and alphabet.", DefaultValueFactory = _ => 30000 };
        var minFrequency = new Option<long>("--min-frequency") { Description = "Merge only pairs seen at least this often.", DefaultValueFactory = _ => 2 };
        var limitAlphabet = new Option<int?>("--limit-alphabet") { Description = "Keep at most this many characters (most frequent); default 1000.", DefaultValueFactory = _ => 1000 };
        var cased = new Option<bool>("--cased") { Description = "Keep case and accents (default: lower-case and strip accents, as uncased BERT)." };
        var heldOut = new Option<bool>("--include-held-out") { Description = "Also count the held-out lines (every 100th), which are otherwise left for evaluation." };
        var skipInvalid = new Option<bool>("--skip-invalid") { Description = "Skip lines with invalid UTF-8 (counted) instead of stopping with file:line." };
        var keepDuplicates = new Option<bool>("--keep-duplicates") { Description = "Count repeated lines every time (default: each distinct line once)." };
        var cmd = new Command("vocab", "Train a WordPiece vocabulary (HF BertWordPieceTokenizer.train) from raw text.");
        cmd.Aliases.Add("train-tokenizer");
        foreach (var o in new Option[] { corpus, task, data, output, vocabSize, minFrequency, limitAlphabet, cased, heldOut, skipInvalid, keepDuplicates }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliErrors.Run(() => Execute(new Settings(parse.GetValue(corpus) ?? [], parse.GetValue(task) ?? [], parse.GetValue(data),
            parse.GetValue(output)!, parse.GetValue(vocabSize), parse.GetValue(minFrequency), parse.GetValue(limitAlphabet), parse.GetValue(cased),
            parse.GetValue(heldOut), parse.GetValue(skipInvalid), parse.GetValue(keepDuplicates)), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error),
            parse.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>Runs the verb: progress on <paramref name="stderr"/>, one JSON summary line on <paramref name="stdout"/>.</summary>
    public static int Execute(Settings s, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        if (s.Corpus.Count == 0 && s.Tasks.Count == 0) throw new ArgumentException("give at least one --corpus DIR or --task NAME.");
        var tasks = s.Tasks.Select(t => t switch
        {
            "ag_news" => TaskText.AgNews,
            "conll" => TaskText.Conll,
            "emotion" => TaskText.Emotion,
            _ => throw new ArgumentException($"unknown task '{t}' (ag_news | conll | emotion)."),
        }).ToList();
        var taskFiles = tasks.Count == 0 ? [] : tasks.Select(t => (t, Corpus.TaskTrainFile(t, DataFolder.Resolve(s.Data)))).ToList();
        var options = new WordPieceTrainerOptions { VocabSize = s.VocabSize, MinFrequency = s.MinFrequency, LimitAlphabet = s.LimitAlphabet,
            Tokenizer = new BertTokenizerOptions { LowerCase = !s.Cased, ModelMaxLength = 512 } };
        var trainer = new WordPieceTrainer(options);
        var stats = new CorpusStatistics();
        var clock = Stopwatch.StartNew();
        var progress = new StderrProgress(stderr, clock);
        var lines = Corpus.Read(s.Corpus, taskFiles, new CorpusOptions { SkipInvalidLines = s.SkipInvalid, Deduplicate = !s.KeepDuplicates }, stats)
            .Where(l => s.IncludeHeldOut || !l.HeldOut).Select(l => l.Text);
        trainer.AddTexts(lines, progress, cancellationToken);
        double countSeconds = clock.Elapsed.TotalSeconds;
        var vocab = trainer.Train(progress, cancellationToken);
        vocab.Save(s.Output);
        double seconds = clock.Elapsed.TotalSeconds;
        progress.Finish();
        var summary = new Dictionary<string, object?>
        {
            ["output"] = s.Output,
            ["vocab_size"] = vocab.Tokens.Count,
            ["merges"] = vocab.Merges,
            ["words"] = vocab.Words,
            ["unique_words"] = vocab.UniqueWords,
            ["lines_read"] = stats.LinesRead,
            ["train_lines"] = stats.TrainLines,
            ["held_out_lines"] = stats.HeldOutLines,
            ["duplicate_lines"] = stats.Duplicates,
            ["invalid_lines"] = stats.InvalidLines,
            ["count_seconds"] = Math.Round(countSeconds, 2),
            ["seconds"] = Math.Round(seconds, 2),
            ["words_per_second"] = Math.Round(vocab.Words / Math.Max(seconds, 1e-9)),
        };
        stdout.WriteLine(JsonSerializer.Serialize(summary));
        return 0;
    }

    /// <summary>One status line on stderr, redrawn in place (at most 5 times a second) when stderr is a terminal, else a line every 10 s.</summary>
    sealed class StderrProgress(TextWriter stderr, Stopwatch clock) : IProgress<WordPieceTrainingProgress>
    {
        readonly bool _inPlace = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        long _last = -100_000;
        int _width;

        public void Report(WordPieceTrainingProgress p)
        {
            long now = clock.ElapsedMilliseconds;
            if (now - _last < (_inPlace ? 200 : 10_000)) return;
            _last = now;
            double t = clock.Elapsed.TotalSeconds;
            string line = p.Phase == "count"
                ? string.Create(CultureInfo.InvariantCulture, $"counting words: {p.Done:N0} ({p.Done / Math.Max(t, 1e-9):N0} words/s, {t:F0} s)")
                : string.Create(CultureInfo.InvariantCulture, $"merging: {p.Done:N0}/{p.Total:N0} tokens ({t:F0} s)");
            if (_inPlace) { stderr.Write("\r" + line.PadRight(_width)); _width = line.Length; }
            else stderr.WriteLine(line);
        }

        public void Finish()
        {
            if (_inPlace && _width > 0) stderr.Write("\r" + new string(' ', _width) + "\r");
        }
    }
}
