using System.Globalization;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Data;
using Sharpformer.Models;

namespace Sharpformer.Training.Workflows;

/// <summary>Settings of <see cref="ModelExport.Export"/>.</summary>
public sealed record ModelExportOptions
{
    /// <summary>How floating-point weights are stored: F16 (default; half the size, what HF loads with <c>torch_dtype=float16</c>), BF16 or F32.</summary>
    public DType DType { get; init; } = DType.F16;
    /// <summary>A config.json for a model folder that has none (a run's <c>checkpoint-&lt;step&gt;/</c> holds only weights and trainer state).</summary>
    public string? Config { get; init; }
    /// <summary>Where the tokenizer files come from; default the model folder, else a pretraining run's <c>tokenizer/</c> beside it.</summary>
    public string? TokenizerDirectory { get; init; }
    /// <summary>Replace an existing, non-empty output folder (it is swapped out whole, so no file of it survives).</summary>
    public bool Overwrite { get; init; }
    /// <summary>What goes into README.md.</summary>
    public ModelCardOptions Card { get; init; } = new();
}

/// <summary>What <see cref="ModelExport.Export"/> wrote.</summary>
/// <param name="Directory">The exported model folder.</param>
/// <param name="Architecture">config.json's <c>architectures[0]</c>.</param>
/// <param name="Parameters">Floating-point weights stored (tied copies once, buffers excluded).</param>
/// <param name="DType">How they are stored.</param>
/// <param name="WeightBytes">Size of model.safetensors.</param>
/// <param name="Files">The files of the folder, by name.</param>
/// <param name="MissingTokenizerFiles">Tokenizer files an HF tokenizer of this kind usually has but the source lacked.</param>
public sealed record ModelExportResult(string Directory, string Architecture, long Parameters, DType DType, long WeightBytes,
    IReadOnlyList<string> Files, IReadOnlyList<string> MissingTokenizerFiles);

/// <summary>A model folder cannot be exported as it is; the message names the folder and what is wrong.</summary>
public sealed class ModelExportException(string directory, string problem) : SharpformerException($"Cannot export '{directory}': {problem}")
{
    public string ModelDirectory { get; } = directory;
}

/// <summary>
/// Writes a trained model as a self-contained folder to ship: config.json (HF keys, <c>architectures</c>, <c>torch_dtype</c>),
/// model.safetensors with the weights in F16 (or BF16/F32) under HF's names, the tokenizer files, and a README.md model card
/// built from the run's metrics.jsonl and measured result files — nothing of the run's optimizer or trainer state.
/// </summary>
/// <remarks>
/// The model is loaded with its family's own loader (BERT family through <see cref="AutoModel"/>, GPT-2, the G2P
/// encoder–decoders), so a folder with missing or unexpected weights fails here rather than in the user's hands, and the
/// tensors written are exactly what that family's <c>SavePretrained</c> writes (HF's key set: tied decoder weights omitted,
/// the <c>position_ids</c> buffer kept as I64). The whole folder is written beside the target and renamed into place.
/// </remarks>
public static class ModelExport
{
    /// <summary>Files an HF BERT tokenizer folder has (vocab.txt is required; the others are listed when missing).</summary>
    public static IReadOnlyList<string> BertTokenizerFiles { get; } = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

    /// <summary>Files an HF GPT-2 tokenizer folder has (vocab.json + merges.txt, or tokenizer.json, is required).</summary>
    public static IReadOnlyList<string> Gpt2TokenizerFiles { get; } = ["vocab.json", "merges.txt", "tokenizer.json"];

