using System.Text;
using System.Text.Json;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tokenization;

/// <summary>
/// Settings of <see cref="WordPieceTrainer"/>, with the defaults of HF <c>BertWordPieceTokenizer.train</c>.
/// </summary>
public sealed record WordPieceTrainerOptions
{
    /// <summary>Target size including special tokens and the alphabet (HF <c>vocab_size</c>).</summary>
    public int VocabSize { get; init; } = 30000;
    /// <summary>A pair seen fewer times than this is never merged (HF <c>min_frequency</c>).</summary>
    public long MinFrequency { get; init; } = 2;
    /// <summary>Special tokens, given ids 0, 1, … in this order. <see cref="WordPieceVocabulary.Save"/> needs the five roles of <see cref="Tokenizer"/> among them.</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    /// <summary>Keep at most this many distinct characters, the most frequent (HF <c>limit_alphabet</c>); null = all.</summary>
    public int? LimitAlphabet { get; init; } = 1000;
    /// <summary>Characters always kept in the alphabet even if unseen (HF <c>initial_alphabet</c>); one code point each.</summary>
    public IReadOnlyList<string> InitialAlphabet { get; init; } = [];
    /// <summary>
    /// Normaliser (lower-casing, accents, CJK, clean-up), special-token roles, "##" prefix and model_max_length of the
    /// tokenizer to train and write — the settings a loaded <c>vocab.txt</c> tokenizer takes. Default: uncased BERT, 512.
    /// </summary>
    public BertTokenizerOptions Tokenizer { get; init; } = new() { ModelMaxLength = 512 };

    internal BertTokenizer.NormalizerSettings Normalizer => new(Tokenizer.CleanText, Tokenizer.TokenizeChineseChars, Tokenizer.StripAccents ?? Tokenizer.LowerCase, Tokenizer.LowerCase);

    /// <summary>A BERT tokenizer file needs every role ([UNK], [PAD], [CLS], [SEP], [MASK]) among the special tokens.</summary>
    internal void ValidateRoles()
    {
        var t = Tokenizer;
        foreach (var (role, token) in new[] { ("UnkToken", t.UnkToken), ("PadToken", t.PadToken), ("ClsToken", t.ClsToken), ("SepToken", t.SepToken), ("MaskToken", t.MaskToken) })
            if (!SpecialTokens.Contains(token))
                throw new ArgumentException($"{role} '{token}' is not in SpecialTokens [{string.Join(", ", SpecialTokens)}]; a BERT tokenizer needs it.", nameof(SpecialTokens));
    }

    internal void Validate()
    {
        if (VocabSize <= 0) throw new ArgumentOutOfRangeException(nameof(VocabSize), VocabSize, "The vocabulary size must be positive.");
        if (MinFrequency < 0) throw new ArgumentOutOfRangeException(nameof(MinFrequency), MinFrequency, "The minimum frequency cannot be negative.");
        if (LimitAlphabet is < 0) throw new ArgumentOutOfRangeException(nameof(LimitAlphabet), LimitAlphabet, "The alphabet limit cannot be negative.");
        ArgumentNullException.ThrowIfNull(Tokenizer);
        if (string.IsNullOrEmpty(Tokenizer.ContinuingSubwordPrefix))
            throw new ArgumentException("Tokenizer.ContinuingSubwordPrefix cannot be empty (WordPiece needs it to mark word continuations).", nameof(Tokenizer));
        if (SpecialTokens.Any(string.IsNullOrEmpty)) throw new ArgumentException("A special token is empty.", nameof(SpecialTokens));
        foreach (var c in InitialAlphabet)
            if (c is null || c.Length == 0 || c.EnumerateRunes().Count() != 1)
                throw new ArgumentException($"InitialAlphabet entry '{c}' must be exactly one character (code point).", nameof(InitialAlphabet));
    }
}

/// <summary>Where training is: counting words, or merging (<see cref="Done"/> of <see cref="Total"/> vocabulary entries).</summary>
public sealed record WordPieceTrainingProgress(string Phase, long Done, long Total);

