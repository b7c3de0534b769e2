using Sharpformer.Checkpoints;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>A checkpoint tensor (<paramref name="Key"/>) whose shape differs from the model parameter it maps to (<paramref name="ParameterName"/>).</summary>
public sealed record ParameterShapeMismatch(string Key, string ParameterName, IReadOnlyList<int> CheckpointShape, IReadOnlyList<int> ModelShape)
{
    public override string ToString() => $"{Key}: checkpoint [{string.Join(", ", CheckpointShape)}] vs model [{string.Join(", ", ModelShape)}]";
}

/// <summary>
/// What loading a checkpoint into a model did, by parameter name (HF's "Some weights of … were not initialized" warnings, typed).
/// </summary>
/// <param name="Source">The checkpoint file.</param>
/// <param name="Loaded">Model parameters filled from the checkpoint.</param>
/// <param name="Missing">Model parameters the checkpoint lacks; they keep their fresh initialisation (normal(0, initializer_range), biases 0, LayerNorm 1/0).</param>
/// <param name="Unexpected">Checkpoint keys the model has no parameter for (e.g. a classifier when loading a bare encoder).</param>
/// <param name="ShapeMismatched">Keys whose shapes differ; only present when mismatches were allowed, the parameters then stay freshly initialised.</param>
/// <param name="Tied">Parameters shared with another (MLM decoder ↔ word embeddings), re-tied rather than loaded.</param>
/// <param name="Ignored">Checkpoint keys dropped on purpose, as HF does without warning (the <c>position_ids</c> buffer, a pooler the head does not use).</param>
public sealed record LoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<ParameterShapeMismatch> ShapeMismatched,
    IReadOnlyList<string> Tied,
    IReadOnlyList<string> Ignored)
{
    /// <summary>True when every parameter came from the checkpoint and nothing was left over.</summary>
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatched.Count == 0;

    /// <summary>HF-style warning lines (transformers' <c>modeling_utils</c> wording), empty when complete.</summary>
    /// <param name="modelName">The model class to name, e.g. "BertForSequenceClassification".</param>
    public IEnumerable<string> Warnings(string? modelName = null)
    {
        string model = modelName ?? "the model";
        if (Unexpected.Count > 0) yield return $"Some weights of the model checkpoint at '{Source}' were not used when initializing {model}: [{string.Join(", ", Unexpected)}].";
        if (Missing.Count > 0)
            yield return $"Some weights of {model} were not initialized from the model checkpoint at '{Source}' and are newly initialized: [{string.Join(", ", Missing)}]. " +
                "You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.";
        foreach (var m in ShapeMismatched) yield return $"Newly initialized because the shapes did not match: {m}.";
    }
}

/// <summary>Options for building a model or loading it from a checkpoint.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Build this class instead of config.json's <c>architectures[0]</c> (e.g. "BertModel" from a classifier checkpoint).</summary>
    public string? Architecture { get; init; }
    /// <summary>BERT only: whether the bare BertModel gets a pooler (HF's <c>add_pooling_layer</c>, default true).</summary>
    public bool AddPoolingLayer { get; init; } = true;
    /// <summary>Keep freshly initialised parameters where the checkpoint's shape differs, instead of throwing.</summary>
    public bool IgnoreMismatchedSizes { get; init; }
    /// <summary>Which checkpoint file to read when a directory has both; default prefers model.safetensors as HF does.</summary>
    public CheckpointPreference Checkpoint { get; init; } = CheckpointPreference.SafeTensorsFirst;
    /// <summary>Seed of the initialiser for parameters the checkpoint does not provide.</summary>
    public int Seed { get; init; }
    /// <summary>Override config.json's num_labels (a new head, e.g. for fine-tuning); labels become LABEL_0 … unless <see cref="Labels"/> is given.</summary>
    public int? NumLabels { get; init; }
    /// <summary>Override config.json's id2label/label2id with these names (id = position); implies num_labels = count.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
}

