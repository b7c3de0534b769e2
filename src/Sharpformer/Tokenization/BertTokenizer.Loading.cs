using System.Text.Json;

namespace Sharpformer.Tokenization;

public sealed partial class BertTokenizer
{
    /// <summary>
    /// Loads a tokenizer from a model directory: <c>tokenizer.json</c> if present, else <c>vocab.txt</c> with
    /// <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c>. <c>model_max_length</c> comes from tokenizer_config.json.
    /// </summary>
    public static BertTokenizer FromDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"tokenizer directory not found: {directory}");
        var config = ReadTokenizerConfig(directory);
        var json = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(json)) return FromTokenizerJson(json, config.ModelMaxLength);
        var vocab = Path.Combine(directory, "vocab.txt");
        if (!File.Exists(vocab))
            throw new TokenizerFormatException($"{directory}: neither tokenizer.json nor vocab.txt found; a BERT tokenizer needs one of them.");
        return FromVocabFile(vocab, config);
    }

    /// <summary>Loads from a path that is a directory, a <c>tokenizer.json</c> or a <c>vocab.txt</c>.</summary>
    public static BertTokenizer FromPath(string path)
    {
        if (Directory.Exists(path)) return FromDirectory(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file or directory not found: {path}", path);
        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? FromTokenizerJson(path) : FromVocabFile(path);
    }

    /// <summary>A WordPiece tokenizer from a <c>vocab.txt</c> (one token per line, id = line number) and options.</summary>
    public static BertTokenizer FromVocabFile(string vocabPath, BertTokenizerOptions? options = null)
    {
        var o = options ?? new BertTokenizerOptions();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int line = 0;
        using (var reader = new StreamReader(vocabPath, System.Text.Encoding.UTF8))
        {
            for (string? s; (s = reader.ReadLine()) != null; line++)
            {
                // HF load_vocab lets a later duplicate win, leaving the earlier line's id without a token; refuse instead.
                if (!vocab.TryAdd(s.TrimEnd('\r'), line))
                    throw new TokenizerFormatException($"{vocabPath}: line {line + 1} repeats the token '{s.TrimEnd('\r')}' of line {vocab[s.TrimEnd('\r')] + 1}; every line must be a distinct token.");
            }
        }
        if (vocab.Count == 0) throw new TokenizerFormatException($"{vocabPath}: the vocabulary file is empty.");
        var added = new List<AddedToken>();
        foreach (var tok in new[] { o.PadToken, o.UnkToken, o.ClsToken, o.SepToken, o.MaskToken }.Distinct())
        {
            if (!vocab.TryGetValue(tok, out var id))
                throw new TokenizerFormatException($"{vocabPath}: special token '{tok}' is not in the vocabulary; fix the file or the special token settings.");
            added.Add(new AddedToken(id, tok, true, false, false, false, false));
        }
        int nextId = vocab.Values.Max() + 1;
        foreach (var tok in o.AdditionalSpecialTokens.Distinct())
        {
            if (added.Any(a => a.Content == tok)) continue;
            if (string.IsNullOrEmpty(tok)) throw new TokenizerFormatException($"{vocabPath}: an additional special token is empty.");
            added.Add(new AddedToken(vocab.TryGetValue(tok, out var id) ? id : nextId++, tok, true, false, false, false, false));
        }
        added.Sort((x, y) => x.Id.CompareTo(y.Id));
        int cls = vocab[o.ClsToken], sep = vocab[o.SepToken];
        var norm = new NormalizerSettings(o.CleanText, o.TokenizeChineseChars, o.StripAccents ?? o.LowerCase, o.LowerCase);
        return new BertTokenizer(vocab, norm, o.UnkToken, o.ContinuingSubwordPrefix, o.MaxInputCharsPerWord, added,
            BertTemplate(cls, sep, false), BertTemplate(cls, sep, true), new DecoderSettings(o.ContinuingSubwordPrefix, true),
            o.PadToken, o.ModelMaxLength, null, vocabPath) { MaskToken = o.MaskToken };
    }

    /// <summary>
    /// Reads the settings of <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> in <paramref name="directory"/>
    /// (both optional) into options. Keys that change behaviour in ways this tokenizer does not implement
    /// (<c>do_basic_tokenize: false</c>, <c>never_split</c>) raise <see cref="NotSupportedException"/>.
    /// </summary>
    public static BertTokenizerOptions ReadTokenizerConfig(string directory)
    {
        var o = new BertTokenizerOptions();
        var map = Path.Combine(directory, "special_tokens_map.json");
        if (File.Exists(map))
        {
            var m = ParseJson(map).RootElement;
            o = ApplySpecialTokens(o, m, map);
            if (m.TryGetProperty("additional_special_tokens", out var extraMap) && extraMap.ValueKind == JsonValueKind.Array)
                o = o with { AdditionalSpecialTokens = [.. extraMap.EnumerateArray().Select(x => TokenContent(x, map, "additional_special_tokens"))] };
        }
        var cfgPath = Path.Combine(directory, "tokenizer_config.json");
        if (!File.Exists(cfgPath)) return o;
        var cfg = ParseJson(cfgPath).RootElement;
        if (cfg.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{cfgPath}: expected a JSON object.");
        o = ApplySpecialTokens(o, cfg, cfgPath);
        if (cfg.TryGetProperty("do_lower_case", out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False) o = o with { LowerCase = v.GetBoolean() };
        if (cfg.TryGetProperty("strip_accents", out v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False) o = o with { StripAccents = v.GetBoolean() };
        if (cfg.TryGetProperty("tokenize_chinese_chars", out v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False) o = o with { TokenizeChineseChars = v.GetBoolean() };
        if (cfg.TryGetProperty("model_max_length", out v) && v.ValueKind == JsonValueKind.Number)
        {
            // HF writes 1e30 ("VERY_LARGE_INTEGER") when the model has no limit.
            double d = v.GetDouble();
            o = o with { ModelMaxLength = d >= 1 && d < int.MaxValue ? (int)d : null };
        }
        var extra = new List<string>(o.AdditionalSpecialTokens);
        if (cfg.TryGetProperty("additional_special_tokens", out v) && v.ValueKind == JsonValueKind.Array)
            extra.AddRange(v.EnumerateArray().Select(x => TokenContent(x, cfgPath, "additional_special_tokens")));
        if (cfg.TryGetProperty("added_tokens_decoder", out v) && v.ValueKind == JsonValueKind.Object)
        {
            var standard = new[] { o.UnkToken, o.SepToken, o.PadToken, o.ClsToken, o.MaskToken };
            foreach (var p in v.EnumerateObject())
            {
                var content = TokenContent(p.Value, cfgPath, $"added_tokens_decoder.{p.Name}");
                if (standard.Contains(content)) continue;
                bool special = p.Value.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True;
                if (!special) throw new NotSupportedException($"{cfgPath}: not supported yet: non-special added token '{content}' in added_tokens_decoder.");
                extra.Add(content);
            }
        }
        o = o with { AdditionalSpecialTokens = [.. extra.Distinct()] };
        if (File.Exists(Path.Combine(directory, "added_tokens.json")) && new FileInfo(Path.Combine(directory, "added_tokens.json")).Length > 2)
        {
            var addedPath = Path.Combine(directory, "added_tokens.json");
            foreach (var p in ParseJson(addedPath).RootElement.EnumerateObject())
                if (!o.AdditionalSpecialTokens.Contains(p.Name) && !new[] { o.UnkToken, o.SepToken, o.PadToken, o.ClsToken, o.MaskToken }.Contains(p.Name))
                    throw new NotSupportedException($"{addedPath}: not supported yet: non-special added token '{p.Name}'.");
        }
        if (cfg.TryGetProperty("do_basic_tokenize", out v) && v.ValueKind == JsonValueKind.False)
            throw new NotSupportedException($"{cfgPath}: not supported yet: do_basic_tokenize=false (WordPiece without the basic tokenizer).");
        if (cfg.TryGetProperty("never_split", out v) && v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0)
            throw new NotSupportedException($"{cfgPath}: not supported yet: never_split.");
        return o;
    }

    static BertTokenizerOptions ApplySpecialTokens(BertTokenizerOptions o, JsonElement root, string file)
    {
        string? Get(string key)
        {
            if (!root.TryGetProperty(key, out var v)) return null;
            return v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                JsonValueKind.Null => null,
                _ => throw new TokenizerFormatException($"{file}: key '{key}' must be a string or an object with 'content'."),
            };
        }
        return o with
        {
            UnkToken = Get("unk_token") ?? o.UnkToken,
            SepToken = Get("sep_token") ?? o.SepToken,
            PadToken = Get("pad_token") ?? o.PadToken,
            ClsToken = Get("cls_token") ?? o.ClsToken,
            MaskToken = Get("mask_token") ?? o.MaskToken,
        };
    }

    /// <summary>
    /// Loads an HF <c>tokenizer.json</c>. Supported: model WordPiece, normalizer BertNormalizer (or null),
    /// pre_tokenizer BertPreTokenizer, post_processor TemplateProcessing / BertProcessing (or null), decoder
    /// WordPiece (or null), added_tokens with normalized=false. Anything else → <see cref="NotSupportedException"/>.
    /// </summary>
    public static BertTokenizer FromTokenizerJson(string path, int? modelMaxLength = null)
    {
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{path}: expected a JSON object.");
        bool Bool(JsonElement e, string key, bool dflt, string where) => JsonBool(e, key, dflt, where, path);

        // model
        var (model, modelType) = ModelOf(root, path);
        if (modelType != "WordPiece") throw new NotSupportedException($"{path}: not supported yet: model type '{modelType}' (only WordPiece; byte-level BPE files load with ByteLevelBpeTokenizer or Tokenizer.Load).");
        var vocab = ParseVocab(model, path);
        string unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString()! : "[UNK]";
        string prefix = model.TryGetProperty("continuing_subword_prefix", out var pf) && pf.ValueKind == JsonValueKind.String ? pf.GetString()! : "##";
        int maxChars = model.TryGetProperty("max_input_chars_per_word", out var mc) && mc.ValueKind == JsonValueKind.Number ? mc.GetInt32() : 100;

        // normalizer
        NormalizerSettings? norm = null;
        if (root.TryGetProperty("normalizer", out var n) && n.ValueKind != JsonValueKind.Null)
        {
            var t = TypeOf(n);
            if (t != "BertNormalizer") throw new NotSupportedException($"{path}: not supported yet: normalizer type '{t}' (only BertNormalizer).");
            bool lower = Bool(n, "lowercase", true, "normalizer");
            norm = new NormalizerSettings(Bool(n, "clean_text", true, "normalizer"), Bool(n, "handle_chinese_chars", true, "normalizer"),
                Bool(n, "strip_accents", lower, "normalizer"), lower);
        }

        // pre-tokenizer
        if (!root.TryGetProperty("pre_tokenizer", out var pt) || pt.ValueKind == JsonValueKind.Null)
            throw new NotSupportedException($"{path}: not supported yet: a null pre_tokenizer (only BertPreTokenizer).");
        if (TypeOf(pt) != "BertPreTokenizer")
            throw new NotSupportedException($"{path}: not supported yet: pre_tokenizer type '{TypeOf(pt)}' (only BertPreTokenizer).");

        // added tokens
        var added = ParseAddedTokens(root, path, normalizerPresent: norm != null);

        // post-processor
        TemplatePiece[] single = [new(0, [], 0)], pair = [new(0, [], 0), new(1, [], 1)];
        if (root.TryGetProperty("post_processor", out var pp) && pp.ValueKind != JsonValueKind.Null)
            (single, pair) = ParseTemplate(pp, path, vocab, added)
                ?? throw new NotSupportedException($"{path}: not supported yet: post_processor type '{TypeOf(pp)}' (only TemplateProcessing, BertProcessing).");

        // decoder
        DecoderSettings? decoder = null;
        if (root.TryGetProperty("decoder", out var dec) && dec.ValueKind != JsonValueKind.Null)
        {
            if (TypeOf(dec) != "WordPiece") throw new NotSupportedException($"{path}: not supported yet: decoder type '{TypeOf(dec)}' (only WordPiece).");
            decoder = new DecoderSettings(dec.TryGetProperty("prefix", out var dp) && dp.ValueKind == JsonValueKind.String ? dp.GetString()! : "##",
                Bool(dec, "cleanup", true, "decoder"));
        }

        // truncation / padding defaults
        var (defaults, padToken) = ParseTruncationAndPadding(root, path);
        padToken ??= vocab.ContainsKey("[PAD]") ? "[PAD]" : null;
        return new BertTokenizer(vocab, norm, unk, prefix, maxChars, added, single, pair, decoder, padToken, modelMaxLength, defaults, path)
        {
            MaskToken = vocab.ContainsKey("[MASK]") || added.Any(a => a.Content == "[MASK]") ? "[MASK]" : null,
        };
    }
}