    /// <summary>config.json's <c>torch_dtype</c> for a stored dtype.</summary>
    public static string TorchDTypeName(DType dtype) => dtype switch
    {
        DType.F32 => "float32", DType.F16 => "float16", DType.BF16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "export stores F32, F16 or BF16."),
    };

    /// <summary>Exports the model folder <paramref name="modelDir"/> to <paramref name="outputDir"/>.</summary>
    /// <exception cref="ModelExportException">The folder is not a complete model (no config, missing weights, no tokenizer), is int8-quantized, or the output exists.</exception>
    public static ModelExportResult Export(string modelDir, string outputDir, ModelExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        ArgumentException.ThrowIfNullOrEmpty(outputDir);
        options ??= new ModelExportOptions();
        string torchDType = TorchDTypeName(options.DType);
        if (!Directory.Exists(modelDir)) throw new ModelExportException(modelDir, "no such folder.");
        var target = Path.GetFullPath(outputDir);
        if (target == Path.GetFullPath(modelDir)) throw new ModelExportException(modelDir, "--output must be another folder than the model.");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() && !options.Overwrite)
            throw new ModelExportException(modelDir, $"the output folder '{target}' exists and is not empty; choose another or allow overwriting (--overwrite).");

        string? staging = null;
        try
        {
            string source = modelDir;
            if (options.Config is { } config)
            {
                if (!File.Exists(config)) throw new ModelExportException(modelDir, $"the config file '{config}' does not exist.");
                source = staging = Stage(modelDir, config);
            }
            else if (!File.Exists(Path.Combine(modelDir, "config.json")))
                throw new ModelExportException(modelDir, "it has no config.json (a run's checkpoint-<step>/ holds only weights); give the model's config.json (--config).");
            string tokenizerDir = options.TokenizerDirectory ?? DefaultTokenizerDirectory(modelDir);

            var family = Load(source, modelDir, torchDType);
            var missing = family.ExpectedTokenizerFiles.Where(f => !File.Exists(Path.Combine(tokenizerDir, f))).ToList();
            if (!family.HasTokenizer(tokenizerDir))
                throw new ModelExportException(modelDir, $"no tokenizer in '{tokenizerDir}' (expected {string.Join(" + ", family.RequiredTokenizerFiles)}); give the tokenizer folder (--tokenizer).");

            var tensors = family.Tensors.Select(t => t.ToFloatDType(options.DType)).ToList();
            long parameters = tensors.Where(t => DTypes.IsFloatingPoint(t.DType)).Sum(t => t.ElementCount);
            long weightBytes = SafeTensorsWriter.ToBytes(tensors).LongLength;
            var facts = new ExportFacts(Path.GetFileName(target), family.Architecture, family.ConfigNode, parameters, options.DType, weightBytes, ModelStep(modelDir));
            var card = ModelCard.Write(facts, options.Card, RunDirectoryOf(modelDir, options.Card));
            PretrainedModel.SaveFiles(target, family.ConfigJson, tensors, tokenizerDir, family.TokenizerFiles.Concat(family.ExtraFiles).ToList(),
                new Dictionary<string, string> { ["README.md"] = card }, replace: true);
            return new ModelExportResult(target, family.Architecture, parameters, options.DType, new FileInfo(Path.Combine(target, "model.safetensors")).Length,
                Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList()!, missing);
        }
        finally
        {
            if (staging != null) Directory.Delete(staging, recursive: true);
        }
    }

    // A model folder of its own for a checkpoint without config.json: the given config beside the checkpoint's weight file.
    static string Stage(string modelDir, string config)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharpformer-export-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        File.Copy(config, Path.Combine(dir, "config.json"));
        var weights = AutoModel.FindCheckpoint(modelDir);
        if (weights.EndsWith(".index.json", StringComparison.Ordinal)) throw new ModelExportException(modelDir, "a sharded checkpoint needs its own config.json; --config works for single-file checkpoints.");
        File.Copy(weights, Path.Combine(dir, Path.GetFileName(weights)));
        return dir;
    }

    /// <summary>The model folder when it has tokenizer files, else a pretraining run's <c>tokenizer/</c> beside a <c>checkpoint-&lt;step&gt;/</c>.</summary>
    static string DefaultTokenizerDirectory(string modelDir)
    {
        string[] any = ["vocab.txt", "tokenizer.json", "vocab.json"];
        if (any.Any(f => File.Exists(Path.Combine(modelDir, f)))) return modelDir;
        var parent = Path.GetDirectoryName(Path.GetFullPath(modelDir));
        var run = parent is null ? null : Path.Combine(parent, Pretraining.TokenizerSubdirectory);
        return run != null && Directory.Exists(run) ? run : modelDir;
    }

    /// <summary>The run whose metrics.jsonl describes the model: the card's, else the model folder, else the run a checkpoint-&lt;step&gt;/ belongs to.</summary>
    static string? RunDirectoryOf(string modelDir, ModelCardOptions card)
    {
        if (card.RunDirectory != null) return card.RunDirectory;
        if (File.Exists(Path.Combine(modelDir, ModelCard.MetricsFile))) return modelDir;
        var parent = Path.GetDirectoryName(Path.GetFullPath(modelDir));
        return IsCheckpointFolder(modelDir) && parent != null && File.Exists(Path.Combine(parent, ModelCard.MetricsFile)) ? parent : null;
    }

    static bool IsCheckpointFolder(string dir) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))).StartsWith("checkpoint-", StringComparison.Ordinal);

    /// <summary>The optimizer step a <c>checkpoint-&lt;step&gt;/</c> was saved at; null for a final model folder (its run's last step).</summary>
    static long? ModelStep(string modelDir) =>
        IsCheckpointFolder(modelDir) && long.TryParse(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)))["checkpoint-".Length..], out var step) ? step : null;

    sealed record Family(string Architecture, string ConfigJson, JsonObject ConfigNode, IReadOnlyList<CheckpointTensor> Tensors,
        IReadOnlyList<string> TokenizerFiles, IReadOnlyList<string> ExtraFiles, IReadOnlyList<string> RequiredTokenizerFiles, Func<string, bool> HasTokenizer)
    {
        /// <summary>The tokenizer files HF's tokenizer of this family usually has (the ones reported missing).</summary>
        public IReadOnlyList<string> ExpectedTokenizerFiles { get; init; } = [];
    }

    // Each family through its own loader, so the tensors are what its SavePretrained writes and a gap in the weights is an error.
    static Family Load(string source, string modelDir, string torchDType)
    {
        if (G2PTraining.IsModelDirectory(source))
        {
            var (model, _) = G2PTraining.Load(source);
            var node = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!;
            node["torch_dtype"] = torchDType;
            var tensors = model.Module.NamedParameters().Select(p => CheckpointTensor.FromFloat32(p.Name, p.Parameter.Value.Contiguous().ToArray(), p.Parameter.Value.ShapeArray)).ToList();
            string arch = node["architectures"] is JsonArray { Count: > 0 } a ? (string)a[0]! : (string)node["model_type"]!;
            // The G2P vocabulary is the model's own file (the saved folder's), not a tokenizer folder's.
            return new Family(arch, node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n", node, tensors,
                [], [G2PVocabulary.FileName], [G2PVocabulary.FileName], _ => File.Exists(Path.Combine(source, G2PVocabulary.FileName)));
        }
        var config = ModelConfigLoader.Load(source);
        if (DynamicQuantization.IsQuantizedConfig(config))
            throw new ModelExportException(modelDir, "it is int8-quantized; export the float model it was made from.");
        if (config is Gpt2Config)
        {
            var model = Gpt2LMHeadModel.FromPretrained(source);
            RequireComplete(model.LoadReport, modelDir, "GPT2LMHeadModel");
            var c = model.Config with { Architectures = ["GPT2LMHeadModel"], TorchDType = torchDType };
            return new Family("GPT2LMHeadModel", c.ToJsonString(), Node(c.ToJsonString()), Gpt2Loading.Tensors(model),
                Gpt2Loading.TokenizerFiles, [], ["vocab.json + merges.txt", "tokenizer.json"],
                d => File.Exists(Path.Combine(d, "tokenizer.json")) || (File.Exists(Path.Combine(d, "vocab.json")) && File.Exists(Path.Combine(d, "merges.txt"))))
            { ExpectedTokenizerFiles = Gpt2TokenizerFiles };
        }
        var bert = AutoModel.FromPretrained(source, config);
        RequireComplete(bert.LoadReport, modelDir, bert.Architecture);
        var json = (bert.ModelConfig with { Architectures = [bert.Architecture], TorchDType = torchDType }).ToJsonString();
        return new Family(bert.Architecture, json, Node(json), bert.ToCheckpointTensors(), PretrainedModel.TokenizerFiles, [], ["vocab.txt"],
            d => File.Exists(Path.Combine(d, "vocab.txt"))) { ExpectedTokenizerFiles = BertTokenizerFiles };
    }

    static JsonObject Node(string json) => (JsonObject)JsonNode.Parse(json)!;

    static void RequireComplete(Nn.LoadReport? report, string modelDir, string architecture)
    {
        if (report is null || report.Missing.Count == 0 && report.ShapeMismatched.Count == 0) return;
        var names = report.Missing.Concat(report.ShapeMismatched.Select(m => m.ToString())).ToList();
        throw new ModelExportException(modelDir, $"its weights do not fill {architecture}: {names.Count} parameter(s) missing or of another shape, first '{names[0]}'; shipping it would ship random weights.");
    }
}

