using System.CommandLine;
using System.Text.Json;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Tokenization;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer forward --model &lt;dir|id&gt; [--outputs …] [texts…]</c>: texts as arguments, or (none given, stdin
/// redirected, or <c>--jsonl</c>) one JSON object per stdin line (<c>{"text": …, "text_pair": …}</c>) in; one JSON object per line out with <c>tokens</c> and the requested outputs,
/// shaped as transformers returns them with the batch dimension dropped.
/// </summary>
internal static class ForwardCommand
{
    /// <summary>Output names accepted by --outputs.</summary>
    public static readonly string[] OutputNames = ["last_hidden_state", "pooler_output", "logits", "hidden_states", "attentions"];

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json, weights, vocab.txt) or Hub model id in the local cache.", Required = true };
        var jsonl = new Option<bool>("--jsonl") { Description = "Read JSON lines {\"text\": …, \"text_pair\": …} from stdin (the default when no texts are given and stdin is not a terminal)." };
        var outputs = new Option<string?>("--outputs") { Description = $"Comma-separated: {string.Join(", ", OutputNames)} (default: logits for head models, last_hidden_state otherwise)." };
        var threads = ThreadsOption.Create();
        var texts = new Argument<string[]>("texts") { Description = "Texts to run; none = JSON lines from stdin.", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("forward", "Run a model on texts (arguments, or JSON lines from stdin) and print its outputs as JSON lines.");
        cmd.Options.Add(model); cmd.Options.Add(jsonl); cmd.Options.Add(outputs); cmd.Options.Add(threads);
        cmd.Arguments.Add(texts);
        cmd.SetAction(r =>
        {
            var execution = ThreadsOption.Read(r, threads);
            var args = r.GetValue(texts) ?? [];
            var (stdout, stderr) = (r.InvocationConfiguration.Output, r.InvocationConfiguration.Error);
            if (args.Length > 0)
            {
                if (r.GetValue(jsonl)) throw new ArgumentException("give texts as arguments or JSON lines on stdin (--jsonl), not both.");
                return Execute(r.GetValue(model)!, r.GetValue(outputs), args.Select(t => (t, (string?)null)), stdout, stderr, execution);
            }
            if (!r.GetValue(jsonl) && !CliHost.InputRedirected)
                throw new ArgumentException("no input: give texts as arguments, or pipe JSON lines {\"text\": …} into stdin.");
            return Execute(r.GetValue(model)!, r.GetValue(outputs), CliHost.Input, stdout, stderr, execution);
        });
        return cmd;
    }

    /// <summary>The verb over readers/writers (tests run it in-process): exit 0, or 1 with one <c>error:</c> line on stderr.</summary>
    internal static int Execute(string modelPath, string? outputList, TextReader stdin, TextWriter stdout, TextWriter stderr,
        Tensors.ExecutionOptions? execution = null, CancellationToken cancellationToken = default) =>
        Execute(modelPath, outputList, JsonLines(stdin), stdout, stderr, execution, cancellationToken);

    static int Execute(string modelPath, string? outputList, IEnumerable<(string Text, string? Pair)> inputs, TextWriter stdout, TextWriter stderr,
        Tensors.ExecutionOptions? execution = null, CancellationToken cancellationToken = default)
    {
        try { return Run(modelPath, outputList, inputs, stdout, stderr, execution ?? Tensors.ExecutionOptions.Default, cancellationToken); }
        catch (Exception e) when (e is SharpformerException or IOException or UnauthorizedAccessException or ArgumentException or FormatException or NotSupportedException)
        {
            stdout.Flush();
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    static IEnumerable<(string Text, string? Pair)> JsonLines(TextReader input)
    {
        int lineNo = 0;
        for (string? line; (line = input.ReadLine()) != null;)
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            yield return ParseLine(line, lineNo);
        }
    }

    static int Run(string modelPath, string? outputList, IEnumerable<(string Text, string? Pair)> inputs, TextWriter output, TextWriter error,
        Tensors.ExecutionOptions execution, CancellationToken cancellationToken = default)
    {
        var model = AutoModel.FromPretrained(modelPath, new ModelLoadOptions { Execution = execution });
        CliErrors.WarnAboutLoad(model, error);
        var dir = AutoModel.ResolveDirectory(modelPath);
        bool isHead = model.Head != null;
        var wanted = (outputList ?? (isHead ? "logits" : "last_hidden_state")).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (var w in wanted)
        {
            if (!OutputNames.Contains(w)) throw new ArgumentException($"--outputs: unknown output '{w}'; choose from {string.Join(", ", OutputNames)}.");
            if (w == "logits" && !isHead) throw new ArgumentException($"--outputs logits: {model.Architecture} has no head; ask for last_hidden_state.");
            if (w == "pooler_output" && !HasPooler(model)) throw new ArgumentException($"--outputs pooler_output: {model.Architecture} has no pooler.");
        }
        if (!File.Exists(Path.Combine(dir, "vocab.txt")) && !File.Exists(Path.Combine(dir, "tokenizer.json")))
            throw new FileNotFoundException($"No tokenizer in '{dir}' (vocab.txt or tokenizer.json); forward tokenizes with the model's own tokenizer.");
        var tokenizer = BertTokenizer.FromDirectory(dir);
        int maxLength = Math.Min(tokenizer.ModelMaxLength ?? int.MaxValue, model.MaxPositions);
        var encodeOptions = new EncodeOptions { Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength };
        bool useTypes = model.ModelType == "bert";
        var collator = new PaddingCollator(tokenizer.PadTokenId ?? 0);
        var options = new ForwardOptions(wanted.Contains("hidden_states"), wanted.Contains("attentions"));

        using var noGrad = Autograd.NoGrad();
        foreach (var (text, pair) in inputs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var enc = pair == null ? tokenizer.Encode(text, encodeOptions) : tokenizer.Encode(text, pair, encodeOptions);
            var (logits, _, encoder) = model.Run(collator.Collate([enc]).ToEncoderInput(useTypes), options);
            var json = new MemoryStream();
            using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteStartArray("tokens");
                foreach (var t in enc.Tokens) w.WriteStringValue(t);
                w.WriteEndArray();
                foreach (var name in wanted)
                {
                    w.WritePropertyName(name);
                    switch (name)
                    {
                        case "logits": WriteTensor(w, logits!, name); break;
                        case "last_hidden_state": WriteTensor(w, encoder.LastHiddenState, name); break;
                        case "pooler_output": WriteTensor(w, encoder.PoolerOutput!, name); break;
                        case "hidden_states": WriteList(w, encoder.HiddenStates!, name); break;
                        case "attentions": WriteList(w, encoder.Attentions!, name); break;
                    }
                }
                w.WriteEndObject();
            }
            output.WriteLine(System.Text.Encoding.UTF8.GetString(json.GetBuffer(), 0, (int)json.Length));
        }
        output.Flush();
        return 0;
    }

    static (string Text, string? Pair) ParseLine(string line, int lineNo)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw new FormatException($"stdin line {lineNo}: expected an object with a string \"text\" field, e.g. {{\"text\": \"hello\"}}.");
            string? pair = null;
            if (root.TryGetProperty("text_pair", out var p) && p.ValueKind != JsonValueKind.Null)
                pair = p.ValueKind == JsonValueKind.String ? p.GetString() : throw new FormatException($"stdin line {lineNo}: \"text_pair\" must be a string or null.");
            return (t.GetString()!, pair);
        }
        catch (JsonException e)
        {
            throw new FormatException($"stdin line {lineNo}: not valid JSON ({e.Message}).", e);
        }
    }

    static bool HasPooler(PretrainedModel m) => m switch
    {
        BertModel b => b.Pooler != null,
        BertForSequenceClassification => true,
        _ => false,
    };

    /// <summary>hidden_states / attentions: a list over layers of the per-layer tensors, each without the batch dimension.</summary>
    static void WriteList(Utf8JsonWriter w, IReadOnlyList<Tensor> tensors, string name)
    {
        w.WriteStartArray();
        for (int i = 0; i < tensors.Count; i++) WriteTensor(w, tensors[i], $"{name}[{i}]");
        w.WriteEndArray();
    }

    /// <summary>Writes a tensor as nested arrays without its batch dimension; NaN/∞ (not JSON numbers) is a typed error naming the output.</summary>
    static void WriteTensor(Utf8JsonWriter w, Tensor t, string name)
    {
        var data = t.Contiguous().ToArray();
        NonFiniteOutputException.ThrowIfNotFinite(data, name);
        var shape = t.ShapeArray[1..];
        int pos = 0;
        Write(0);
        void Write(int dim)
        {
            if (dim == shape.Length) { w.WriteNumberValue(data[pos++]); return; }
            w.WriteStartArray();
            for (int i = 0; i < shape[dim]; i++) Write(dim + 1);
            w.WriteEndArray();
        }
    }
}