/// <summary>A trained WordPiece vocabulary (token i has id i) and what it was trained on.</summary>
/// <param name="Tokens">Special tokens, the alphabet (sorted by code point), continuation characters, then merged tokens in merge order.</param>
/// <param name="Words">Words (pre-tokens) counted.</param>
/// <param name="UniqueWords">Distinct words.</param>
/// <param name="Merges">Merge steps performed.</param>
/// <param name="Options">The settings used (normaliser and special tokens are written with the vocabulary).</param>
public sealed record WordPieceVocabulary(IReadOnlyList<string> Tokens, long Words, int UniqueWords, int Merges, WordPieceTrainerOptions Options)
{
    /// <summary>
    /// Writes <c>vocab.txt</c>, <c>tokenizer.json</c> (HF tokenizers format: BertNormalizer, BertPreTokenizer,
    /// WordPiece, TemplateProcessing, WordPiece decoder), <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c>
    /// into <paramref name="directory"/>, each atomically. <see cref="BertTokenizer.FromDirectory"/> and HF
    /// <c>AutoTokenizer.from_pretrained</c> load the result.
    /// </summary>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Options.ValidateRoles();
        var o = Options.Tokenizer;
        Directory.CreateDirectory(directory);
        var sb = new StringBuilder();
        foreach (var t in Tokens) sb.Append(t).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(directory, "vocab.txt"), sb.ToString());
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Tokens.Count; i++) ids[Tokens[i]] = i;

        AtomicFile.Write(Path.Combine(directory, "tokenizer.json"), stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            foreach (var t in Options.SpecialTokens.Distinct())
            {
                w.WriteStartObject();
                w.WriteNumber("id", ids[t]);
                w.WriteString("content", t);
                w.WriteBoolean("single_word", false); w.WriteBoolean("lstrip", false); w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false); w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("normalizer");
            w.WriteString("type", "BertNormalizer");
            w.WriteBoolean("clean_text", o.CleanText);
            w.WriteBoolean("handle_chinese_chars", o.TokenizeChineseChars);
            if (o.StripAccents is bool strip) w.WriteBoolean("strip_accents", strip); else w.WriteNull("strip_accents");
            w.WriteBoolean("lowercase", o.LowerCase);
            w.WriteEndObject();
            w.WriteStartObject("pre_tokenizer"); w.WriteString("type", "BertPreTokenizer"); w.WriteEndObject();
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            void Piece(bool special, string id, int typeId)
            {
                w.WriteStartObject();
                w.WriteStartObject(special ? "SpecialToken" : "Sequence");
                w.WriteString("id", id); w.WriteNumber("type_id", typeId);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteStartArray("single"); Piece(true, o.ClsToken, 0); Piece(false, "A", 0); Piece(true, o.SepToken, 0); w.WriteEndArray();
            w.WriteStartArray("pair");
            Piece(true, o.ClsToken, 0); Piece(false, "A", 0); Piece(true, o.SepToken, 0); Piece(false, "B", 1); Piece(true, o.SepToken, 1);
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            foreach (var t in new[] { o.ClsToken, o.SepToken })
            {
                w.WriteStartObject(t);
                w.WriteString("id", t);
                w.WriteStartArray("ids"); w.WriteNumberValue(ids[t]); w.WriteEndArray();
                w.WriteStartArray("tokens"); w.WriteStringValue(t); w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("decoder");
            w.WriteString("type", "WordPiece"); w.WriteString("prefix", o.ContinuingSubwordPrefix); w.WriteBoolean("cleanup", true);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "WordPiece");
            w.WriteString("unk_token", o.UnkToken);
            w.WriteString("continuing_subword_prefix", o.ContinuingSubwordPrefix);
            w.WriteNumber("max_input_chars_per_word", o.MaxInputCharsPerWord);
            w.WriteStartObject("vocab");
            for (int i = 0; i < Tokens.Count; i++) w.WriteNumber(Tokens[i], i);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        });

        void WriteSpecials(Utf8JsonWriter w)
        {
            w.WriteString("unk_token", o.UnkToken); w.WriteString("sep_token", o.SepToken); w.WriteString("pad_token", o.PadToken);
            w.WriteString("cls_token", o.ClsToken); w.WriteString("mask_token", o.MaskToken);
        }
        AtomicFile.Write(Path.Combine(directory, "tokenizer_config.json"), stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("tokenizer_class", "BertTokenizer");
            w.WriteBoolean("do_lower_case", o.LowerCase);
            if (o.StripAccents is bool strip) w.WriteBoolean("strip_accents", strip); else w.WriteNull("strip_accents");
            w.WriteBoolean("tokenize_chinese_chars", o.TokenizeChineseChars);
            WriteSpecials(w);
            if (o.ModelMaxLength is int max) w.WriteNumber("model_max_length", max);
            w.WriteEndObject();
        });
        AtomicFile.Write(Path.Combine(directory, "special_tokens_map.json"), stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            WriteSpecials(w);
            w.WriteEndObject();
        });
    }
}

