using System.Text.Json;

namespace Sharpformer.Tokenization;

public sealed partial class ByteLevelBpeTokenizer
{
    /// <summary>
    /// Loads from a model directory: <c>tokenizer.json</c> if present, else <c>vocab.json</c> + <c>merges.txt</c>.
    /// Special-token roles (bos/eos/pad/unk, additional_special_tokens) and <c>model_max_length</c> come from
    /// <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c> when present.
    /// </summary>
    public static ByteLevelBpeTokenizer FromDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"tokenizer directory not found: {directory}");
        var config = ReadConfig(directory);
        var json = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(json)) return FromTokenizerJson(json, config);
        string vocab = Path.Combine(directory, "vocab.json"), merges = Path.Combine(directory, "merges.txt");
        if (!File.Exists(vocab) || !File.Exists(merges))
            throw new TokenizerFormatException($"{directory}: neither tokenizer.json nor vocab.json + merges.txt found; a byte-level BPE tokenizer needs one of them.");
        return FromFiles(vocab, merges, config);
    }

    /// <summary>Loads from a directory, a <c>tokenizer.json</c>, or a <c>vocab.json</c> with <c>merges.txt</c> beside it.</summary>
    public static ByteLevelBpeTokenizer FromPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) return FromDirectory(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file or directory not found: {path}", path);
        if (Path.GetFileName(path).Equals("vocab.json", StringComparison.OrdinalIgnoreCase))
            return FromFiles(path, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "merges.txt"));
        return FromTokenizerJson(path);
    }

    /// <summary>Settings of a byte-level BPE tokenizer that are not in vocab.json/merges.txt (HF tokenizer_config.json).</summary>
    public sealed record Options
    {
        /// <summary>Roles of special tokens; all null = <c>&lt;|endoftext|&gt;</c> for bos/eos when the vocabulary has it (GPT-2's default).</summary>
        public SpecialTokens? Specials { get; init; }
        /// <summary>HF <c>unk_token</c> as the BPE model's unknown token (GPT-2: none, every byte is in the vocabulary).</summary>
        public string? UnkToken { get; init; }
        /// <summary>Further special tokens matched in the raw text (HF <c>additional_special_tokens</c>).</summary>
        public IReadOnlyList<string> AdditionalSpecialTokens { get; init; } = [];
        /// <summary>HF <c>model_max_length</c>.</summary>
        public int? ModelMaxLength { get; init; }
    }

    /// <summary>
    /// A tokenizer from GPT-2's two files: <c>vocab.json</c> (token → id) and <c>merges.txt</c> (an optional
    /// <c>#version</c> line, then one <c>left right</c> merge per line in rank order). The bos/eos/pad/unk tokens and
    /// additional special tokens become added special tokens matched in the raw text, as transformers'
    /// <c>GPT2Tokenizer</c> does; a token missing from the vocabulary gets the next free id.
    /// </summary>
    public static ByteLevelBpeTokenizer FromFiles(string vocabJsonPath, string mergesPath, Options? options = null)
    {
        var o = options ?? new Options();
        if (!File.Exists(vocabJsonPath)) throw new FileNotFoundException($"vocab.json not found: {vocabJsonPath}", vocabJsonPath);
        if (!File.Exists(mergesPath)) throw new FileNotFoundException($"merges.txt not found: {mergesPath} (a byte-level BPE vocab.json needs its merges.txt)", mergesPath);
        Dictionary<string, int> vocab;
        using (var doc = ParseJson(vocabJsonPath))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new TokenizerFormatException($"{vocabJsonPath}: expected a JSON object of token → id.");
            vocab = ParseVocabObject(doc.RootElement, vocabJsonPath, "vocab");
        }
        if (vocab.Count == 0) throw new TokenizerFormatException($"{vocabJsonPath}: the vocabulary is empty.");
        var merges = ReadMergesFile(mergesPath, vocab);
        var specials = ResolveSpecials(o.Specials, vocab, []);
        var added = new List<AddedToken>();
        int nextId = vocab.Values.Max() + 1;
        foreach (var tok in new[] { specials.Bos, specials.Eos, specials.Pad, o.UnkToken }.Concat(o.AdditionalSpecialTokens))
        {
            if (string.IsNullOrEmpty(tok) || added.Any(a => a.Content == tok)) continue;
            added.Add(new AddedToken(vocab.TryGetValue(tok, out var id) ? id : nextId++, tok, true, false, false, false, false));
        }
        TemplatePiece[] single = [new(0, [], 0)], pair = [new(0, [], 0), new(1, [], 1)];
        return new ByteLevelBpeTokenizer(vocab, merges, o.UnkToken, added, single, pair, specials, o.ModelMaxLength, null, vocabJsonPath);
    }

    /// <summary>Parses <c>merges.txt</c>; a line that is not two vocabulary tokens separated by one space is a format error naming the line.</summary>
    static List<(int, int)> ReadMergesFile(string path, Dictionary<string, int> vocab)
    {
        var merges = new List<(int, int)>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path, System.Text.Encoding.UTF8))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            merges.Add(ParseMerge(line, vocab, $"{path}: line {lineNo}"));
        }
        return merges;
    }

    static (int, int) ParseMerge(string line, Dictionary<string, int> vocab, string where)
    {
        int sp = line.IndexOf(' ');
        if (sp <= 0 || sp == line.Length - 1 || line.IndexOf(' ', sp + 1) >= 0)
            throw new TokenizerFormatException($"{where}: a merge must be two tokens separated by one space (got '{line}').");
        return MergeIds(line[..sp], line[(sp + 1)..], vocab, where);
    }

    static (int, int) MergeIds(string left, string right, Dictionary<string, int> vocab, string where)
    {
        if (!vocab.TryGetValue(left, out var l)) throw new TokenizerFormatException($"{where}: merge token '{left}' is not in the vocabulary.");
        if (!vocab.TryGetValue(right, out var r)) throw new TokenizerFormatException($"{where}: merge token '{right}' is not in the vocabulary.");
        return (l, r);
    }

    /// <summary>
    /// Loads an HF <c>tokenizer.json</c> with model BPE and the ByteLevel pre-tokenizer (GPT-2, RoBERTa-style files).
    /// Supported: normalizer null; pre_tokenizer ByteLevel (add_prefix_space=false, use_regex=true); post_processor
    /// null, ByteLevel (trim_offsets=false) or TemplateProcessing; decoder ByteLevel; merges as "a b" strings or
    /// [a, b] pairs. Anything else → <see cref="NotSupportedException"/>.
    /// </summary>
    public static ByteLevelBpeTokenizer FromTokenizerJson(string path, Options? options = null)
    {
        var o = options ?? new Options();
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer.json not found: {path}", path);
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        var (model, modelType) = ModelOf(root, path);
        if (modelType != "BPE") throw new NotSupportedException($"{path}: model type '{modelType}' is not BPE; WordPiece files load with BertTokenizer or Tokenizer.Load.");
        var vocab = ParseVocab(model, path);
        string? Str(string key) => model.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
            throw new NotSupportedException($"{path}: not supported yet: model.dropout {dropout.GetRawText()} (BPE-dropout).");
        if (!string.IsNullOrEmpty(Str("continuing_subword_prefix")) || !string.IsNullOrEmpty(Str("end_of_word_suffix")))
            throw new NotSupportedException($"{path}: not supported yet: model.continuing_subword_prefix / end_of_word_suffix (only plain byte-level BPE).");
        if (JsonBool(model, "byte_fallback", false, "model", path)) throw new NotSupportedException($"{path}: not supported yet: model.byte_fallback.");
        if (JsonBool(model, "ignore_merges", false, "model", path)) throw new NotSupportedException($"{path}: not supported yet: model.ignore_merges=true.");
        if (!model.TryGetProperty("merges", out var mergesEl) || mergesEl.ValueKind != JsonValueKind.Array)
            throw new TokenizerFormatException($"{path}: model.merges must be an array of merges.");
        var merges = new List<(int, int)>(mergesEl.GetArrayLength());
        int index = 0;
        foreach (var m in mergesEl.EnumerateArray())
        {
            string where = $"{path}: model.merges[{index}]";
            if (m.ValueKind == JsonValueKind.String) merges.Add(ParseMerge(m.GetString()!, vocab, where));
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                merges.Add(MergeIds(m[0].GetString()!, m[1].GetString()!, vocab, where));
            else throw new TokenizerFormatException($"{where}: a merge must be \"left right\" or [\"left\", \"right\"] (got {m.GetRawText()}).");
            index++;
        }

        if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind != JsonValueKind.Null)
            throw new NotSupportedException($"{path}: not supported yet: normalizer type '{TypeOf(norm)}' with a byte-level BPE (only none).");
        if (!root.TryGetProperty("pre_tokenizer", out var pt) || TypeOf(pt) != "ByteLevel")
            throw new NotSupportedException($"{path}: not supported yet: pre_tokenizer '{(pt.ValueKind == JsonValueKind.Undefined ? "null" : TypeOf(pt) ?? "null")}' with BPE (only ByteLevel).");
        if (JsonBool(pt, "add_prefix_space", true, "pre_tokenizer", path))
            throw new NotSupportedException($"{path}: not supported yet: pre_tokenizer.add_prefix_space=true.");
        if (!JsonBool(pt, "use_regex", true, "pre_tokenizer", path))
            throw new NotSupportedException($"{path}: not supported yet: pre_tokenizer.use_regex=false.");
        if (!root.TryGetProperty("decoder", out var dec) || TypeOf(dec) != "ByteLevel")
            throw new NotSupportedException($"{path}: not supported yet: decoder '{(dec.ValueKind == JsonValueKind.Undefined ? "null" : TypeOf(dec) ?? "null")}' (only ByteLevel).");

        var added = ParseAddedTokens(root, path, normalizerPresent: false);
        TemplatePiece[] single = [new(0, [], 0)], pair = [new(0, [], 0), new(1, [], 1)];
        if (root.TryGetProperty("post_processor", out var pp) && pp.ValueKind != JsonValueKind.Null)
        {
            if (TypeOf(pp) == "ByteLevel")
            {
                if (JsonBool(pp, "trim_offsets", true, "post_processor", path))
                    throw new NotSupportedException($"{path}: not supported yet: post_processor ByteLevel with trim_offsets=true.");
            }
            else
                (single, pair) = ParseTemplate(pp, path, vocab, added)
                    ?? throw new NotSupportedException($"{path}: not supported yet: post_processor type '{TypeOf(pp)}' (only ByteLevel, TemplateProcessing).");
        }
        var (defaults, padFromJson) = ParseTruncationAndPadding(root, path);
        var specials = ResolveSpecials(o.Specials, vocab, added);
        if (specials.Pad is null && padFromJson != null) specials = specials with { Pad = padFromJson };
        return new ByteLevelBpeTokenizer(vocab, merges, Str("unk_token") ?? o.UnkToken, added, single, pair, specials, o.ModelMaxLength, defaults, path);
    }

    /// <summary>GPT-2's default roles when none are configured: bos = eos = <c>&lt;|endoftext|&gt;</c> if it exists.</summary>
    static SpecialTokens ResolveSpecials(SpecialTokens? given, Dictionary<string, int> vocab, List<AddedToken> added) =>
        given != null && (given.Bos ?? given.Eos ?? given.Pad) != null ? given : DefaultSpecials(vocab, added);

    internal static SpecialTokens DefaultSpecials(Dictionary<string, int> vocab, IReadOnlyList<AddedToken> added)
    {
        const string Eot = "<|endoftext|>";
        return vocab.ContainsKey(Eot) || added.Any(a => a.Content == Eot) ? new SpecialTokens(Eot, Eot, null) : new SpecialTokens();
    }

    /// <summary>Reads bos/eos/pad/unk, additional_special_tokens and model_max_length from tokenizer_config.json and special_tokens_map.json.</summary>
    static Options ReadConfig(string directory)
    {
        string? bos = null, eos = null, pad = null, unk = null;
        int? maxLength = null;
        var extra = new List<string>();
        foreach (var name in new[] { "special_tokens_map.json", "tokenizer_config.json" })
        {
            var file = Path.Combine(directory, name);
            if (!File.Exists(file)) continue;
            using var doc = ParseJson(file);
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{file}: expected a JSON object.");
            string? Get(string key) => r.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? TokenContent(v, file, key) : null;
            bos = Get("bos_token") ?? bos; eos = Get("eos_token") ?? eos; pad = Get("pad_token") ?? pad; unk = Get("unk_token") ?? unk;
            if (r.TryGetProperty("additional_special_tokens", out var a) && a.ValueKind == JsonValueKind.Array)
                extra.AddRange(a.EnumerateArray().Select(x => TokenContent(x, file, "additional_special_tokens")));
            if (r.TryGetProperty("model_max_length", out var m) && m.ValueKind == JsonValueKind.Number)
            {
                double d = m.GetDouble(); // HF writes 1e30 when the model has no limit
                maxLength = d >= 1 && d < int.MaxValue ? (int)d : null;
            }
        }
        // GPT-2's unk_token is <|endoftext|>, which the byte-level model never emits: it only matters as a special token.
        return new Options
        {
            Specials = new SpecialTokens(bos, eos, pad),
            AdditionalSpecialTokens = [.. extra.Append(unk).OfType<string>().Distinct()],
            ModelMaxLength = maxLength,
        };
    }
}
