using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.Tokenization;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer tokenize</c>: encode texts with a BERT WordPiece or GPT-2-style byte-level BPE tokenizer (chosen
/// from the files by <see cref="Tokenizer.Load"/>) and print tokens, ids and offsets as a table,
/// or (<c>--jsonl</c>) turn JSON lines from stdin into encodings, one JSON object per line, named as the HF fixtures.
/// </summary>
public static class TokenizeCommand
{
    /// <summary>Parsed command-line settings of the verb.</summary>
    public sealed record Settings(string Tokenizer, IReadOnlyList<string> Texts, string? Pair, int? MaxLength,
        TruncationStrategy Truncation, PaddingStrategy Padding, bool Jsonl)
    {
        public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;
        /// <summary>Pad token for tokenizers without one (GPT-2: usually its eos token, as HF <c>pad_token = eos_token</c>).</summary>
        public string? PadToken { get; init; }
    }

    internal static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Model directory, tokenizer.json, vocab.txt (BERT) or vocab.json (byte-level BPE, merges.txt beside it).", Required = true };
        var maxLength = new Option<int?>("--max-length") { Description = "Max tokens incl. [CLS]/[SEP]; enables longest_first truncation unless --truncation says otherwise." };
        var truncation = new Option<string?>("--truncation") { Description = "longest_first | only_first | only_second" };
        truncation.AcceptOnlyFromAmong("longest_first", "only_first", "only_second");
        var padding = new Option<string>("--padding") { Description = "none | longest | max_length", DefaultValueFactory = _ => "none" };
        padding.AcceptOnlyFromAmong("none", "longest", "max_length");
        var paddingSide = new Option<string>("--padding-side") { Description = "right | left", DefaultValueFactory = _ => "right" };
        paddingSide.AcceptOnlyFromAmong("right", "left");
        var padToken = new Option<string?>("--pad-token") { Description = "Pad token for a tokenizer that has none (GPT-2: <|endoftext|>)." };
        var pair = new Option<string?>("--pair") { Description = "Second text of a pair (applied to every TEXT)." };
        var jsonl = new Option<bool>("--jsonl") { Description = "Read {\"text\"}, {\"text\",\"text_pair\"} or {\"words\"} JSON lines from stdin; write one encoding per line." };
        var texts = new Argument<string[]>("TEXT") { Arity = ArgumentArity.ZeroOrMore, Description = "Texts to tokenize." };
        var cmd = new Command("tokenize", "Tokenize texts with a BERT WordPiece or GPT-2 byte-level BPE tokenizer (HF BertTokenizerFast / GPT2TokenizerFast-compatible).");
        cmd.Options.Add(tokenizer); cmd.Options.Add(maxLength); cmd.Options.Add(truncation); cmd.Options.Add(padding);
        cmd.Options.Add(paddingSide); cmd.Options.Add(padToken);
        cmd.Options.Add(pair); cmd.Options.Add(jsonl); cmd.Arguments.Add(texts);
        cmd.SetAction(parse =>
        {
            var trunc = parse.GetValue(truncation) switch
            {
                "longest_first" => TruncationStrategy.LongestFirst,
                "only_first" => TruncationStrategy.OnlyFirst,
                "only_second" => TruncationStrategy.OnlySecond,
                _ => parse.GetValue(maxLength) is null ? TruncationStrategy.None : TruncationStrategy.LongestFirst,
            };
            var pad = parse.GetValue(padding) switch
            {
                "longest" => PaddingStrategy.Longest,
                "max_length" => PaddingStrategy.MaxLength,
                _ => PaddingStrategy.None,
            };
            var settings = new Settings(parse.GetValue(tokenizer)!, parse.GetValue(texts) ?? [], parse.GetValue(pair),
                parse.GetValue(maxLength), trunc, pad, parse.GetValue(jsonl))
            {
                PaddingSide = parse.GetValue(paddingSide) == "left" ? PaddingSide.Left : PaddingSide.Right,
                PadToken = parse.GetValue(padToken),
            };
            return Execute(settings, CliHost.Input, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error);
        });
        return cmd;
    }

    /// <summary>Runs the verb against the given streams; returns the exit code (errors go to <paramref name="stderr"/> as one line).</summary>
    public static int Execute(Settings settings, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var tok = Tokenizer.Load(settings.Tokenizer);
            if (settings.PadToken is { } padWith)
                tok = tok is ByteLevelBpeTokenizer bpe ? bpe.WithPadToken(padWith)
                    : throw new ArgumentException("--pad-token applies to byte-level BPE tokenizers; a BERT tokenizer has its own [PAD].");
            var options = new EncodeOptions
            {
                MaxLength = settings.MaxLength, Truncation = settings.Truncation, Padding = settings.Padding, PaddingSide = settings.PaddingSide,
            };
            if (settings.Jsonl) return RunJsonl(tok, options, stdin, stdout);
            if (settings.Texts.Count == 0) throw new ArgumentException("give at least one TEXT, or --jsonl to read JSON lines from stdin.");
            var encodings = settings.Pair is null
                ? tok.EncodeBatch(settings.Texts, options)
                : tok.EncodeBatch([.. settings.Texts.Select(t => (t, settings.Pair))], options);
            for (int i = 0; i < encodings.Count; i++)
            {
                if (i > 0) stdout.WriteLine();
                WriteTable(encodings[i], settings.Texts[i], settings.Pair, stdout);
            }
            return 0;
        }
        catch (Exception e) when (e is SharpformerException or IOException or UnauthorizedAccessException or ArgumentException
                                      or FormatException or NotSupportedException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    static void WriteTable(Sharpformer.Tokenization.Encoding e, string text, string? pair, TextWriter w)
    {
        w.WriteLine($"{e.Length} tokens: {Quote(text)}{(pair is null ? "" : " | " + Quote(pair))}");
        int tokWidth = Math.Max(5, e.Tokens.Max(t => t.Length));
        w.WriteLine($"{"#",4}  {"token".PadRight(tokWidth)}  {"id",6}  type  seq  word  {"offsets",-12}  text");
        for (int i = 0; i < e.Length; i++)
        {
            var o = e.Offsets[i];
            var source = e.SequenceIds[i] == 1 ? pair! : text;
            string span = e.SequenceIds[i] is null ? "" : Quote(source[o.Start..o.End]);
            w.WriteLine($"{i,4}  {e.Tokens[i].PadRight(tokWidth)}  {e.Ids[i],6}  {e.TypeIds[i],4}  {e.SequenceIds[i]?.ToString() ?? "-",3}  {e.WordIds[i]?.ToString() ?? "-",4}  {$"[{o.Start}, {o.End})",-12}  {span}");
        }
        if (e.Overflowing.Count > 0) w.WriteLine($"({e.Overflowing.Count} overflowing window(s) not shown)");
    }

    // Quoted for the table: control and format characters shown as \uXXXX so invisible input stays visible.
    static string Quote(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length + 2).Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { sb.Append(c).Append(s[++i]); continue; }
            var cat = char.GetUnicodeCategory(c);
            if (char.IsSurrogate(c) || cat is System.Globalization.UnicodeCategory.Control or System.Globalization.UnicodeCategory.Format)
                sb.Append($"\\u{(int)c:X4}");
            else sb.Append(c);
        }
        return sb.Append('"').ToString();
    }

    // Streams line by line; only padding to the longest needs the whole input first.
    static int RunJsonl(Tokenizer tok, EncodeOptions options, TextReader stdin, TextWriter stdout)
    {
        bool buffer = options.Padding == PaddingStrategy.Longest;
        var pending = new List<Sharpformer.Tokenization.Encoding>();
        var bytes = new System.Buffers.ArrayBufferWriter<byte>();
        void Write(Sharpformer.Tokenization.Encoding e)
        {
            bytes.Clear();
            using (var j = new Utf8JsonWriter(bytes, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                WriteEncoding(j, e);
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(bytes.WrittenSpan));
        }
        int lineNo = 0;
        for (string? line; (line = stdin.ReadLine()) != null;)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var e = EncodeLine(tok, buffer ? options with { Padding = PaddingStrategy.None } : options, line, lineNo);
            if (buffer) pending.Add(e); else Write(e);
        }
        if (buffer)
        {
            tok.Pad(pending, options);
            pending.ForEach(Write);
        }
        return 0;
    }

    static Sharpformer.Tokenization.Encoding EncodeLine(Tokenizer tok, EncodeOptions options, string line, int lineNo)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new FormatException($"stdin line {lineNo}: invalid JSON ({e.Message})."); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FormatException($"stdin line {lineNo}: expected a JSON object.");
            string? Str(string key)
            {
                if (!r.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new FormatException($"stdin line {lineNo}: field '{key}' must be a string.");
            }
            if (r.TryGetProperty("words", out var words))
            {
                if (words.ValueKind != JsonValueKind.Array || words.EnumerateArray().Any(w => w.ValueKind != JsonValueKind.String))
                    throw new FormatException($"stdin line {lineNo}: field 'words' must be an array of strings.");
                return tok.EncodePretokenized([.. words.EnumerateArray().Select(w => w.GetString()!)], options);
            }
            var text = Str("text") ?? throw new FormatException($"stdin line {lineNo}: needs a 'text' (and optional 'text_pair') or a 'words' field.");
            var pair = Str("text_pair");
            return pair is null ? tok.Encode(text, options) : tok.Encode(text, pair, options);
        }
    }

    static void WriteEncoding(Utf8JsonWriter j, Sharpformer.Tokenization.Encoding e)
    {
        j.WriteStartObject();
        void Ints(string name, IReadOnlyList<int> xs) { j.WriteStartArray(name); foreach (var x in xs) j.WriteNumberValue(x); j.WriteEndArray(); }
        void Nullable(string name, IReadOnlyList<int?> xs)
        {
            j.WriteStartArray(name);
            foreach (var x in xs) if (x is int v) j.WriteNumberValue(v); else j.WriteNullValue();
            j.WriteEndArray();
        }
        Ints("ids", e.Ids);
        j.WriteStartArray("tokens"); foreach (var t in e.Tokens) j.WriteStringValue(t); j.WriteEndArray();
        Ints("type_ids", e.TypeIds);
        Ints("attention_mask", e.AttentionMask);
        Ints("special_tokens_mask", e.SpecialTokensMask);
        j.WriteStartArray("offsets");
        foreach (var o in e.Offsets) { j.WriteStartArray(); j.WriteNumberValue(o.Start); j.WriteNumberValue(o.End); j.WriteEndArray(); }
        j.WriteEndArray();
        Nullable("word_ids", e.WordIds);
        Nullable("sequence_ids", e.SequenceIds);
        j.WriteEndObject();
    }
}
