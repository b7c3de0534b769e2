using System.Text;
using System.Text.Json;

namespace Sharpformer.Tokenization;

/// <summary>
/// Settings of a <see cref="TextVectorizer"/>, the Keras <c>TextVectorization(output_mode="int")</c> arguments
/// (standardize is always lower_and_strip_punctuation and split always whitespace).
/// </summary>
/// <param name="MaxTokens">Vocabulary size cap including index 0 ("" = padding) and 1 ("[UNK]" = out of vocabulary); null = no cap.</param>
/// <param name="OutputSequenceLength">Pad with 0 / truncate every output to this length; null = the token count (batches: the longest).</param>
public sealed record TextVectorizerOptions(int? MaxTokens = null, int? OutputSequenceLength = null);

/// <summary>
/// Word-level vectorizer for models trained from scratch, reproducing Keras <c>TextVectorization</c>
/// (standardize = lower_and_strip_punctuation, split = whitespace, output_mode = int).
/// </summary>
/// <remarks>
/// Standardize: <c>tf.strings.lower</c> (ASCII letters only, as TF without an encoding), then delete every character of
/// <c>[!"#$%&amp;()\*\+,-\./:;&lt;=&gt;?@\[\\\]^_`{|}~']</c>; split on ASCII whitespace, dropping empty pieces.
/// Adapt: vocabulary = ["", "[UNK]"] + tokens by descending count, ties by token in descending UTF-8 byte order
/// (Keras <c>np.lexsort((tokens, counts))[::-1]</c>), cut to MaxTokens − 2. Vectorize: index of each token, 1 if unknown.
/// </remarks>
public sealed class TextVectorizer : ITokenizer
{
    public const string PaddingToken = "";
    public const string OovToken = "[UNK]";
    const string VocabularyFileName = "vocabulary.txt", ConfigFileName = "text_vectorizer.json";
    const string Standardize = "lower_and_strip_punctuation", Split = "whitespace", OutputMode = "int";

    string[] _vocabulary = [PaddingToken, OovToken];
    Dictionary<string, int> _index = new(StringComparer.Ordinal) { [PaddingToken] = 0, [OovToken] = 1 };
    Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public TextVectorizer(TextVectorizerOptions? options = null)
    {
        Options = options ?? new TextVectorizerOptions();
        if (Options.MaxTokens is int m && m < 2)
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxTokens must be at least 2 (padding + OOV), got {m}.");
        if (Options.OutputSequenceLength is int l && l < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"OutputSequenceLength must be positive, got {l}.");
        _lookup = _index.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public TextVectorizerOptions Options { get; }

    /// <summary>Keras <c>get_vocabulary()</c>: index → token, starting with "" and "[UNK]".</summary>
    public IReadOnlyList<string> Vocabulary => _vocabulary;
    public int VocabularySize => _vocabulary.Length;

    static bool IsStripped(char c) => c < 128 && StripTable[c];

    static readonly bool[] StripTable = BuildStrip();

    static bool[] BuildStrip()
    {
        var t = new bool[128];
        // Keras DEFAULT_STRIP_REGEX; ",-\." is the range , - .
        foreach (var c in "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'") t[c] = true;
        return t;
    }

    static bool IsSplit(char c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';

    /// <summary>The standardized text (ASCII lowercase, Keras punctuation removed).</summary>
    public static string StandardizeText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (IsStripped(c)) continue;
            sb.Append(char.IsAsciiLetterUpper(c) ? (char)(c | 0x20) : c);
        }
        return sb.ToString();
    }

    /// <summary>The tokens of <paramref name="text"/> after standardization and whitespace split.</summary>
    public static IReadOnlyList<string> TokenizeText(string text) => TokenizeWithOffsets(text).Select(t => t.Token).ToList();

