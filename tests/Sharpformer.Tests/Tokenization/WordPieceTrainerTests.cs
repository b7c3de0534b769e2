using System.Text.Json;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Tokenization;

public class WordPieceTrainerTests
{
    const string GoldenCorpus = """
        The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!
        Héllo wörld! Naïve café owners don't like unhappy hippos, unhappily.
        Tokenizers tokenize tokens; tokenization of tokenized text is fun, tokenizing is fun.
        The lower the better: lowest, lower, newer, newest, widest, wider, low, new, wide.
        Running runners run; the runner ran quickly and quietly, running and running.
        Ünïcödé ÀÉÎÕÜ accents vanish; 東京 and 北京 are cities. Numbers: 1984, 2024, 42.
        It's 3.14 — pi's digits aren't "random"; [MASK] tokens stay text here.
        aaaa aaa aa a abababab abab ab; mississippi missing misses kisses.
        """;

    /// <summary>The settings of the npm binding's default trainer, which the recorded runs used.</summary>
    static readonly WordPieceTrainerOptions HfDefaultTrainer = new() { SpecialTokens = [], MinFrequency = 0, LimitAlphabet = null, VocabSize = 30000 };

    // Four distinct outcomes of 30 runs of npm tokenizers@0.23.2 `Tokenizer.train` (WordPiece model, BertNormalizer
    // lowercase, BertPreTokenizer, default WordPieceTrainer: vocab 30000, min_frequency 0, no specials, no alphabet limit)
    // on GoldenCorpus; tokens in id order, space-separated. Generated once by node (see HfTokenizersNode.TrainScript).
    static readonly string[] HfRuns =
    [
        "! \" ' , . 0 1 2 3 4 8 9 : ; [ ] a b c d e f g h i j k l m n o p q r s t u v w x y z — 京 北 東 ##i ##k ##e ##a ##n ##s ##h ##o ##d ##z ##t ##r ##l ##4 ##v ##u ##x ##p ##y ##f ##w ##g ##m ##b ##0 ##2 ##c ##9 ##8 ##er ##ni ##un ##ke run th to the toke ##es ##is ##ng ##ow ##niz tokeniz ##iss low ##ab ##nd ##pp ##ers aa ab and do miss ne qu wi ##ly ##ning running ##est new qui wid ar fo fun is ra te un ##io ##it ##ing ##ipp ##en ##et ##app ##ns ##ners ##happ ##um ##xt ##ps ##ck tokens tokenize lower ##abab aaa dog quick fox text unhapp 14 19 20 42 ae ac br bet ca cit di he her hipp it jum kiss li la ma na num ov of ow pi st sl uni va wo ##iv ##ies ##ily ##ee ##at ##ay ##ner ##sk ##sh ##os ##od ##om ##zy ##ts ##ter ##rl ##lo ##llo ##fe ##git ##bers ##24 ##cen ##cod ##84 ##nish runs runners runner ##own tokenizers tokenizing tokenizat ##issipp lowest ##ndom abab ababab don misses missing mississipp newer newest quiet wide wider widest are aren ran random ##ion ##iou tokenized aaaa quickly unhappy unhappily 1984 2024 aeiou accen brown better cafe cities digit hello here hippos jumps kisses like lazy mask naiv numbers over owners stay slee unicod vanish worl tokenization abababab mississippi quietly accents digits naive sleeps unicode world",
        "! \" ' , . 0 1 2 3 4 8 9 : ; [ ] a b c d e f g h i j k l m n o p q r s t u v w x y z — 京 北 東 ##a ##n ##i ##s ##h ##c ##o ##d ##e ##u ##r ##k ##z ##t ##g ##p ##v ##m ##b ##w ##y ##x ##9 ##8 ##4 ##0 ##2 ##l ##f ##er ##ni ##un ##ke run th to the toke ##es ##ng ##is ##ow ##niz tokeniz ##iss low ##ab ##nd ##pp ##ers aa ab and do miss ne qu wi ##ly ##ning running ##est new qui wid ar fo fun is ra te un ##app ##ns ##ners ##io ##it ##ing ##ipp ##happ ##ck ##en ##et ##um ##ps ##xt tokens tokenize lower ##abab aaa dog quick fox text unhapp 19 14 20 42 ac ae br bet ca cit di he her hipp it jum kiss la li ma na num ov ow of pi st sl uni va wo ##at ##ay ##ner ##iv ##ies ##ily ##sh ##sk ##co ##cen ##os ##om ##de ##ee ##rl ##zy ##ts ##ter ##git ##bers ##84 ##24 ##lo ##llo ##fe ##nish runs runners runner ##own tokenizers tokenizing tokenizat ##issipp lowest ##ndom abab ababab don misses missing mississipp newer newest quiet wide wider widest are aren ran random ##ion ##iou tokenized aaaa quickly unhappy unhappily 1984 2024 accen aeiou brown better cafe cities digit hello here hippos jumps kisses lazy like mask naiv numbers over owners stay slee unico vanish worl tokenization abababab mississippi quietly accents digits naive sleeps unicode world",
        "! \" ' , . 0 1 2 3 4 8 9 : ; [ ] a b c d e f g h i j k l m n o p q r s t u v w x y z — 京 北 東 ##l ##e ##p ##s ##a ##o ##w ##r ##i ##k ##n ##x ##u ##g ##f ##d ##t ##b ##h ##y ##m ##v ##z ##c ##9 ##8 ##4 ##0 ##2 ##er ##ni ##un ##ke run to th toke the ##es ##ss ##ow ##iss ##ng ##niz tokeniz low ##pp ##ab ##nd ##ers aa ab and do miss ne qu wi ##ly ##ning running ##est new qui wid ar fo fun is ra te un ##en ##et ##ps ##app ##io ##it ##ing ##ipp ##ns ##ners ##xt ##um ##happ ##ck tokens tokenize lower ##abab aaa dog quick fox text unhapp 19 14 20 42 ae ac br bet ca cit di he her hipp it jum kiss la li ma na num ow of ov pi sl st uni va wo ##ll ##ld ##ee ##sk ##sh ##at ##ay ##os ##od ##om ##rld ##iv ##ies ##ily ##ner ##git ##fe ##ts ##ter ##bers ##zy ##cen ##cod ##84 ##24 ##nish runs runners runner ##own ##issipp tokenizers tokenizing tokenizat lowest ##ndom abab ababab don misses missing mississipp newer newest quiet wide wider widest are aren ran random ##ion ##iou tokenized aaaa quickly unhappy unhappily 1984 2024 aeiou accen brown better cafe cities digit hell here hippos jumps kisses lazy like mask naiv numbers owners over slee stay unicod vanish world tokenization abababab mississippi quietly accents digits hello naive sleeps unicode",
        "! \" ' , . 0 1 2 3 4 8 9 : ; [ ] a b c d e f g h i j k l m n o p q r s t u v w x y z — 京 北 東 ##e ##w ##i ##s ##r ##p ##n ##d ##o ##k ##z ##a ##t ##0 ##2 ##4 ##u ##m ##g ##l ##f ##y ##x ##c ##v ##h ##b ##9 ##8 ##er ##ni ##un ##ke run to th toke the ##es ##is ##ng ##ow ##niz tokeniz ##iss low ##pp ##nd ##ab ##ers aa ab and do miss ne qu wi ##ly ##ning running ##est new qui wid ar fo fun is ra te un ##en ##et ##io ##it ##ing ##ipp ##ps ##ns ##ners ##app ##um ##xt ##ck ##happ tokens tokenize lower ##abab aaa dog quick fox text unhapp 14 19 20 42 ae ac br bet ca cit di he her hipp it jum kiss li la ma na num ow of ov pi st sl uni va wo ##ee ##iv ##ies ##ily ##sk ##sh ##rl ##ner ##de ##os ##om ##ode ##zy ##at ##ay ##ts ##ter ##24 ##git ##lo ##llo ##fe ##cen ##code ##bers ##84 ##nish runs runners runner ##own tokenizers tokenizing tokenizat ##issipp lowest ##ndom abab ababab don misses missing mississipp newer newest quiet wide wider widest are aren ran random ##ion ##iou tokenized aaaa quickly unhappy unhappily 1984 2024 aeiou accen brown better cafe cities digit hello here hippos jumps kisses like lazy mask naiv numbers owners over stay slee unicode vanish worl tokenization abababab mississippi quietly accents digits naive sleeps world",
    ];

