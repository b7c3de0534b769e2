using System.Text.Json;

namespace Sharpformer.Tokenization;

// The parts of HF tokenizer.json / tokenizer_config.json that do not depend on the model type.
public abstract partial class Tokenizer
{
    /// <summary>
    /// Loads any supported tokenizer from a model directory, a <c>tokenizer.json</c>, a <c>vocab.txt</c> (BERT) or a
    /// <c>vocab.json</c> (byte-level BPE, with <c>merges.txt</c> beside it): the model type in tokenizer.json
    /// (WordPiece or BPE) or the files present choose between <see cref="BertTokenizer"/> and <see cref="ByteLevelBpeTokenizer"/>.
    /// </summary>
    public static Tokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string? json = null;
        if (Directory.Exists(path))
        {
            var candidate = Path.Combine(path, "tokenizer.json");
            if (File.Exists(candidate)) json = candidate;
            else if (File.Exists(Path.Combine(path, "merges.txt")) && File.Exists(Path.Combine(path, "vocab.json")))
                return ByteLevelBpeTokenizer.FromDirectory(path);
            else return BertTokenizer.FromDirectory(path);
        }
        else if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(path))
        {
            if (Path.GetFileName(path).Equals("vocab.json", StringComparison.OrdinalIgnoreCase)) return ByteLevelBpeTokenizer.FromPath(path);
            json = path;
        }
        if (json == null) return BertTokenizer.FromPath(path);
        using var doc = ParseJson(json);
        var (_, type) = ModelOf(doc.RootElement, json);
        if (type != "BPE") return Directory.Exists(path) ? BertTokenizer.FromDirectory(path) : BertTokenizer.FromTokenizerJson(json);
        return Directory.Exists(path) ? ByteLevelBpeTokenizer.FromDirectory(path) : ByteLevelBpeTokenizer.FromTokenizerJson(json);
    }

    private protected static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new TokenizerFormatException($"{path}: invalid JSON ({e.Message}).", e); }
    }

    private protected static string TokenContent(JsonElement v, string file, string key) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString()!,
        _ => throw new TokenizerFormatException($"{file}: {key} must be a string or an object with 'content'."),
    };

    private protected static string? TypeOf(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;

    private protected static bool JsonBool(JsonElement e, string key, bool dflt, string where, string path)
    {
        if (!e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return dflt;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new TokenizerFormatException($"{path}: {where}.{key} must be true or false."),
        };
    }

    /// <summary>The <c>model</c> object and its type; older files omit "type" (serde untagged), so it is inferred from the fields.</summary>
    private protected static (JsonElement Model, string Type) ModelOf(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{path}: expected a JSON object.");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{path}: missing 'model' object.");
        var modelType = TypeOf(model);
        if (modelType == null)
        {
            if (model.TryGetProperty("merges", out _)) modelType = "BPE";
            else if (model.TryGetProperty("vocab", out var vv) && vv.ValueKind == JsonValueKind.Array) modelType = "Unigram";
            else if (model.TryGetProperty("continuing_subword_prefix", out _) || model.TryGetProperty("max_input_chars_per_word", out _)) modelType = "WordPiece";
            else modelType = "WordLevel";
        }
        return (model, modelType);
    }

    /// <summary><c>model.vocab</c> as token → id.</summary>
    private protected static Dictionary<string, int> ParseVocab(JsonElement model, string path, string key = "model.vocab")
    {
        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{path}: {key} must be an object of token → id.");
        return ParseVocabObject(vocabEl, path, key);
    }

    private protected static Dictionary<string, int> ParseVocabObject(JsonElement vocabEl, string path, string key)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabEl.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var id) || id < 0)
                throw new TokenizerFormatException($"{path}: {key}['{p.Name}'] must be a non-negative integer id (got {p.Value.GetRawText()}).");
            vocab[p.Name] = id;
        }
        return vocab;
    }

    /// <summary><c>added_tokens</c>; with a normalizer, tokens matched after normalization are not supported.</summary>
    private protected static List<AddedToken> ParseAddedTokens(JsonElement root, string path, bool normalizerPresent)
    {
        var added = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var at) || at.ValueKind != JsonValueKind.Array) return added;
        int i = 0;
        foreach (var a in at.EnumerateArray())
        {
            if (!a.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
                throw new TokenizerFormatException($"{path}: added_tokens[{i}] needs a string 'content'.");
            if (!a.TryGetProperty("id", out var idEl) || idEl.ValueKind != JsonValueKind.Number || !idEl.TryGetInt32(out var id) || id < 0)
                throw new TokenizerFormatException($"{path}: added_tokens[{i}] ('{c.GetString()}') needs a non-negative integer 'id' (got {(idEl.ValueKind == JsonValueKind.Undefined ? "none" : idEl.GetRawText())}).");
            string where = $"added_tokens[{i}]";
            bool special = JsonBool(a, "special", false, where, path);
            var tok = new AddedToken(id, c.GetString()!, special, JsonBool(a, "normalized", !special, where, path),
                JsonBool(a, "lstrip", false, where, path), JsonBool(a, "rstrip", false, where, path), JsonBool(a, "single_word", false, where, path));
            if (tok.Normalized && normalizerPresent)
                throw new NotSupportedException($"{path}: not supported yet: added_tokens[{i}] ('{tok.Content}') with normalized=true (matched after normalization).");
            added.Add(tok);
            i++;
        }
        return added;
    }

    private protected static TemplatePiece[] BertTemplate(int cls, int sep, bool pair) => pair
        ? [new(-1, [cls], 0), new(0, [], 0), new(-1, [sep], 0), new(1, [], 1), new(-1, [sep], 1)]
        : [new(-1, [cls], 0), new(0, [], 0), new(-1, [sep], 0)];

    /// <summary>A <c>TemplateProcessing</c> or <c>BertProcessing</c> post-processor as single/pair templates; null for other types.</summary>
    private protected static (TemplatePiece[] Single, TemplatePiece[] Pair)? ParseTemplate(JsonElement pp, string path,
        Dictionary<string, int> vocab, List<AddedToken> added)
    {
        int TokenId(JsonElement x, string where) =>
            x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var id) && id >= 0 ? id
                : throw new TokenizerFormatException($"{path}: {where} must be a non-negative integer token id (got {x.GetRawText()}).");
        int IdOf(string token, string where) => vocab.TryGetValue(token, out var id) ? id
            : added.FirstOrDefault(a => a.Content == token)?.Id ?? throw new TokenizerFormatException($"{path}: {where}: token '{token}' is not in the vocabulary.");
        switch (TypeOf(pp))
        {
            case "BertProcessing":
                {
                    int Get(string key)
                    {
                        if (!pp.TryGetProperty(key, out var arr) || arr.ValueKind != JsonValueKind.Array || arr.GetArrayLength() != 2)
                            throw new TokenizerFormatException($"{path}: post_processor.{key} must be [token, id].");
                        return TokenId(arr[1], $"post_processor.{key}[1]");
                    }
                    int cls = Get("cls"), sep = Get("sep");
                    return (BertTemplate(cls, sep, false), BertTemplate(cls, sep, true));
                }
            case "TemplateProcessing":
                {
                    var specials = new Dictionary<string, int[]>();
                    if (pp.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
                        foreach (var s in st.EnumerateObject())
                            specials[s.Name] = s.Value.TryGetProperty("ids", out var ids) && ids.ValueKind == JsonValueKind.Array
                                ? [.. ids.EnumerateArray().Select(x => TokenId(x, $"post_processor.special_tokens.{s.Name}.ids"))]
                                : [IdOf(s.Name, "post_processor.special_tokens")];
                    TemplatePiece[] Parse(string key)
                    {
                        if (!pp.TryGetProperty(key, out var arr) || arr.ValueKind != JsonValueKind.Array)
                            throw new TokenizerFormatException($"{path}: post_processor.{key} must be an array of pieces.");
                        var pieces = new List<TemplatePiece>();
                        foreach (var piece in arr.EnumerateArray())
                        {
                            if (piece.TryGetProperty("Sequence", out var seq))
                                pieces.Add(new(seq.GetProperty("id").GetString() == "B" ? 1 : 0, [], seq.TryGetProperty("type_id", out var ti) ? ti.GetInt32() : 0));
                            else if (piece.TryGetProperty("SpecialToken", out var sp))
                            {
                                var name = sp.GetProperty("id").GetString()!;
                                pieces.Add(new(-1, specials.TryGetValue(name, out var ids) ? ids : [IdOf(name, $"post_processor.{key}")],
                                    sp.TryGetProperty("type_id", out var ti) ? ti.GetInt32() : 0));
                            }
                            else throw new TokenizerFormatException($"{path}: post_processor.{key}: each piece must be {{\"Sequence\":…}} or {{\"SpecialToken\":…}}.");
                        }
                        return [.. pieces];
                    }
                    return (Parse("single"), Parse("pair"));
                }
            default:
                return null;
        }
    }

    /// <summary>The <c>truncation</c> and <c>padding</c> sections as default options, and the padding section's pad token.</summary>
    private protected static (EncodeOptions Defaults, string? PadToken) ParseTruncationAndPadding(JsonElement root, string path)
    {
        var defaults = EncodeOptions.Default;
        string? padToken = null;
        if (root.TryGetProperty("truncation", out var tr) && tr.ValueKind == JsonValueKind.Object)
        {
            var strategy = tr.TryGetProperty("strategy", out var s) ? s.GetString() : "LongestFirst";
            defaults = defaults with
            {
                Truncation = strategy switch
                {
                    "LongestFirst" => TruncationStrategy.LongestFirst,
                    "OnlyFirst" => TruncationStrategy.OnlyFirst,
                    "OnlySecond" => TruncationStrategy.OnlySecond,
                    _ => throw new TokenizerFormatException($"{path}: truncation.strategy '{strategy}' is unknown."),
                },
                MaxLength = tr.GetProperty("max_length").GetInt32(),
                Stride = tr.TryGetProperty("stride", out var sd) ? sd.GetInt32() : 0,
                TruncationSide = tr.TryGetProperty("direction", out var dir) && dir.GetString() == "Left" ? TruncationSide.Left : TruncationSide.Right,
            };
        }
        if (root.TryGetProperty("padding", out var pad) && pad.ValueKind == JsonValueKind.Object)
        {
            var strategy = pad.GetProperty("strategy");
            bool fixedLen = strategy.ValueKind == JsonValueKind.Object && strategy.TryGetProperty("Fixed", out _);
            defaults = defaults with
            {
                Padding = fixedLen ? PaddingStrategy.MaxLength : PaddingStrategy.Longest,
                MaxLength = fixedLen ? strategy.GetProperty("Fixed").GetInt32() : defaults.MaxLength,
                PaddingSide = pad.TryGetProperty("direction", out var dir) && dir.GetString() == "Left" ? PaddingSide.Left : PaddingSide.Right,
                PadToMultipleOf = pad.TryGetProperty("pad_to_multiple_of", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : null,
            };
            padToken = pad.TryGetProperty("pad_token", out var ptk) ? ptk.GetString() : null;
        }
        return (defaults, padToken);
    }
}