/// <summary>The measured facts about an exported model that its card states.</summary>
internal sealed record ExportFacts(string Name, string Architecture, JsonObject Config, long Parameters, DType DType, long WeightBytes, long? Step);

/// <summary>What a model card holds beyond the facts of the export itself.</summary>
public sealed record ModelCardOptions
{
    /// <summary>The card's title; default the output folder's name.</summary>
    public string? Title { get; init; }
    /// <summary>The training run folder holding metrics.jsonl; default the model folder, or the run of a <c>checkpoint-&lt;step&gt;/</c>.</summary>
    public string? RunDirectory { get; init; }
    /// <summary>A Markdown file describing the data, the compute and the commands, included as written.</summary>
    public string? NotesFile { get; init; }
    /// <summary>Measured results (JSON objects, or arrays of them, as the CLI's <c>--json</c> output) shown as tables.</summary>
    public IReadOnlyList<string> ResultFiles { get; init; } = [];
    /// <summary>Tokens per optimizer update (batch × accumulation × block), to state the tokens seen; omitted when unknown.</summary>
    public long? TokensPerStep { get; init; }
}

/// <summary>
/// Writes README.md for an exported model from measured sources only: the export (architecture, sizes, dtype), the run's
/// metrics.jsonl and the result files given. A figure with no source is left out, never estimated.
/// </summary>
public static class ModelCard
{
    /// <summary>The run log read for the training figures.</summary>
    public const string MetricsFile = "metrics.jsonl";