public enum CheckpointPreference { SafeTensorsFirst, PyTorchBinFirst, SafeTensorsOnly, PyTorchBinOnly }

/// <summary>
/// Base of every HF-compatible model: parameter names equal the checkpoint keys, so loading is a lookup by name
/// (after HF's key normalisation) and saving is its inverse.
/// </summary>
public abstract class PretrainedModel : Module
{
    /// <summary>config.json <c>model_type</c>: "bert" or "distilbert".</summary>
    public abstract string ModelType { get; }

    /// <summary>The HF class name written to config.json's <c>architectures</c>, e.g. "BertForSequenceClassification".</summary>
    public abstract string Architecture { get; }

    /// <summary>The attribute name of the encoder inside head models ("bert", "distilbert"); checkpoint keys may carry or lack it.</summary>
    public abstract string BaseModelPrefix { get; }

    /// <summary>What the last <see cref="LoadCheckpoint"/> did; null for a freshly initialised model.</summary>
    public LoadReport? LoadReport { get; private set; }

    /// <summary>Checkpoint keys that alias another parameter (tied weights): alias → parameter name.</summary>
    protected internal virtual IReadOnlyDictionary<string, string> TiedAliases { get; } = new Dictionary<string, string>();

    /// <summary>Whether an unexpected checkpoint key is dropped silently (HF's <c>_keys_to_ignore_on_load_unexpected</c>).</summary>
    protected internal virtual bool IsIgnoredUnexpected(string key) => StateDictKeys.IsIgnoredBuffer(key);

    /// <summary>Non-parameter tensors HF writes on save (BERT 4.30's <c>embeddings.position_ids</c> buffer).</summary>
    protected internal virtual IEnumerable<CheckpointTensor> ExtraSavedTensors() => [];

    /// <summary>config.json as this model would save it (unknown keys preserved, <c>architectures</c> updated).</summary>
    public abstract string ConfigJson();

    /// <summary>The vocabulary size the embedding table has rows for.</summary>
    public abstract int VocabSize { get; }

    /// <summary>The config the model was built from (BertConfig / DistilBertConfig): labels, problem type, sizes.</summary>
    public abstract ModelConfig ModelConfig { get; }

    /// <summary>Longest sequence the position table allows (config max_position_embeddings).</summary>
    public abstract int MaxPositions { get; }

    /// <summary>Class names of a classification head in id order (config id2label).</summary>
    public IReadOnlyList<string> Labels => ModelConfig.Labels;