/// <summary>
/// Learns a WordPiece vocabulary from text as HF tokenizers' <c>WordPieceTrainer</c> (the trainer behind
/// <c>BertWordPieceTokenizer.train</c>): the words are counted after Sharpformer's own BertNormalizer and
/// BertPreTokenizer (<see cref="BertTokenizer"/>), then a BPE trainer with "##" continuation prefixes merges pairs.
/// </summary>
/// <remarks>
/// The algorithm of tokenizers/src/models/bpe/trainer.rs, step by step:
/// <list type="number">
/// <item>Special tokens get ids 0…s−1.</item>
/// <item>Alphabet: every character's frequency (summed over word counts; <see cref="WordPieceTrainerOptions.InitialAlphabet"/>
/// counts as infinitely frequent). If there are more than <c>LimitAlphabet</c>, the least frequent are dropped; the
/// kept ones get the next ids in code-point order.</item>
/// <item>Each word becomes its kept characters, all but the one at position 0 written "##c" (a dropped character is
/// simply left out); a new "##c" gets the next id when first met.</item>
/// <item>Pair counts: the sum of word counts over adjacent-symbol occurrences. A max-heap orders pairs by count,
/// ties by the smaller (left id, right id). A popped entry whose count is stale is re-pushed with the current count.</item>
/// <item>Until the vocabulary has <c>VocabSize</c> tokens, the best pair with count ≥ max(1, <c>MinFrequency</c>) is
/// merged: new token = left + right without its "##" (an existing token keeps its id); words holding the pair merge
/// left to right, and the pairs they lose or gain adjust the counts; pairs gained this step are pushed with the words
/// that gained them.</item>
/// </list>
/// Determinism: HF visits words in hash-map order, so the ids of the "##c" tokens — and with them the winners of
/// count ties — change from run to run (tokenizers issue #1794). Sharpformer visits words in ordinal order, which
/// is one of the orders HF can take, so each result is a vocabulary HF can produce, and the same on every run.
/// </remarks>
public sealed class WordPieceTrainer
{
    readonly WordPieceTrainerOptions _options;
    readonly BertTokenizer.NormalizerSettings _normalizer;
    readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    readonly Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public WordPieceTrainer(WordPieceTrainerOptions? options = null)
    {
        _options = options ?? new WordPieceTrainerOptions();
        _options.Validate();
        _normalizer = _options.Normalizer;
        _lookup = _counts.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public WordPieceTrainerOptions Options => _options;
    /// <summary>Words (pre-tokens) counted so far.</summary>
    public long WordCount { get; private set; }
    /// <summary>Distinct words counted so far.</summary>
    public int UniqueWordCount => _counts.Count;

    /// <summary>Normalizes and pre-tokenizes <paramref name="text"/> and counts its words.</summary>
    public void AddText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        BertTokenizer.ForEachPreToken(text, _normalizer, word =>
        {
            ref long count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_lookup, word, out _);
            count++;
            WordCount++;
        });
    }

    /// <summary>Counts the words of every text; reports progress every 10 000 texts.</summary>
    public void AddTexts(IEnumerable<string> texts, IProgress<WordPieceTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        long n = 0;
        foreach (var text in texts)
        {
            AddText(text);
            if (++n % 10_000 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(new WordPieceTrainingProgress("count", WordCount, 0));
            }
        }
        progress?.Report(new WordPieceTrainingProgress("count", WordCount, 0));
    }

    /// <summary>Adds <paramref name="count"/> occurrences of an already pre-tokenized word (HF <c>train_from_iterator</c> after pre-tokenization).</summary>
    public void AddWord(string word, long count = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(word);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, word, out _) += count;
        WordCount += count;
    }

    /// <summary>Learns the vocabulary from the words counted so far.</summary>
    public WordPieceVocabulary Train(IProgress<WordPieceTrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Train(null, progress, cancellationToken);

    /// <param name="continuationOrder">
    /// Test hook: "##c" tokens to register, in this order, before the words are visited — reproduces the ids one
    /// HF run gave them (its vocab.txt lists them in id order), so that run's tie-breaking can be checked exactly.
    /// </param>
    /// <param name="progress">Receives the merge count every 256 merges.</param>
    /// <param name="cancellationToken">Checked every 256 merges.</param>
    internal WordPieceVocabulary Train(IReadOnlyList<string>? continuationOrder, IProgress<WordPieceTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var o = _options;
        string prefix = o.Tokenizer.ContinuingSubwordPrefix;
        var idToToken = new List<string>();
        var tokenToId = new Dictionary<string, int>(StringComparer.Ordinal);
        int Add(string token)
        {
            if (tokenToId.TryGetValue(token, out int id)) return id;
            idToToken.Add(token);
            return tokenToId[token] = idToToken.Count - 1;
        }
        foreach (var t in o.SpecialTokens) Add(t);

        // Alphabet.
        var charCounts = new Dictionary<int, long>();
        foreach (var (word, count) in _counts)
            foreach (var r in word.EnumerateRunes())
                charCounts[r.Value] = charCounts.GetValueOrDefault(r.Value) + count;
        foreach (var c in o.InitialAlphabet) charCounts[Rune.GetRuneAt(c, 0).Value] = long.MaxValue;
        var kept = charCounts.ToList();
        if (o.LimitAlphabet is int limit && kept.Count > limit)
        {
            // HF drops the least frequent with an unstable sort, so its choice among equal counts is arbitrary;
            // here equal counts drop the higher code point first.
            kept.Sort((a, b) => a.Value != b.Value ? a.Value.CompareTo(b.Value) : b.Key.CompareTo(a.Key));
            kept.RemoveRange(0, kept.Count - limit);
        }
        kept.Sort((a, b) => a.Key.CompareTo(b.Key));
        foreach (var (cp, _) in kept) Add(char.ConvertFromUtf32(cp));
        if (continuationOrder != null)
            foreach (var t in continuationOrder) Add(t);

        // Words as symbol ids, visited in ordinal order (see remarks).
        var wordList = _counts.Keys.ToArray();
        Array.Sort(wordList, StringComparer.Ordinal);
        var words = new List<int>[wordList.Length];
        var counts = new long[wordList.Length];
        for (int w = 0; w < wordList.Length; w++)
        {
            var symbols = new List<int>(wordList[w].Length);
            bool first = true;
            foreach (var r in wordList[w].EnumerateRunes())
            {
                var s = r.ToString();
                if (tokenToId.ContainsKey(s)) symbols.Add(first ? tokenToId[s] : Add(prefix + s));
                first = false;
            }
            words[w] = symbols;
            counts[w] = _counts[wordList[w]];
        }

        int merges = 0;
        BpeMergeLoop.Run(words, counts, o.VocabSize, o.MinFrequency, () => tokenToId.Count,
            (left, right) =>
            {
                string partB = idToToken[right];
                if (partB.StartsWith(prefix, StringComparison.Ordinal)) partB = partB[prefix.Length..];
                return Add(idToToken[left] + partB);
            },
            (_, _, _) =>
            {
                if ((++merges & 255) != 0) return;
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(new WordPieceTrainingProgress("merge", tokenToId.Count, o.VocabSize));
            });
        progress?.Report(new WordPieceTrainingProgress("merge", tokenToId.Count, o.VocabSize));
        return new WordPieceVocabulary(idToToken.ToArray(), WordCount, _counts.Count, merges, o);
    }
}