    internal static string Write(ExportFacts facts, ModelCardOptions options, string? runDirectory)
    {
        var sb = new System.Text.StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append("# ").Append(options.Title ?? facts.Name).Append("\n\n");
        sb.Append("| | |\n|---|---|\n");
        sb.Append("| architecture | `").Append(facts.Architecture).Append("` (model_type `").Append((string?)facts.Config["model_type"] ?? "?").Append("`) |\n");
        foreach (var key in new[] { "num_hidden_layers", "n_layer", "hidden_size", "n_embd", "num_attention_heads", "n_head", "intermediate_size", "vocab_size",
                     "max_position_embeddings", "n_positions", "embedding_dim", "encoder_hidden", "decoder_hidden", "attention_units", "d_model", "num_encoder_layers", "num_decoder_layers" })
            if (facts.Config[key] is JsonValue v) sb.Append("| ").Append(key).Append(" | ").Append(v.ToJsonString()).Append(" |\n");
        if (facts.Config["id2label"] is JsonObject labels)
            sb.Append("| labels | ").Append(string.Join(", ", labels.Select(l => $"`{(string?)l.Value}`"))).Append(" |\n");
        sb.Append(string.Create(inv, $"| parameters | {facts.Parameters:N0} |\n"));
        sb.Append(string.Create(inv, $"| weights | model.safetensors, {facts.DType} ({ModelExport.TorchDTypeName(facts.DType)}), {facts.WeightBytes:N0} bytes ({facts.WeightBytes / 1048576.0:F1} MiB) |\n\n"));

        sb.Append("## Use\n\n").Append(Usage(facts)).Append('\n');

        if (options.NotesFile is { } notes)
        {
            if (!File.Exists(notes)) throw new FileNotFoundException($"the model card notes file '{notes}' does not exist.", notes);
            sb.Append("## Data, compute and commands\n\n").Append(File.ReadAllText(notes).TrimEnd()).Append("\n\n");
        }

        if (runDirectory != null) Training(sb, runDirectory, facts, options.TokensPerStep);

        if (options.ResultFiles.Count > 0)
        {
            sb.Append("## Results\n\nMeasured, as printed by the commands (one table per file).\n\n");
            foreach (var file in options.ResultFiles) ResultTable(sb, file);
        }
        return sb.ToString();
    }