    static WordPieceTrainer Fed(WordPieceTrainerOptions options, string corpus)
    {
        var trainer = new WordPieceTrainer(options);
        trainer.AddTexts(corpus.Split('\n'));
        return trainer;
    }

    /// <summary>"##c" tokens in the order an HF run gave them ids (it lists the vocabulary in id order).</summary>
    static string[] ContinuationOrder(IReadOnlyList<string> hfVocab) =>
        [.. hfVocab.Where(t => t.StartsWith("##", StringComparison.Ordinal) && t[2..].EnumerateRunes().Count() == 1)];

    [Fact]
    public void Trained_vocabulary_equals_every_recorded_HF_run_when_given_that_runs_continuation_ids()
    {
        Assert.Equal(4, HfRuns.Length);
        foreach (var run in HfRuns)
        {
            var expected = run.Split(' ');
            var actual = Fed(HfDefaultTrainer, GoldenCorpus).Train(ContinuationOrder(expected));
            Assert.Equal(expected, actual.Tokens);
        }
    }

    [Fact]
    public void Training_is_deterministic_and_its_vocabulary_has_HF_s_tokens()
    {
        var a = Fed(HfDefaultTrainer, GoldenCorpus).Train();
        var b = Fed(HfDefaultTrainer, GoldenCorpus).Train();
        Assert.Equal(a.Tokens, b.Tokens);
        // Continuation ids only decide ties; the alphabet prefix and the size do not depend on them.
        var hf = HfRuns[0].Split(' ');
        Assert.Equal(hf.Length, a.Tokens.Count);
        int alphabet = hf.TakeWhile(t => !t.StartsWith("##", StringComparison.Ordinal)).Count();
        Assert.Equal(hf.Take(alphabet), a.Tokens.Take(alphabet));
        Assert.Equal(ContinuationOrder(hf).Order(StringComparer.Ordinal), ContinuationOrder(a.Tokens).Order(StringComparer.Ordinal));
        Assert.Equal(146, a.Words); // counted independently: split at whitespace, punctuation and around CJK ideographs
    }