    /// <summary>
    /// The tokens of <paramref name="text"/> (as <see cref="TokenizeText"/>) with the UTF-16 span [Start, End) of each in the
    /// original text, from its first to its last kept character.
    /// </summary>
    /// <remarks>Whitespace is never stripped, so splitting the original text and standardizing each piece gives the same tokens
    /// as standardizing first; a piece of punctuation only yields no token.</remarks>
    public static IReadOnlyList<(string Token, int Start, int End)> TokenizeWithOffsets(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<(string, int, int)>();
        var sb = new StringBuilder();
        int first = -1, last = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i == text.Length || IsSplit(text[i]))
            {
                if (sb.Length > 0) tokens.Add((sb.ToString(), first, last + 1));
                sb.Clear(); first = -1;
                continue;
            }
            char c = text[i];
            if (IsStripped(c)) continue;
            if (first < 0) first = i;
            last = i;
            sb.Append(char.IsAsciiLetterUpper(c) ? (char)(c | 0x20) : c);
        }
        return tokens;
    }

    /// <summary>The index of a standardized token, or false when it is not in the vocabulary (Vectorize then gives 1, OOV).</summary>
    public bool TryGetId(string token, out int id) => _index.TryGetValue(token, out id);

    /// <summary>
    /// The words of <paramref name="text"/> as an <see cref="Encoding"/>: ids as <see cref="Vectorize"/> gives them (no
    /// special tokens, 1 for unknown words, no padding), offsets into the original text, one word id per token.
    /// Truncation keeps the first (with <see cref="TruncationSide.Left"/> the last) MaxLength words.
    /// </summary>
    /// <exception cref="NotSupportedException">A text pair, stride windows or padding (pad batches with the collator).</exception>
    public Encoding Encode(string text, string? textPair, EncodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(options);
        if (textPair is not null || options.Stride != 0 || options.Padding != PaddingStrategy.None)
            throw new NotSupportedException("a text vectorizer encodes single texts without stride windows or padding; pad batches with the collator.");
        var words = TokenizeWithOffsets(text);
        int n = words.Count, keep = n;
        if (options.Truncation != TruncationStrategy.None)
            keep = Math.Min(n, options.MaxLength ?? throw new TokenizationException("truncation needs EncodeOptions.MaxLength; a text vectorizer has no model_max_length."));
        int first = options.TruncationSide == TruncationSide.Left ? n - keep : 0;
        var ids = new int[keep];
        var offsets = new TokenOffset[keep];
        var wordIds = new int[keep];
        var mask = new int[keep];
        for (int i = 0; i < keep; i++)
        {
            var (token, start, end) = words[first + i];
            ids[i] = _index.TryGetValue(token, out var id) ? id : 1;
            offsets[i] = new TokenOffset(start, end);
            wordIds[i] = first + i;
            mask[i] = 1;
        }
        return new Encoding(ids, new int[keep], mask, new int[keep], offsets, wordIds, new int[keep], _vocabulary)
        { NumTruncatedTokens = n - keep, WindowStart = first };
    }

    /// <summary>The vocabulary words of <paramref name="ids"/> joined by spaces (Keras has no decode; standardized words need no clean-up).</summary>
    /// <remarks>With <paramref name="skipSpecialTokens"/>, padding (0) and out-of-vocabulary (1) ids are dropped.</remarks>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true,
        DecodeCleanup cleanup = DecodeCleanup.PerToken) =>
        string.Join(' ', ids.Where(id => !skipSpecialTokens || id is not (0 or 1))
            .Select(id => IdToToken(id) ?? throw new TokenizationException($"token id {id} is outside the vocabulary of {VocabularySize} words.")));

    public int? TokenToId(string token) => _index.TryGetValue(token, out var id) ? id : null;
    public string? IdToToken(int id) => (uint)id < (uint)_vocabulary.Length ? _vocabulary[id] : null;
    /// <summary>Index 0 ("") pads.</summary>
    public int? PadTokenId => 0;
    public int? MaskTokenId => null;
    /// <summary>Index 1 ("[UNK]") stands for every word outside the vocabulary.</summary>
    public int UnkTokenId => 1;
    public int VocabSize => VocabularySize;

    /// <summary>Builds the vocabulary from <paramref name="corpus"/> (Keras <c>adapt</c>); replaces any previous vocabulary.</summary>
    public void Adapt(IEnumerable<string> corpus, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        int n = 0;
        var buf = new char[256];
        foreach (var text in corpus)
        {
            if ((++n & 1023) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (text is null) throw new ArgumentException($"corpus item {n - 1} is null.", nameof(corpus));
            if (buf.Length < text.Length) buf = new char[text.Length];
            int len = StandardizeInto(text, buf);
            ForEachToken(buf.AsSpan(0, len), lookup);
        }
        counts.Remove(PaddingToken);
        counts.Remove(OovToken);
        var utf8 = counts.Keys.ToDictionary(k => k, k => System.Text.Encoding.UTF8.GetBytes(k), StringComparer.Ordinal);
        var ordered = counts.OrderByDescending(kv => kv.Value)
            .ThenByDescending(kv => utf8[kv.Key], Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b)))
            .Select(kv => kv.Key);
        if (Options.MaxTokens is int max) ordered = ordered.Take(max - 2);
        SetVocabulary([PaddingToken, OovToken, .. ordered], "adapt");
    }

    /// <summary>Installs a vocabulary (Keras <c>set_vocabulary</c>); it must start with "" and "[UNK]" and have no duplicates.</summary>
    public void SetVocabulary(IReadOnlyList<string> vocabulary, string source = "vocabulary")
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (vocabulary.Count < 2 || vocabulary[0] != PaddingToken || vocabulary[1] != OovToken)
            throw new TokenizerFormatException($"{source}: a TextVectorizer vocabulary must start with \"\" (padding) and \"[UNK]\" (OOV).");
        if (Options.MaxTokens is int max && vocabulary.Count > max)
            throw new TokenizerFormatException($"{source}: {vocabulary.Count} tokens exceed MaxTokens = {max}.");
        var index = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        for (int i = 0; i < vocabulary.Count; i++)
            if (!index.TryAdd(vocabulary[i], i))
                throw new TokenizerFormatException($"{source}: token \"{vocabulary[i]}\" appears twice (lines {index[vocabulary[i]] + 1} and {i + 1}).");
        _vocabulary = [.. vocabulary];
        _index = index;
        _lookup = index.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Token indices of <paramref name="text"/> (1 = OOV), padded with 0 / truncated to OutputSequenceLength if set.</summary>
    public int[] Vectorize(string text)
    {
        var ids = VectorizeUnpadded(text);
        return Options.OutputSequenceLength is int len ? Fit(ids, len) : ids;
    }

    /// <summary>Vectorizes every text; without OutputSequenceLength rows are padded with 0 to the longest (Keras dense output).</summary>
    public int[][] VectorizeBatch(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var rows = new int[texts.Count][];
        Parallel.For(0, texts.Count, i => rows[i] = VectorizeUnpadded(texts[i] ?? throw new ArgumentException($"texts[{i}] is null.", nameof(texts))));
        int len = Options.OutputSequenceLength ?? (rows.Length == 0 ? 0 : rows.Max(r => r.Length));
        for (int i = 0; i < rows.Length; i++) rows[i] = Fit(rows[i], len);
        return rows;
    }

    static int StandardizeInto(string text, Span<char> buf)
    {
        int n = 0;
        foreach (var c in text)
            if (!IsStripped(c)) buf[n++] = char.IsAsciiLetterUpper(c) ? (char)(c | 0x20) : c;
        return n;
    }

    static void ForEachToken(ReadOnlySpan<char> s, Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> counts)
    {
        int start = -1;
        for (int i = 0; i <= s.Length; i++)
        {
            bool split = i == s.Length || IsSplit(s[i]);
            if (split)
            {
                if (start >= 0)
                {
                    var token = s[start..i];
                    counts[token] = counts.TryGetValue(token, out var c) ? c + 1 : 1;
                }
                start = -1;
            }
            else if (start < 0) start = i;
        }
    }

    int[] VectorizeUnpadded(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // Standardize into a buffer and look words up by span: no per-token strings.
        Span<char> buf = text.Length <= 1024 ? stackalloc char[text.Length] : new char[text.Length];
        int n = StandardizeInto(text, buf);
        var ids = new List<int>();
        int start = -1;
        for (int i = 0; i <= n; i++)
        {
            bool split = i == n || IsSplit(buf[i]);
            if (split)
            {
                if (start >= 0) ids.Add(_lookup.TryGetValue(buf[start..i], out var id) ? id : 1);
                start = -1;
            }
            else if (start < 0) start = i;
        }
        return [.. ids];
    }

    static int[] Fit(int[] ids, int len)
    {
        if (ids.Length == len) return ids;
        var r = new int[len];
        Array.Copy(ids, r, Math.Min(len, ids.Length));
        return r;
    }

    /// <summary>
    /// Writes <c>vocabulary.txt</c> (one token per line, as <c>get_vocabulary()</c>; line 1 is empty = padding) and
    /// <c>text_vectorizer.json</c> (the options) into <paramref name="directory"/>, each via a temp file and rename.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        WriteAtomic(Path.Combine(directory, VocabularyFileName), string.Join("\n", _vocabulary) + "\n");
        var config = new Dictionary<string, object?>
        {
            ["format"] = "sharpformer.text_vectorizer",
            ["version"] = 1,
            ["max_tokens"] = Options.MaxTokens,
            ["output_sequence_length"] = Options.OutputSequenceLength,
            ["standardize"] = Standardize,
            ["split"] = Split,
            ["output_mode"] = OutputMode,
            ["vocabulary_size"] = _vocabulary.Length,
        };
        WriteAtomic(Path.Combine(directory, ConfigFileName), JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    static void WriteAtomic(string path, string content)
    {
        var tmp = path + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        File.WriteAllText(tmp, content, new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Loads what <see cref="Save"/> wrote; malformed files raise <see cref="TokenizerFormatException"/> naming file and key/line.</summary>
    public static TextVectorizer Load(string directory)
    {
        var cfgPath = Path.Combine(directory, ConfigFileName);
        var vocabPath = Path.Combine(directory, VocabularyFileName);
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"{cfgPath}: TextVectorizer config not found.", cfgPath);
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"{vocabPath}: TextVectorizer vocabulary not found.", vocabPath);
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllBytes(cfgPath)).RootElement; }
        catch (JsonException e) { throw new TokenizerFormatException($"{cfgPath}: invalid JSON ({e.Message}).", e); }
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var f) || f.GetString() != "sharpformer.text_vectorizer")
            throw new TokenizerFormatException($"{cfgPath}: not a TextVectorizer config (key 'format' must be \"sharpformer.text_vectorizer\").");
        int? Int(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32()
            : root.TryGetProperty(key, out v) && v.ValueKind != JsonValueKind.Null ? throw new TokenizerFormatException($"{cfgPath}: key '{key}' must be an integer or null.") : null;
        foreach (var (key, expected) in new[] { ("standardize", Standardize), ("split", Split), ("output_mode", OutputMode) })
            if (root.TryGetProperty(key, out var v) && v.GetString() != expected)
                throw new NotSupportedException($"{cfgPath}: not supported yet: {key} = \"{v.GetString()}\" (only \"{expected}\").");
        var tv = new TextVectorizer(new TextVectorizerOptions(Int("max_tokens"), Int("output_sequence_length")));
        var text = File.ReadAllText(vocabPath, System.Text.Encoding.UTF8);
        if (!text.EndsWith('\n')) throw new TokenizerFormatException($"{vocabPath}: truncated file (no final newline).");
        var lines = text[..^1].Split('\n');
        tv.SetVocabulary(lines, vocabPath);
        if (Int("vocabulary_size") is int size && size != lines.Length)
            throw new TokenizerFormatException($"{cfgPath}: vocabulary_size {size} does not match the {lines.Length} lines of {vocabPath}.");
        return tv;
    }
}
