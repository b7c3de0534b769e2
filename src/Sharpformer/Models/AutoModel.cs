using Sharpformer.Checkpoints;
using Sharpformer.Nn;

namespace Sharpformer.Models;

/// <summary>
/// Builds the model class a <c>config.json</c> names (its <c>architectures[0]</c>, or the bare encoder of its
/// <c>model_type</c>) and loads checkpoints into it — transformers' <c>AutoModel*.from_pretrained</c>.
/// </summary>
public static class AutoModel
{
    /// <summary>Every architecture this library implements: config type, and how to build it over a <see cref="VarBuilder"/>.</summary>
    static readonly Dictionary<string, Func<ModelConfig, VarBuilder, ModelLoadOptions, PretrainedModel>> Builders = new()
    {
        ["BertModel"] = (c, vb, o) => new BertModel((BertConfig)c, vb, o.AddPoolingLayer),
        ["BertForSequenceClassification"] = (c, vb, _) => new BertForSequenceClassification((BertConfig)c, vb),
        ["BertForTokenClassification"] = (c, vb, _) => new BertForTokenClassification((BertConfig)c, vb),
        ["BertForMaskedLM"] = (c, vb, _) => new BertForMaskedLM((BertConfig)c, vb),
        ["DistilBertModel"] = (c, vb, _) => new DistilBertModel((DistilBertConfig)c, vb),
        ["DistilBertForSequenceClassification"] = (c, vb, _) => new DistilBertForSequenceClassification((DistilBertConfig)c, vb),
        ["DistilBertForTokenClassification"] = (c, vb, _) => new DistilBertForTokenClassification((DistilBertConfig)c, vb),
        ["DistilBertForMaskedLM"] = (c, vb, _) => new DistilBertForMaskedLM((DistilBertConfig)c, vb),
    };

    /// <summary>The HF class names this library implements.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = [.. Builders.Keys];

    /// <summary>A freshly initialised model of the given (or config's) architecture.</summary>
    /// <exception cref="UnsupportedArchitectureException">The architecture is not one of <see cref="SupportedArchitectures"/>.</exception>
    public static PretrainedModel FromConfig(ModelConfig config, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        var model = Build(WithLabels(config, options), VarBuilder.Fresh(options.Seed), options);
        model.Execution = options.Execution;
        return model;
    }

    /// <summary>
    /// A freshly initialised model over <paramref name="config"/> that belongs to the model directory <paramref name="dir"/>: its
    /// weights are ignored, but its tokenizer files stay the model's (<see cref="PretrainedModel.SourceDirectory"/>), so the
    /// model saves and tokenizes as one loaded from there. Returned in eval mode, as <see cref="FromPretrained(string, ModelConfig, ModelLoadOptions?)"/>.
    /// </summary>
    public static PretrainedModel FromConfigFor(string dir, ModelConfig config, ModelLoadOptions? options = null)
    {
        var model = FromConfig(config, options);
        model.SourceDirectory = dir;
        model.Eval();
        return model;
    }

    static ModelConfig WithLabels(ModelConfig config, ModelLoadOptions options)
    {
        if (options.Labels is { } names)
        {
            if (options.NumLabels is int k && k != names.Count)
                throw new ArgumentException($"NumLabels = {k} but {names.Count} label names were given.", nameof(options));
            var (id2, l2) = ModelConfig.LabelMaps(names);
            return config with { Id2Label = id2, Label2Id = l2 };
        }
        if (options.NumLabels is int n)
        {
            if (n < 1) throw new ArgumentOutOfRangeException(nameof(options), n, "NumLabels must be at least 1.");
            var (id2, l2) = ModelConfig.LabelMaps(Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray());
            if (config.NumLabels != n) return config with { Id2Label = id2, Label2Id = l2 };
        }
        return config;
    }

    static PretrainedModel Build(ModelConfig config, VarBuilder vb, ModelLoadOptions options)
    {
        string arch = options.Architecture ?? config.Architectures?.FirstOrDefault() ?? (config.ModelType == "bert" ? "BertModel" : "DistilBertModel");
        string family = arch.StartsWith("DistilBert", StringComparison.Ordinal) ? "distilbert" : "bert";
        if (!Builders.TryGetValue(arch, out var build) || family != config.ModelType)
            throw new UnsupportedArchitectureException(Builders.ContainsKey(arch) ? $"{arch} (with model_type '{config.ModelType}')" : arch, config.SourcePath ?? "<config>");
        return build(config, vb, options);
    }

    /// <summary>
    /// Loads a model directory (config.json + model.safetensors or pytorch_model.bin) or a Hub model id (HF cache, then download).
    /// Each parameter is copied from the memory-mapped checkpoint as the model is built; only those the checkpoint lacks are
    /// initialised (HF's <c>_fast_init</c>), and <see cref="PretrainedModel.LoadReport"/> lists them. The model is returned in eval mode.
    /// </summary>
    public static PretrainedModel FromPretrained(string dirOrModelId, ModelLoadOptions? options = null)
    {
        string dir = ResolveDirectory(dirOrModelId);
        return FromPretrained(dir, ModelConfigLoader.Load(dir), options);
    }