    [Fact]
    public void Min_frequency_stops_at_the_first_pair_seen_fewer_times()
    {
        // Alphabet a b c; "ab" → a ##b, "ac" → a ##c; (a,##b) = 3 merges, (a,##c) = 1 < 2 stops.
        var t = new WordPieceTrainer(new WordPieceTrainerOptions { SpecialTokens = [], MinFrequency = 2, LimitAlphabet = null });
        t.AddWord("ab", 3);
        t.AddWord("ac", 1);
        var v = t.Train();
        Assert.Equal(["a", "b", "c", "##b", "##c", "ab"], v.Tokens);
        Assert.Equal(1, v.Merges);
    }

    [Fact]
    public void Limit_alphabet_keeps_the_most_frequent_characters_and_leaves_the_others_out_of_words()
    {
        // Counts a 5, b 6, x 1 → x dropped. "xb" becomes [##b]: b is not at position 0 of the word (HF keeps positions).
        var t = new WordPieceTrainer(new WordPieceTrainerOptions { SpecialTokens = ["[UNK]"], MinFrequency = 0, LimitAlphabet = 2 });
        t.AddWord("ab", 5);
        t.AddWord("xb", 1);
        Assert.Equal(["[UNK]", "a", "b", "##b", "ab"], t.Train().Tokens);
    }

    [Fact]
    public void Vocab_size_counts_special_tokens_and_alphabet_and_ties_go_to_the_smaller_pair_ids()
    {
        // Specials 0-1, alphabet a b c d (2-5), ##b ##d (6-7) → size 8; one merge allowed by VocabSize 9.
        // (a,##b) and (c,##d) both count 2: the smaller left id (a) wins.
        var t = new WordPieceTrainer(new WordPieceTrainerOptions { SpecialTokens = ["[PAD]", "[UNK]"], MinFrequency = 0, VocabSize = 9 });
        t.AddWord("cd", 2);
        t.AddWord("ab", 2);
        Assert.Equal(["[PAD]", "[UNK]", "a", "b", "c", "d", "##b", "##d", "ab"], t.Train().Tokens);
    }

    [Fact]
    public void Merging_a_word_scans_left_to_right_and_reports_lost_and_gained_pairs()
    {
        // a=1: "a a a a" merging (1,1) → 9 gives [9, 9]; the changes are those of two merges at positions 0 and 1.
        var word = new List<int> { 1, 1, 1, 1 };
        var changes = new List<(long Pair, int Delta)>();
        BpeMergeLoop.MergeWord(word, 1, 1, 9, changes);
        Assert.Equal([9, 9], word);
        static long P(int l, int r) => ((long)l << 32) | (uint)r;
        Assert.Equal([(P(1, 1), -1), (P(9, 1), 1), (P(9, 1), -1), (P(9, 9), 1)], changes);
    }