    /// <summary>
    /// Copies a checkpoint into the parameters. Keys are normalised as HF does: legacy <c>gamma</c>/<c>beta</c> → weight/bias,
    /// the base-model prefix stripped or added to fit, tied aliases resolved.
    /// </summary>
    /// <exception cref="CheckpointShapeMismatchException">A shape differs and <paramref name="ignoreMismatchedSizes"/> is false.</exception>
    public LoadReport LoadCheckpoint(IReadOnlyDictionary<string, CheckpointTensor> checkpoint, string source, bool ignoreMismatchedSizes = false)
    {
        var parameters = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        foreach (var (name, p) in NamedParameters()) parameters.TryAdd(name, p);
        string prefix = BaseModelPrefix + ".";
        bool modelHasPrefix = parameters.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));

        var loaded = new List<string>(); var unexpected = new List<string>(); var mismatched = new List<ParameterShapeMismatch>();
        var tied = new List<string>(); var ignored = new List<string>();
        var resolved = new Dictionary<string, (string Key, CheckpointTensor Tensor)>(StringComparer.Ordinal);
        var aliasHits = new List<(string Alias, string Target, CheckpointTensor Tensor)>();

        foreach (var (rawKey, tensor) in checkpoint)
        {
            string key = StateDictKeys.FixLegacyName(rawKey);
            string? target = Resolve(key, parameters, prefix, modelHasPrefix);
            if (target != null) { resolved[target] = (rawKey, tensor); continue; }
            string? aliasTarget = ResolveAlias(key, prefix, modelHasPrefix);
            if (aliasTarget != null && parameters.ContainsKey(aliasTarget)) { aliasHits.Add((rawKey, aliasTarget, tensor)); continue; }
            if (IsIgnoredUnexpected(key)) ignored.Add(rawKey); else unexpected.Add(rawKey);
        }
        foreach (var (alias, target, tensor) in aliasHits)
        {
            // A tied alias only supplies the value when the real key is absent (a .bin keeps both, safetensors drops the alias).
            if (!resolved.ContainsKey(target)) resolved[target] = (alias, tensor);
            tied.Add(alias);
        }

        foreach (var (name, (key, tensor)) in resolved)
        {
            var p = parameters[name].Value;
            if (!tensor.Shape.SequenceEqual(p.ShapeArray)) mismatched.Add(new ParameterShapeMismatch(key, name, tensor.Shape.ToArray(), p.ShapeArray));
        }
        if (mismatched.Count > 0 && !ignoreMismatchedSizes) throw new CheckpointShapeMismatchException(source, mismatched);
        var mismatchedKeys = mismatched.Select(m => m.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, (key, tensor)) in resolved)
        {
            if (mismatchedKeys.Contains(key)) continue;
            var p = parameters[name].Value;
            tensor.CopyTo(p.AsSpan());
            loaded.Add(name);
        }
        var missing = parameters.Keys.Where(k => !resolved.ContainsKey(k)).ToList();
        LoadReport = new LoadReport(source, loaded, missing, unexpected, mismatched, tied, ignored);
        return LoadReport;
    }

    static string? Resolve(string key, Dictionary<string, Parameter> parameters, string prefix, bool modelHasPrefix)
    {
        if (parameters.ContainsKey(key)) return key;
        if (modelHasPrefix) { string withPrefix = prefix + key; return parameters.ContainsKey(withPrefix) ? withPrefix : null; }
        if (key.StartsWith(prefix, StringComparison.Ordinal)) { string stripped = key[prefix.Length..]; return parameters.ContainsKey(stripped) ? stripped : null; }
        return null;
    }

    string? ResolveAlias(string key, string prefix, bool modelHasPrefix)
    {
        if (TiedAliases.TryGetValue(key, out var t)) return t;
        if (!modelHasPrefix && key.StartsWith(prefix, StringComparison.Ordinal) && TiedAliases.TryGetValue(key[prefix.Length..], out t)) return t;
        return null;
    }

    /// <summary>The tensors <c>save_pretrained</c> writes: every parameter under its HF name plus HF's saved buffers; tied aliases omitted.</summary>
    public IReadOnlyList<CheckpointTensor> ToCheckpointTensors()
    {
        var list = new List<CheckpointTensor>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, p) in NamedParameters())
        {
            if (!seen.Add(name)) continue;
            var t = p.Value;
            list.Add(CheckpointTensor.FromFloat32(name, t.Contiguous().ToArray(), t.ShapeArray));
        }
        list.AddRange(ExtraSavedTensors());
        return list;
    }

    /// <summary>The directory the model was loaded from (its tokenizer files are saved along with the model), or null.</summary>
    public string? SourceDirectory { get; internal set; }

    /// <summary>The tokenizer files <see cref="SavePretrained"/> copies from a tokenizer directory.</summary>
    public static IReadOnlyList<string> TokenizerFiles { get; } = ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "added_tokens.json"];

    /// <summary>
    /// Writes config.json, model.safetensors (HF layout, tied aliases omitted) and the tokenizer files of
    /// <paramref name="tokenizerDirectory"/> (default: the directory the model came from) into <paramref name="directory"/>.
    /// </summary>
    /// <remarks>Every file is first written into a temporary directory beside the target and then renamed into place, so a
    /// crash never leaves a half-written model behind.</remarks>
    public void SavePretrained(string directory, string? tokenizerDirectory = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var target = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(target) ?? throw new ArgumentException($"'{directory}' has no parent directory.", nameof(directory));
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(target)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            File.WriteAllText(Path.Combine(temp, "config.json"), ConfigJson());
            SafeTensorsWriter.Write(Path.Combine(temp, "model.safetensors"), ToCheckpointTensors(), new Dictionary<string, string> { ["format"] = "pt" });
            var tokDir = tokenizerDirectory ?? SourceDirectory;
            if (tokDir != null && Path.GetFullPath(tokDir) != target)
                foreach (var f in TokenizerFiles)
                {
                    var src = Path.Combine(tokDir, f);
                    if (File.Exists(src)) File.Copy(src, Path.Combine(temp, f));
                }
            if (!Directory.Exists(target)) { Directory.Move(temp, target); return; }
            foreach (var f in Directory.GetFiles(temp)) File.Move(f, Path.Combine(target, Path.GetFileName(f)), overwrite: true);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    // ---- helpers shared by the model families ----

    internal static DenseWeights Dense(Linear l) => new(l.Weight.Value.Data.AsMemory(l.Weight.Value.Offset, l.Weight.Value.Size),
        l.Bias is null ? ReadOnlyMemory<float>.Empty : l.Bias.Value.Data.AsMemory(l.Bias.Value.Offset, l.Bias.Value.Size), l.OutFeatures, l.InFeatures);

    internal static NormWeights Norm(Nn.LayerNorm n) => new(Mem(n.Weight.Value), Mem(n.Bias.Value), n.Eps);

    internal static ReadOnlyMemory<float> Mem(Tensor t) => t.Data.AsMemory(t.Offset, t.Size);

    internal static HiddenActivation ParseActivation(string name, string field) => name switch
    {
        "gelu" => HiddenActivation.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => HiddenActivation.GeluTanh,
        "relu" => HiddenActivation.Relu,
        _ => throw new NotSupportedException($"config.json {field} = \"{name}\" is not supported; use gelu, gelu_new, gelu_pytorch_tanh or relu."),
    };

    internal static Tensor Activate(Tensor x, HiddenActivation act) => act switch
    {
        HiddenActivation.Gelu => x.Gelu(),
        HiddenActivation.GeluTanh => x.GeluTanh(),
        _ => x.Relu(),
    };

    /// <summary>Validates ids against the embedding table and the sequence length against the position table.</summary>
    internal static void CheckInput(EncoderInput input, int vocabSize, int typeVocabSize, int maxPositions)
    {
        if (input.SequenceLength > maxPositions)
            throw new ModelInputException($"Sequence length {input.SequenceLength} exceeds max_position_embeddings = {maxPositions}; truncate the input (tokenizer max_length).");
        var ids = input.InputIds;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)vocabSize)
                throw new ModelInputException($"input_ids[{i / input.SequenceLength}][{i % input.SequenceLength}] = {ids[i]} is outside the vocabulary of {vocabSize} tokens; the tokenizer does not match the model.");
        if (input.TokenTypeIds is { } tt)
            for (int i = 0; i < tt.Length; i++)
                if ((uint)tt[i] >= (uint)typeVocabSize)
                    throw new ModelInputException($"token_type_ids[{i / input.SequenceLength}][{i % input.SequenceLength}] = {tt[i]} is outside type_vocab_size = {typeVocabSize}.");
    }

    /// <summary>Takes the shared workspace (or a new one when another forward holds it).</summary>
    internal EncoderWorkspace RentWorkspace() => Interlocked.Exchange(ref _workspace, null) ?? new EncoderWorkspace();
    internal void ReturnWorkspace(EncoderWorkspace ws) => _workspace = ws;
    EncoderWorkspace? _workspace;

    /// <summary>Whether the kernel fast path may run: eval mode and no gradient recording (inside <see cref="Autograd.NoGrad"/>).</summary>
    internal bool UseFastPath => !Training && !Autograd.IsEnabled;
}
