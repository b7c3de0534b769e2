using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>
/// Builds the model class a <c>config.json</c> names (its <c>architectures[0]</c>, or the bare encoder of its
/// <c>model_type</c>) and loads checkpoints into it — transformers' <c>AutoModel*.from_pretrained</c>.
/// </summary>
public static class AutoModel
{
    /// <summary>The HF class names this library implements.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } =
    [
        "BertModel", "BertForSequenceClassification", "BertForTokenClassification", "BertForMaskedLM",
        "DistilBertModel", "DistilBertForSequenceClassification", "DistilBertForTokenClassification", "DistilBertForMaskedLM",
    ];

    /// <summary>A freshly initialised model of the given (or config's) architecture.</summary>
    /// <exception cref="UnsupportedArchitectureException">The architecture is not one of <see cref="SupportedArchitectures"/>.</exception>
    public static PretrainedModel FromConfig(ModelConfig config, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        if (options.Labels is { } names)
        {
            if (options.NumLabels is int k && k != names.Count)
                throw new ArgumentException($"NumLabels = {k} but {names.Count} label names were given.", nameof(options));
            var (id2, l2) = ModelConfig.LabelMaps(names);
            config = config with { Id2Label = id2, Label2Id = l2 };
        }
        else if (options.NumLabels is int n)
        {
            if (n < 1) throw new ArgumentOutOfRangeException(nameof(options), n, "NumLabels must be at least 1.");
            var (id2, l2) = ModelConfig.LabelMaps(Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray());
            if (config.NumLabels != n) config = config with { Id2Label = id2, Label2Id = l2 };
        }
        string arch = options.Architecture ?? config.Architectures?.FirstOrDefault() ?? (config.ModelType == "bert" ? "BertModel" : "DistilBertModel");
        string source = config.SourcePath ?? "<config>";
        return (config, arch) switch
        {
            (BertConfig c, "BertModel") => new BertModel(c, options.AddPoolingLayer, options.Seed),
            (BertConfig c, "BertForSequenceClassification") => new BertForSequenceClassification(c, options.Seed),
            (BertConfig c, "BertForTokenClassification") => new BertForTokenClassification(c, options.Seed),
            (BertConfig c, "BertForMaskedLM") => new BertForMaskedLM(c, options.Seed),
            (DistilBertConfig c, "DistilBertModel") => new DistilBertModel(c, options.Seed),
            (DistilBertConfig c, "DistilBertForSequenceClassification") => new DistilBertForSequenceClassification(c, options.Seed),
            (DistilBertConfig c, "DistilBertForTokenClassification") => new DistilBertForTokenClassification(c, options.Seed),
            (DistilBertConfig c, "DistilBertForMaskedLM") => new DistilBertForMaskedLM(c, options.Seed),
            _ => throw new UnsupportedArchitectureException(SupportedArchitectures.Contains(arch) ? $"{arch} (with model_type '{config.ModelType}')" : arch, source),
        };
    }

    /// <summary>
    /// Loads a model directory (config.json + model.safetensors or pytorch_model.bin) or a Hub model id (HF cache, then download). Parameters missing from the checkpoint are freshly initialised and listed in <see cref="PretrainedModel.LoadReport"/>.
    /// The model is returned in eval mode.
    /// </summary>
    public static PretrainedModel FromPretrained(string dirOrModelId, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        string dir = ResolveDirectory(dirOrModelId);
        var config = ModelConfigLoader.Load(dir);
        PretrainedModel model;
        using (ModelInit.Deferred()) model = FromConfig(config, options);
        CheckVocabulary(dir, model.VocabSize);
        string checkpointPath = FindCheckpoint(dir, options.Checkpoint);
        LoadReport report;
        using (var sd = CheckpointLoader.Load(checkpointPath))
            report = model.LoadCheckpoint(sd, checkpointPath, options.IgnoreMismatchedSizes);
        // Only what the checkpoint did not provide is initialised (HF's _fast_init).
        var fresh = report.Missing.Concat(report.ShapeMismatched.Select(m => m.ParameterName)).ToList();
        var (std, sinusoidal) = model.ModelConfig switch
        {
            BertConfig b => (b.InitializerRange, false),
            DistilBertConfig d => (d.InitializerRange, d.SinusoidalPosEmbds),
            _ => (0.02, false),
        };
        ModelInit.InitOnly(model, fresh, std, options.Seed, sinusoidal);
        model.SourceDirectory = dir;
        model.Eval();
        return model;
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

    internal static string ConfigJson(ModelConfig config, string architecture) => (config with { Architectures = [architecture] }).ToJsonString();
}