    static string Usage(ExportFacts f)
    {
        string dir = $"models/{f.Name}";
        return f.Architecture switch
        {
            "BertForMaskedLM" => $"```sh\n./sharpformer fill-mask --model {dir} \"the capital of france is [MASK].\"\n```\n\n" +
                                 $"```python\nfrom transformers import BertForMaskedLM, BertTokenizerFast\nmodel = BertForMaskedLM.from_pretrained(\"{dir}\")\ntokenizer = BertTokenizerFast.from_pretrained(\"{dir}\")\n```\n",
            "BertForTokenClassification" => $"```sh\n./sharpformer ner --model {dir} \"George Washington went to Washington.\"\n```\n\n" +
                                 $"```python\nfrom transformers import BertForTokenClassification, BertTokenizerFast\nmodel = BertForTokenClassification.from_pretrained(\"{dir}\")\ntokenizer = BertTokenizerFast.from_pretrained(\"{dir}\")\n```\n",
            "GPT2LMHeadModel" => $"```sh\n./sharpformer generate --model {dir} \"The history of\"\n```\n\n" +
                                 $"```python\nfrom transformers import GPT2LMHeadModel, GPT2TokenizerFast\nmodel = GPT2LMHeadModel.from_pretrained(\"{dir}\")\ntokenizer = GPT2TokenizerFast.from_pretrained(\"{dir}\")\n```\n",
            _ when f.Config["model_type"] is JsonValue t && ((string?)t ?? "").EndsWith("seq2seq", StringComparison.Ordinal) =>
                $"```sh\n./sharpformer g2p --model {dir} phoneme attention\n```\n",
            _ => $"```sh\n./sharpformer info --model {dir}\n```\n",
        };
    }