    [Fact]
    public void Saved_files_load_in_BertTokenizer_and_every_training_word_round_trips_without_unknowns()
    {
        var vocab = Fed(new WordPieceTrainerOptions { VocabSize = 120, MinFrequency = 1 }, GoldenCorpus).Train();
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], vocab.Tokens.Take(5));
        var dir = Directory.CreateTempSubdirectory("sharpformer-wp-").FullName;
        try
        {
            vocab.Save(dir);
            var fromJson = BertTokenizer.FromDirectory(dir);
            var fromVocab = BertTokenizer.FromVocabFile(Path.Combine(dir, "vocab.txt"), BertTokenizer.ReadTokenizerConfig(dir));
            Assert.Equal(120, fromJson.VocabSize);
            Assert.Equal(4, fromJson.MaskTokenId);
            Assert.Equal(512, fromJson.ModelMaxLength);
            foreach (var line in GoldenCorpus.Split('\n'))
            {
                var e = fromJson.Encode(line);
                Assert.Equal(fromVocab.Encode(line).Ids, e.Ids);
                Assert.Equal(2, e.Ids[0]);
                Assert.Equal(3, e.Ids[^1]);
                // [MASK] in the text is the added token; everything else was seen in training, so nothing is unknown.
                Assert.DoesNotContain(1, e.Ids);
                // Pieces glued back give the normalised words: decode(encode(x)) = normalise(x) up to spacing.
                var normalized = fromJson.Normalize(line.Replace("[MASK]", "")).Replace(" ", "");
                Assert.Equal(normalized, fromJson.Decode(e.Ids, cleanUpTokenizationSpaces: false).Replace(" ", ""));
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Options_with_a_missing_role_or_bad_alphabet_are_rejected_with_the_field_named()
    {
        var noMask = new WordPieceTrainerOptions { SpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] };
        var v = new WordPieceTrainer(noMask).Train();
        var e = Assert.Throws<ArgumentException>(() => v.Save(Path.Combine(Path.GetTempPath(), "never-written")));
        Assert.Contains("MaskToken '[MASK]'", e.Message);
        Assert.Contains("InitialAlphabet", Assert.Throws<ArgumentException>(() => new WordPieceTrainer(new WordPieceTrainerOptions { InitialAlphabet = ["ab"] })).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WordPieceTrainer(new WordPieceTrainerOptions { VocabSize = 0 }));
    }

    [HfTokenizersFact]
    public void Live_HF_training_gives_the_same_vocabulary_given_its_continuation_ids()
    {
        var dir = Directory.CreateTempSubdirectory("sharpformer-wp-").FullName;
        try
        {
            var corpus = Path.Combine(dir, "corpus.txt");
            File.WriteAllText(corpus, GoldenCorpus);
            HfTokenizersNode.Run(HfTokenizersNode.TrainScript, corpus, Path.Combine(dir, "hf_vocab.txt"));
            var expected = File.ReadAllLines(Path.Combine(dir, "hf_vocab.txt"));
            Assert.Equal(expected, Fed(HfDefaultTrainer, GoldenCorpus).Train(ContinuationOrder(expected)).Tokens);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [HfTokenizersFact]
    public void HF_tokenizers_loads_the_saved_tokenizer_json_and_encodes_exactly_as_BertTokenizer()
    {
        var dir = Directory.CreateTempSubdirectory("sharpformer-wp-").FullName;
        try
        {
            Fed(new WordPieceTrainerOptions { VocabSize = 150 }, GoldenCorpus).Train().Save(dir);
            string[] texts =
            [
                .. GoldenCorpus.Split('\n'),
                "UNSEEN wörds: Zürich, 北京大学, emoji 🤗 and [CLS] inside [SEP] text.",
                "tab\tseparated\u00a0nbsp  and\u200bzero-width, ÅNGSTRÖM, ﬁ ligature",
            ];
            var input = Path.Combine(dir, "texts.txt");
            File.WriteAllText(input, string.Join('\n', texts) + "\n");
            var output = Path.Combine(dir, "hf.jsonl");
            HfTokenizersNode.Run(HfTokenizersNode.EncodeScript, Path.Combine(dir, "tokenizer.json"), input, output);
            var tok = BertTokenizer.FromDirectory(dir);
            var lines = File.ReadAllLines(output);
            Assert.Equal(texts.Length, lines.Length);
            for (int i = 0; i < texts.Length; i++)
            {
                using var doc = JsonDocument.Parse(lines[i]);
                var e = tok.Encode(texts[i]);
                Assert.Equal(doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), e.Ids);
                // Node reports offsets in code points; Sharpformer's are UTF-16 units, so convert before comparing.
                var hfOffsets = doc.RootElement.GetProperty("offsets").EnumerateArray().Select(o => (o[0].GetInt32(), o[1].GetInt32()));
                int CodePoints(int utf16) => texts[i][..utf16].EnumerateRunes().Count();
                Assert.Equal(hfOffsets, e.Offsets.Select(o => (CodePoints(o.Start), CodePoints(o.End))));
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