    /// <summary>Like <see cref="FromPretrained(string, ModelLoadOptions?)"/> with an edited config (e.g. other dropout or labels) for the directory's weights.</summary>
    public static PretrainedModel FromPretrained(string dir, ModelConfig config, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        config = WithLabels(config, options);
        int vocab = config switch { BertConfig b => b.VocabSize, DistilBertConfig d => d.VocabSize, _ => 0 };
        CheckVocabulary(dir, vocab);
        string checkpointPath = FindCheckpoint(dir, options.Checkpoint);
        PretrainedModel model;
        bool quantized = DynamicQuantization.IsQuantizedConfig(config);
        using (var sd = CheckpointLoader.Load(checkpointPath))
        {
            // A quantized checkpoint's encoder linear layers are built int8 from the stored int8 values (never all fp32 at once);
            // any other tensor stored as I8 reads as its dequantized values.
            var vb = VarBuilder.FromWeights(quantized ? DynamicQuantization.Dequantizing(sd) : sd,
                new WeightLoadOptions(config.ModelType, options.IgnoreMismatchedSizes, options.Seed, QuantizeInt8: quantized));
            model = Build(config, vb, options);
            model.LoadReport = vb.Finish(model.IsIgnoredUnexpected);
        }
        model.SourceDirectory = dir;
        model.Execution = options.Execution;
        model.Eval();
        return model;
    }

    /// <summary>
    /// Loads a decoder-only language model for <see cref="Generator"/> (model_type <c>gpt2</c>: <see cref="Gpt2LMHeadModel"/>), from a
    /// directory or Hub id. Returned in eval mode.
    /// </summary>
    /// <exception cref="UnsupportedArchitectureException">config.json describes an encoder (BERT, DistilBERT), which cannot generate.</exception>
    public static Gpt2LMHeadModel FromPretrainedCausalLM(string dirOrModelId, ModelLoadOptions? options = null)
    {
        string dir = ResolveDirectory(dirOrModelId);
        return ModelConfigLoader.Load(dir) is Gpt2Config
            ? Gpt2LMHeadModel.FromPretrained(dir, options)
            : throw new UnsupportedArchitectureException("a causal language model", Path.Combine(dir, "config.json"));
    }

    /// <summary>Like <see cref="FromPretrained(string, ModelLoadOptions?)"/>, typed: e.g. <c>FromPretrained&lt;ISequenceClassificationModel&gt;(dir)</c>.</summary>
    /// <exception cref="UnsupportedArchitectureException">The loaded architecture does not provide <typeparamref name="T"/>.</exception>
    public static T FromPretrained<T>(string dirOrModelId, ModelLoadOptions? options = null) where T : class
    {
        var model = FromPretrained(dirOrModelId, options);
        return model as T ?? throw new UnsupportedArchitectureException($"{model.Architecture} used as {typeof(T).Name}", Path.Combine(ResolveDirectory(dirOrModelId), "config.json"));
    }

    /// <summary>A local directory as is; otherwise a Hub id ("bert-base-uncased", "org/name") resolved through the HF cache
    /// (downloading missing files unless HF_HUB_OFFLINE is set), see <see cref="Hub.ModelResolver"/>.</summary>
    public static string ResolveDirectory(string dirOrModelId)
    {
        ArgumentException.ThrowIfNullOrEmpty(dirOrModelId);
        if (Directory.Exists(dirOrModelId)) return dirOrModelId;
        if (File.Exists(dirOrModelId) && Path.GetFileName(dirOrModelId) == "config.json") return Path.GetDirectoryName(Path.GetFullPath(dirOrModelId))!;
        return Hub.ModelResolver.Resolve(dirOrModelId);
    }

    /// <summary>Picks the checkpoint file of a model directory (single or sharded; safetensors preferred unless asked otherwise).</summary>
    public static string FindCheckpoint(string dir, CheckpointPreference preference = CheckpointPreference.SafeTensorsFirst)
    {
        string[] safe = ["model.safetensors", "model.safetensors.index.json"];
        string[] bin = ["pytorch_model.bin", "pytorch_model.bin.index.json"];
        IEnumerable<string> order = preference switch
        {
            CheckpointPreference.SafeTensorsOnly => safe,
            CheckpointPreference.PyTorchBinOnly => bin,
            CheckpointPreference.PyTorchBinFirst => bin.Concat(safe),
            _ => safe.Concat(bin),
        };
        foreach (var name in order)
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"No checkpoint in '{dir}': expected one of {string.Join(", ", order)}. Save the model with save_pretrained, or point at the right directory.", dir);
    }

    /// <summary>Throws when the directory's vocab.txt has another number of tokens than the embedding table.</summary>
    public static void CheckVocabulary(string dir, int vocabSize)
    {
        var vocab = Path.Combine(dir, "vocab.txt");
        if (!File.Exists(vocab)) return;
        int lines = 0;
        using (var reader = new StreamReader(vocab))
            while (reader.ReadLine() != null) lines++;
        if (lines != vocabSize) throw new VocabularyMismatchException(vocab, lines, vocabSize);
    }

}