    // The run's records up to the exported step: the last "log" (training loss), the last "eval" and the train_end wall times.
    static void Training(System.Text.StringBuilder sb, string runDirectory, ExportFacts facts, long? tokensPerStep)
    {
        var path = Path.Combine(runDirectory, MetricsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"the run folder '{runDirectory}' has no {MetricsFile}.", path);
        JsonObject? lastLog = null, lastEval = null;
        double trainSeconds = 0; int ends = 0; long lastStep = 0;
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            JsonObject record;
            try { record = JsonNode.Parse(line) as JsonObject ?? throw new DataFormatException(path, lineNo, "not a JSON object."); }
            catch (System.Text.Json.JsonException e) { throw new DataFormatException(path, lineNo, $"not JSON ({e.Message})."); }
            long step = record["step"] is JsonValue s && s.TryGetValue<long>(out var st) ? st : 0;
            if (facts.Step is long max && step > max) continue;
            lastStep = Math.Max(lastStep, step);
            switch ((string?)record["kind"])
            {
                case "log": lastLog = record; break;
                case "eval": lastEval = record; break;
                case "train_end" when record["train_seconds"] is JsonValue ts && ts.TryGetValue<double>(out var sec): trainSeconds += sec; ends++; break;
            }
        }
        var inv = CultureInfo.InvariantCulture;
        sb.Append("## Training run\n\nFrom `").Append(MetricsFile).Append("` of the run");
        sb.Append(facts.Step is long at ? string.Create(inv, $" (records up to step {at}, the step of the exported checkpoint)") : "")
            .Append("; evaluation = the run's evaluation set (pretraining: the held-out every 100th corpus line; fine-tuning: its evaluation file).\n\n");
        sb.Append("| | |\n|---|---|\n");
        long steps = facts.Step ?? lastStep;
        sb.Append(string.Create(inv, $"| optimizer updates | {steps:N0} |\n"));
        if (tokensPerStep is long t) sb.Append(string.Create(inv, $"| tokens seen | {steps * t:N0} ({steps:N0} updates × {t:N0} tokens) |\n"));
        if (ends > 0) sb.Append(string.Create(inv, $"| training wall time | {trainSeconds / 3600:F2} h ({trainSeconds:F0} s, sum of {ends} train_end record(s)) |\n"));
        if (lastLog?["train_loss"] is JsonValue tl && tl.TryGetValue<double>(out var trainLoss))
            sb.Append(string.Create(inv, $"| training loss (last log, step {(long?)lastLog["step"]}) | {trainLoss:F4} |\n"));
        if (lastEval != null)
        {
            long evalStep = (long?)lastEval["step"] ?? 0;
            foreach (var (key, value) in lastEval)
            {
                if (!key.StartsWith("eval_", StringComparison.Ordinal) || key.EndsWith("_per_s", StringComparison.Ordinal)) continue;
                if (value is not JsonValue v || !v.TryGetValue<double>(out var x)) continue;
                sb.Append(string.Create(inv, $"| evaluation {key[5..]} (step {evalStep}) | {x:F4} |\n"));
                // Perplexity is exp of the mean token cross-entropy: meaningful for the language-model objectives only.
                if (key == "eval_loss" && facts.Architecture is "BertForMaskedLM" or "GPT2LMHeadModel")
                    sb.Append(string.Create(inv, $"| evaluation perplexity = exp(loss) (step {evalStep}) | {Math.Exp(x):F2} |\n"));
            }
        }
        sb.Append('\n');
    }

    // One table per file: a JSON object is one row, an array of objects one row each; columns are their scalar fields.
    static void ResultTable(System.Text.StringBuilder sb, string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"the result file '{file}' does not exist.", file);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(file)); }
        catch (System.Text.Json.JsonException e) { throw new DataFormatException(file, 1, $"a result file must be one JSON object or array ({e.Message})."); }
        var rows = node switch
        {
            JsonObject o => [o],
            JsonArray a when a.All(x => x is JsonObject) => a.Select(x => (JsonObject)x!).ToList(),
            _ => throw new DataFormatException(file, 1, "a result file must be a JSON object or an array of objects."),
        };
        var columns = rows.SelectMany(r => r.Where(p => p.Value is JsonValue).Select(p => p.Key)).Distinct().ToList();
        sb.Append("`").Append(Path.GetFileName(file)).Append("`\n\n");
        sb.Append("| ").Append(string.Join(" | ", columns)).Append(" |\n|").Append(string.Concat(columns.Select(_ => "---|"))).Append('\n');
        foreach (var r in rows)
            sb.Append("| ").Append(string.Join(" | ", columns.Select(c => r[c] is JsonValue v ? Cell(v) : ""))).Append(" |\n");
        sb.Append('\n');
    }

    static string Cell(JsonValue v) =>
        v.TryGetValue<long>(out var i) ? i.ToString(CultureInfo.InvariantCulture)
        : v.TryGetValue<double>(out var d) ? d.ToString("0.####", CultureInfo.InvariantCulture)
        : v.TryGetValue<string>(out var s) ? s.Replace("|", "\\|") : v.ToJsonString();
}
