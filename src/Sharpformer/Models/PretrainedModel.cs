using Sharpformer.Checkpoints;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

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
    /// <summary>How the model runs (kernel threads); becomes <see cref="PretrainedModel.Execution"/>.</summary>
    public ExecutionOptions Execution { get; init; } = ExecutionOptions.Default;
}

public enum CheckpointPreference { SafeTensorsFirst, PyTorchBinFirst, SafeTensorsOnly, PyTorchBinOnly }

/// <summary>
/// Base of every HF-compatible model: a BERT-family encoder (<see cref="BaseModel"/>) and optionally a head
/// (<see cref="Head"/>). Parameter names equal the checkpoint keys, so loading is a lookup by name (through
/// <see cref="VarBuilder"/>) and saving is its inverse.
/// </summary>
public abstract class PretrainedModel : Module
{
    /// <summary>The bare encoder: this model itself, or the one a head model holds under <see cref="BaseModelPrefix"/>.</summary>
    public abstract TransformerEncoder BaseModel { get; }

    /// <summary>The task head; null for a bare encoder.</summary>
    public virtual HeadSpec? Head => null;

    /// <summary>
    /// The one forward of every model: encoder, head when there is one, and the head's loss when <paramref name="labels"/> are given
    /// (class ids per sequence or per token with −100 ignored, or float targets for regression / multi-label).
    /// </summary>
    public abstract ModelOutput Run(EncoderInput input, ForwardOptions? options = null, SequenceLabels? labels = null);

    /// <summary>
    /// How this model runs: its forward (and the fast path) enter these options' <see cref="ExecutionScope"/>, so its kernels
    /// use this thread count whoever calls it. Set at load (<see cref="ModelLoadOptions.Execution"/>); a head model passes it to
    /// its encoder. The default has no preference (the caller's scope, else every logical processor).
    /// </summary>
    public ExecutionOptions Execution
    {
        get => _execution;
        set
        {
            _execution = value ?? throw new ArgumentNullException(nameof(value));
            if (!ReferenceEquals(BaseModel, this)) BaseModel.Execution = value;
        }
    }
    ExecutionOptions _execution = ExecutionOptions.Default;

    /// <summary>config.json <c>model_type</c>: "bert" or "distilbert".</summary>
    public string ModelType => BaseModel.Spec.ModelType;

    /// <summary>The HF class name written to config.json's <c>architectures</c>, e.g. "BertForSequenceClassification".</summary>
    public abstract string Architecture { get; }

    /// <summary>The attribute name of the encoder inside head models ("bert", "distilbert"); checkpoint keys may carry or lack it.</summary>
    public string BaseModelPrefix => BaseModel.Spec.BasePrefix;

    /// <summary>What loading the checkpoint did; for a freshly initialised model, null.</summary>
    public LoadReport? LoadReport { get; internal set; }

    /// <summary>Checkpoint keys that alias another parameter (tied weights): alias → parameter name.</summary>
    protected internal virtual IReadOnlyDictionary<string, string> TiedAliases { get; } = new Dictionary<string, string>();

    /// <summary>Whether an unused checkpoint key is dropped silently (HF's <c>_keys_to_ignore_on_load_unexpected</c>).</summary>
    protected internal virtual bool IsIgnoredUnexpected(string key) => VarBuilder.IsIgnoredBuffer(key);

    /// <summary>config.json as this model would save it (unknown keys preserved, <c>architectures</c> updated).</summary>
    public string ConfigJson()
    {
        var config = ModelConfig with { Architectures = [Architecture] };
        return (DynamicQuantization.IsQuantized(this) ? DynamicQuantization.WithConfigEntry(config) : config).ToJsonString();
    }

    /// <summary>The vocabulary size the embedding table has rows for.</summary>
    public int VocabSize => BaseModel.Spec.VocabSize;

    /// <summary>The config the model was built from (BertConfig / DistilBertConfig): labels, problem type, sizes.</summary>
    public abstract ModelConfig ModelConfig { get; }

    /// <summary>Longest sequence the position table allows (config max_position_embeddings).</summary>
    public int MaxPositions => BaseModel.Spec.MaxPositions;

    /// <summary>Class names of a classification head in id order (config id2label).</summary>
    public IReadOnlyList<string> Labels => ModelConfig.Labels;

    /// <summary>
    /// Copies stored weights into this model's parameters, with <see cref="VarBuilder"/>'s key rules (legacy <c>gamma</c>/<c>beta</c>,
    /// the base-model prefix stripped or added, tied aliases). Parameters the weights lack keep their values.
    /// </summary>
    /// <exception cref="CheckpointShapeMismatchException">A shape differs and <paramref name="ignoreMismatchedSizes"/> is false (nothing is copied).</exception>
    public LoadReport LoadCheckpoint(IWeightSource weights, bool ignoreMismatchedSizes = false)
    {
        var options = new WeightLoadOptions(BaseModelPrefix, ignoreMismatchedSizes);
        VarBuilder.FromWeights(weights, options).LoadInto(this, TiedAliases, IsIgnoredUnexpected, copy: false);
        return LoadReport = VarBuilder.FromWeights(weights, options).LoadInto(this, TiedAliases, IsIgnoredUnexpected);
    }

    /// <summary>The tensors <c>save_pretrained</c> writes: every parameter under its HF name plus HF's saved buffers; tied aliases omitted
    /// (an int8-quantized model's quantized weights as I8 plus their scales, see <see cref="DynamicQuantization"/>).</summary>
    public IReadOnlyList<CheckpointTensor> ToCheckpointTensors()
    {
        var list = new List<CheckpointTensor>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // Layers holding int8 or bf16 weights only: int8 as I8 + scales, bf16 as the F32 values it multiplies by.
        var packed = new Dictionary<string, Linear>(StringComparer.Ordinal);
        foreach (var (name, m) in NamedModules())
            if (m is Linear lin && (lin.Int8Weight != null || lin.Bf16Weight != null)) packed[name + ".weight"] = lin;
        foreach (var (name, p) in NamedParameters())
        {
            if (!seen.Add(name)) continue;
            if (packed.TryGetValue(name, out var lin))
            {
                if (lin.Int8Weight is { } q) list.AddRange(DynamicQuantization.CheckpointTensors(name, q));
                else list.Add(CheckpointTensor.FromFloat32(name, lin.Bf16Weight!.ToFloat(), lin.OutFeatures, lin.InFeatures));
                continue;
            }
            var t = p.Value;
            list.Add(CheckpointTensor.FromFloat32(name, t.Contiguous().ToArray(), t.ShapeArray));
        }
        if (BaseModel.Spec.SavesPositionIds)
        {
            // transformers 4.30 saves the persistent position_ids buffer (int64 [1, max_positions]); writing it keeps files byte-identical.
            var ids = new long[MaxPositions];
            for (int i = 0; i < ids.Length; i++) ids[i] = i;
            string prefix = ReferenceEquals(BaseModel, this) ? "" : BaseModelPrefix + ".";
            list.Add(CheckpointTensor.FromInt64(prefix + "embeddings.position_ids", ids, 1, ids.Length));
        }
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
    public void SavePretrained(string directory, string? tokenizerDirectory = null) =>
        SaveFiles(directory, ConfigJson(), ToCheckpointTensors(), tokenizerDirectory ?? SourceDirectory, TokenizerFiles);

    /// <summary>
    /// Writes a model directory: config.json, model.safetensors (HF's "pt" metadata), <paramref name="tokenizerFiles"/> copied from
    /// <paramref name="tokenizerDirectory"/> and <paramref name="textFiles"/> (name → content), all into a temporary directory
    /// first and then renamed into place. With <paramref name="replace"/>, an existing directory is swapped out whole (none of
    /// its other files, such as a run's optimizer state, survive); otherwise the new files are moved into it.
    /// </summary>
    internal static void SaveFiles(string directory, string configJson, IReadOnlyList<CheckpointTensor> tensors, string? tokenizerDirectory, IReadOnlyList<string> tokenizerFiles,
        IReadOnlyDictionary<string, string>? textFiles = null, bool replace = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var target = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(target) ?? throw new ArgumentException($"'{directory}' has no parent directory.", nameof(directory));
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(target)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            File.WriteAllText(Path.Combine(temp, "config.json"), configJson);
            SafeTensorsWriter.Write(Path.Combine(temp, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            var tokDir = tokenizerDirectory;
            if (tokDir != null && Path.GetFullPath(tokDir) != target)
                foreach (var f in tokenizerFiles)
                {
                    var src = Path.Combine(tokDir, f);
                    if (File.Exists(src)) File.Copy(src, Path.Combine(temp, f));
                }
            foreach (var (name, text) in textFiles ?? new Dictionary<string, string>()) File.WriteAllText(Path.Combine(temp, name), text);
            if (!Directory.Exists(target)) { Directory.Move(temp, target); return; }
            if (replace)
            {
                var old = Path.Combine(parent, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
                Directory.Move(target, old);
                Directory.Move(temp, target);
                Directory.Delete(old, recursive: true);
                return;
            }
            foreach (var f in Directory.GetFiles(temp)) File.Move(f, Path.Combine(target, Path.GetFileName(f)), overwrite: true);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    // ---- helpers shared by the model families ----

    internal static DenseWeights Dense(Linear l) => new(l.Weight.Value.IsReleased ? ReadOnlyMemory<float>.Empty : l.Weight.Value.Data.AsMemory(l.Weight.Value.Offset, l.Weight.Value.Size),
        l.Bias is null ? ReadOnlyMemory<float>.Empty : l.Bias.Value.Data.AsMemory(l.Bias.Value.Offset, l.Bias.Value.Size), l.OutFeatures, l.InFeatures,
        l.Int8Weight, l.Bf16Weight);

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
}
