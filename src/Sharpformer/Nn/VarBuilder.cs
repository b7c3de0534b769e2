using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Named float tensors a <see cref="VarBuilder"/> reads weights from (a checkpoint's state dict, or tensors in memory).</summary>
public interface IWeightSource
{
    /// <summary>Where the weights come from (a file path), for reports and error messages.</summary>
    string Source { get; }

    /// <summary>Every stored key, in file order.</summary>
    IEnumerable<string> Keys { get; }

    /// <summary>The stored shape of <paramref name="key"/>, or null when there is no such tensor.</summary>
    IReadOnlyList<int>? ShapeOf(string key);

    /// <summary>Copies (and widens to float32) the tensor <paramref name="key"/> into <paramref name="destination"/>.</summary>
    void CopyTo(string key, Span<float> destination);
}

/// <summary>How a parameter the weights do not provide is filled (HF's <c>_init_weights</c> rules, one per kind of tensor).</summary>
public sealed class WeightInit
{
    public delegate void Filler(Span<float> values, Random rng);

    readonly Filler _fill;

    public WeightInit(string description, Filler fill) { Description = description; _fill = fill; }

    public string Description { get; }

    public void Fill(Span<float> values, Random rng) => _fill(values, rng);

    /// <summary>N(0, std²) — BERT's Linear and Embedding weights with std = initializer_range.</summary>
    public static WeightInit Normal(double std) => new($"normal(0, {std})", (v, rng) => Tensor.FillNormal(rng, v, 0f, (float)std));

    /// <summary>U(−bound, bound) — torch's default for recurrent layers (bound = 1/√hidden_size) and Linear (1/√in_features).</summary>
    public static WeightInit Uniform(double bound) => new($"uniform(-{bound}, {bound})", (v, rng) =>
    {
        float w = (float)(2 * bound), low = (float)-bound;
        for (int i = 0; i < v.Length; i++) v[i] = low + w * rng.NextSingle();
    });

    public static WeightInit Zeros { get; } = new("zeros", (v, _) => v.Clear());
    public static WeightInit Ones { get; } = new("ones", (v, _) => v.Fill(1f));

    /// <summary>This init, then row <paramref name="row"/> (of width <paramref name="width"/>) zeroed: an embedding's padding row.</summary>
    public WeightInit ZeroRow(int row, int width) => new($"{Description}, row {row} zero", (v, rng) => { Fill(v, rng); v.Slice(row * width, width).Clear(); });

    /// <summary>The fixed table sin/cos(pos / 10000^(2⌊j/2⌋/dim)) of DistilBERT's sinusoidal_pos_embds (no random draws).</summary>
    public static WeightInit Sinusoidal(int positions, int dim) => new("sinusoidal", (w, _) =>
    {
        for (int p = 0; p < positions; p++)
            for (int j = 0; j < dim; j++)
            {
                double angle = p / Math.Pow(10000, 2 * (j / 2) / (double)dim);
                w[p * dim + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
    });
}

/// <summary>A stored tensor (<paramref name="Key"/>) whose shape differs from the parameter it maps to (<paramref name="ParameterName"/>).</summary>
public sealed record ParameterShapeMismatch(string Key, string ParameterName, IReadOnlyList<int> CheckpointShape, IReadOnlyList<int> ModelShape)
{
    public override string ToString() => $"{Key}: checkpoint [{string.Join(", ", CheckpointShape)}] vs model [{string.Join(", ", ModelShape)}]";
}

/// <summary>
/// What loading weights into a model did, by parameter name (HF's "Some weights of … were not initialized" warnings, typed).
/// The one report of every load: <see cref="VarBuilder"/> builds it, for models and for <see cref="Module.LoadStateDict"/>.
/// </summary>
/// <param name="Source">The checkpoint file.</param>
/// <param name="Loaded">Parameters filled from the weights.</param>
/// <param name="Missing">Parameters the weights lack; they got their initialiser (normal(0, initializer_range), biases 0, LayerNorm 1/0).</param>
/// <param name="Unexpected">Stored keys no parameter uses (e.g. a classifier when loading a bare encoder).</param>
/// <param name="ShapeMismatched">Keys whose shapes differ; only present when mismatches were allowed, the parameters are then freshly initialised.</param>
/// <param name="Tied">Stored aliases of another parameter (MLM decoder ↔ word embeddings), used only when the real key is absent.</param>
/// <param name="Ignored">Stored keys dropped on purpose, as HF does without warning (the <c>position_ids</c> buffer, a pooler the head does not use).</param>
public sealed record LoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<ParameterShapeMismatch> ShapeMismatched,
    IReadOnlyList<string> Tied,
    IReadOnlyList<string> Ignored)
{
    /// <summary>True when every parameter came from the weights and nothing was left over.</summary>
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

    public override string ToString() => IsComplete ? "all keys matched" : string.Join(" ", Warnings());
}

/// <summary>A weight source holding some weights already int8-quantized (a checkpoint written by <c>sharpformer quantize</c>):
/// <see cref="VarBuilder.GetInt8"/> takes their stored values as they are instead of re-quantizing dequantized ones.</summary>
internal interface IInt8WeightSource
{
    /// <summary>The stored int8 weight under <paramref name="key"/> packed, or null when it is not stored as int8 [out, in].</summary>
    Kernels.Int8PackedWeights? TryInt8(string key, int outFeatures, int inFeatures);
}

/// <summary>What a <see cref="VarBuilder"/> does with stored weights: key conventions and the policy for mismatches.</summary>
/// <param name="BasePrefix">The encoder's attribute inside head models ("bert", "distilbert"): added to or stripped from stored keys when only one side has it
/// (a head model from a bare checkpoint, or a bare model from a head checkpoint).</param>
/// <param name="IgnoreMismatchedSizes">Initialise parameters whose stored shape differs instead of failing (HF's <c>ignore_mismatched_sizes</c>).</param>
/// <param name="Seed">Seed of the initialiser for parameters the weights do not provide.</param>
/// <param name="QuantizeInt8">Build the linear layers of scopes the model marks <see cref="VarBuilder.Quantizable"/> (the encoder
/// layers) as int8 straight away (Models/DynamicQuantization.cs): each fp32 weight, loaded or initialised, passes through one
/// reused scratch buffer into the quantizer, so the model never holds all its fp32 weights (the peak working set of an int8 model).</param>
public sealed record WeightLoadOptions(string? BasePrefix = null, bool IgnoreMismatchedSizes = false, int Seed = 0, bool QuantizeInt8 = false);

/// <summary>
/// Hands modules their parameters by name, as candle's <c>VarBuilder</c>: a module asks its scope for
/// <c>vb.Push("attention").Push("self").Get("query.weight", [out, in], init)</c>. A builder backed by stored weights copies the
/// tensor straight from the (memory-mapped) checkpoint into the new parameter and draws no random numbers for it; a parameter
/// the weights lack, or a builder without weights, gets its <see cref="WeightInit"/> from one seeded generator in construction
/// order. Checkpoint key conventions live here, not in the models: legacy <c>gamma</c>/<c>beta</c> names, the base-model
/// prefix, ignored buffers, tied aliases. <see cref="Finish"/> gives the one <see cref="LoadReport"/>.
/// </summary>
public sealed class VarBuilder
{
    sealed class State(IWeightSource? weights, WeightLoadOptions options, Random? rng = null)
    {
        public readonly IWeightSource? Weights = weights;
        public readonly WeightLoadOptions Options = options;
        public readonly Random Rng = rng ?? new(options.Seed);
        public readonly Dictionary<string, string> StoredByFixedName = FixedNames(weights);
        public readonly HashSet<string> Used = new(StringComparer.Ordinal);
        public readonly Dictionary<string, Tensor> Created = new(StringComparer.Ordinal);
        public readonly List<string> Loaded = [], Missing = [], Tied = [];
        public readonly List<ParameterShapeMismatch> Mismatched = [];
        public bool Finished, DryRun;
        // The fp32 values of the int8 weight being built (GetInt8), reused from one layer to the next.
        public float[] Scratch = [];
    }

    readonly State _state;
    readonly bool _quantizable;

    VarBuilder(State state, string prefix, bool quantizable = false) { _state = state; Prefix = prefix; _quantizable = quantizable; }

    /// <summary>A builder without weights: every parameter gets its initialiser, drawn from one <see cref="Random"/>(<paramref name="seed"/>).</summary>
    public static VarBuilder Fresh(int seed = 0) => new(new State(null, new WeightLoadOptions(Seed: seed)), "");

    /// <summary>A builder without weights whose initialisers draw from <paramref name="rng"/> (e.g. a <see cref="TrainingRandom"/> of a run's seed).</summary>
    public static VarBuilder Fresh(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        return new(new State(null, new WeightLoadOptions(), rng), "");
    }

    /// <summary>A builder without weights under <paramref name="options"/> (its seed, <see cref="WeightLoadOptions.QuantizeInt8"/>).</summary>
    public static VarBuilder Fresh(WeightLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(new State(null, options), "");
    }

    /// <summary>A builder backed by stored weights; what they lack is initialised with <see cref="WeightLoadOptions.Seed"/>.</summary>
    public static VarBuilder FromWeights(IWeightSource weights, WeightLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return new(new State(weights, options ?? new WeightLoadOptions()), "");
    }

    /// <summary>The dotted scope of this builder ("" at the root, e.g. "bert.encoder.layer.0").</summary>
    public string Prefix { get; }

    /// <summary>Whether weights back this builder (false for <see cref="Fresh(int)"/>).</summary>
    public bool HasWeights => _state.Weights != null;

    /// <summary>A child scope: names asked for below it are prefixed with <paramref name="name"/> + ".".</summary>
    public VarBuilder Push(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new(_state, Join(Prefix, name), _quantizable);
    }

    /// <summary>This scope, marked as one whose linear layers int8 dynamic quantization covers (a model's encoder layers).</summary>
    internal VarBuilder Quantizable() => new(_state, Prefix, quantizable: true);

    /// <summary>True when a linear layer built in this scope is to be int8 (<see cref="GetInt8"/>) rather than fp32.</summary>
    internal bool BuildsInt8 => _quantizable && _state.Options.QuantizeInt8;

    /// <summary>
    /// The int8 form of weight <paramref name="name"/> [out, in]: its fp32 values (stored, else <paramref name="init"/>, drawn as
    /// <see cref="Get"/> would draw them) pass through a scratch buffer into <see cref="Kernels.Int8PackedWeights.Quantize"/>.
    /// <paramref name="placeholder"/> is the parameter's tensor: the right shape and name, no fp32 storage.
    /// </summary>
    internal Kernels.Int8PackedWeights GetInt8(string name, int outFeatures, int inFeatures, WeightInit init, out Tensor placeholder)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (_state.Finished) throw new InvalidOperationException("This VarBuilder has finished loading; build a new one.");
        string full = Join(Prefix, name);
        if (_state.Created.ContainsKey(full)) throw new ArgumentException($"Parameter '{full}' was asked for twice.", nameof(name));
        int[] shape = [outFeatures, inFeatures];
        placeholder = new Tensor([], shape);
        _state.Created[full] = placeholder;
        if (_state.Weights is IInt8WeightSource stored && Find(full) is { } key && stored.TryInt8(key, outFeatures, inFeatures) is { } exact)
        {
            _state.Used.Add(key);
            _state.Loaded.Add(full);
            return exact;
        }
        int n = checked(outFeatures * inFeatures);
        if (_state.Scratch.Length < n) { _state.Scratch = []; _state.Scratch = new float[n]; }
        var values = _state.Scratch.AsSpan(0, n);
        if (!TryLoad(full, shape, values)) init.Fill(values, _state.Rng);
        return Kernels.Int8PackedWeights.Quantize(values, outFeatures, inFeatures);
    }

    /// <summary>
    /// The tensor of parameter <paramref name="name"/> (relative to this scope) with <paramref name="shape"/>: copied from the weights
    /// when they have it in that shape, otherwise filled by <paramref name="init"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The same full name was asked for twice.</exception>
    public Tensor Get(string name, int[] shape, WeightInit init)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (_state.Finished) throw new InvalidOperationException("This VarBuilder has finished loading; build a new one.");
        string full = Join(Prefix, name);
        if (_state.Created.ContainsKey(full)) throw new ArgumentException($"Parameter '{full}' was asked for twice.", nameof(name));
        // Both branches overwrite every element, so the buffer starts uninitialised.
        var t = Tensor.Empty(shape);
        _state.Created[full] = t;
        if (!TryLoad(full, t.ShapeArray, t.AsSpan())) init.Fill(t.AsSpan(), _state.Rng);
        return t;
    }

    /// <summary>
    /// Declares that the stored key <paramref name="alias"/> (relative to this scope) holds the same tensor as the parameter
    /// <paramref name="target"/> (a full name already created): a tied weight such as an MLM decoder. The alias is then not
    /// unexpected, and supplies the value when the target's own key is absent.
    /// </summary>
    public void Tie(string alias, string target)
    {
        string full = Join(Prefix, alias);
        var s = _state;
        if (s.Weights == null || Find(full) is not { } key) return;
        s.Used.Add(key);
        s.Tied.Add(key);
        if (!s.Created.TryGetValue(target, out var t) || !s.Missing.Remove(target)) return;
        if (!ShapeFits(key, target, t.ShapeArray)) { s.Missing.Add(target); return; }
        if (!s.DryRun) s.Weights.CopyTo(key, t.AsSpan());
        s.Loaded.Add(target);
    }

    /// <summary>
    /// Copies the weights into an existing module (by its parameter names) instead of building one; same key rules and report.
    /// Parameters the weights lack keep their current values.
    /// </summary>
    /// <param name="module">The module whose parameters are filled in place.</param>
    /// <param name="tiedAliases">Stored alias → parameter name (see <see cref="Tie"/>).</param>
    /// <param name="isIgnored">Unused stored keys to drop without reporting them unexpected.</param>
    /// <param name="copy">False to only compute the report (nothing is written).</param>
    public LoadReport LoadInto(Module module, IReadOnlyDictionary<string, string>? tiedAliases = null, Func<string, bool>? isIgnored = null, bool copy = true)
    {
        _state.DryRun = !copy;
        foreach (var (name, p) in module.NamedParameters())
        {
            if (!_state.Created.TryAdd(name, p.Value)) continue;
            TryLoad(name, p.Value.ShapeArray, copy ? p.Value.AsSpan() : default);
        }
        foreach (var (alias, target) in tiedAliases ?? new Dictionary<string, string>()) Tie(alias, target);
        return Finish(isIgnored);
    }

    /// <summary>
    /// Ends loading: stored keys no parameter used are unexpected unless <paramref name="isIgnored"/> (or the built-in buffer rule)
    /// drops them. Throws when shapes differ and mismatches were not allowed.
    /// </summary>
    /// <exception cref="CheckpointShapeMismatchException">A shape differs and <see cref="WeightLoadOptions.IgnoreMismatchedSizes"/> is false.</exception>
    public LoadReport Finish(Func<string, bool>? isIgnored = null)
    {
        var s = _state;
        s.Finished = true;
        string source = s.Weights?.Source ?? "<initialiser>";
        if (s.Mismatched.Count > 0 && !s.Options.IgnoreMismatchedSizes) throw new CheckpointShapeMismatchException(source, s.Mismatched);
        var unexpected = new List<string>(); var ignored = new List<string>();
        foreach (var (fixedName, key) in s.StoredByFixedName)
        {
            if (s.Used.Contains(key)) continue;
            if (IsIgnoredBuffer(fixedName) || (isIgnored?.Invoke(fixedName) ?? false)) ignored.Add(key); else unexpected.Add(key);
        }
        return new LoadReport(source, [.. s.Loaded], [.. s.Missing], unexpected, [.. s.Mismatched], [.. s.Tied], ignored);
    }

    bool TryLoad(string full, int[] shape, Span<float> destination)
    {
        var s = _state;
        if (s.Weights == null) return false;
        if (Find(full) is not { } key) { s.Missing.Add(full); return false; }
        s.Used.Add(key);
        if (!ShapeFits(key, full, shape)) return false;
        if (!s.DryRun) s.Weights.CopyTo(key, destination);
        s.Loaded.Add(full);
        return true;
    }

    bool ShapeFits(string key, string full, int[] shape)
    {
        var stored = _state.Weights!.ShapeOf(key)!;
        if (stored.SequenceEqual(shape)) return true;
        _state.Mismatched.Add(new ParameterShapeMismatch(key, full, stored.ToArray(), shape));
        return false;
    }

    /// <summary>The stored key for a parameter name: itself, else with the base prefix stripped or added (transformers' <c>_load_pretrained_model</c>).</summary>
    string? Find(string full)
    {
        var stored = _state.StoredByFixedName;
        if (stored.TryGetValue(full, out var key)) return key;
        if (_state.Options.BasePrefix is not { Length: > 0 } prefix) return null;
        string candidate = full.StartsWith(prefix + ".", StringComparison.Ordinal) ? full[(prefix.Length + 1)..] : prefix + "." + full;
        return stored.TryGetValue(candidate, out key) ? key : null;
    }

    static Dictionary<string, string> FixedNames(IWeightSource? weights)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (weights != null)
            foreach (var k in weights.Keys) map.TryAdd(FixLegacyName(k), k);
        return map;
    }

    /// <summary>Legacy TF-era LayerNorm names: <c>*.gamma</c> → <c>*.weight</c>, <c>*.beta</c> → <c>*.bias</c> (transformers' <c>_fix_key</c>).</summary>
    public static string FixLegacyName(string key)
    {
        if (key.EndsWith(".gamma", StringComparison.Ordinal)) return key[..^"gamma".Length] + "weight";
        if (key.EndsWith(".beta", StringComparison.Ordinal)) return key[..^"beta".Length] + "bias";
        return key;
    }

    /// <summary>Buffers recomputed by the model, never parameters: <c>*.position_ids</c> (saved by transformers ≤ 4.30).</summary>
    public static bool IsIgnoredBuffer(string key) => key == "position_ids" || key.EndsWith(".position_ids", StringComparison.Ordinal);

    static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;
}

/// <summary>A stored tensor has a different shape than the parameter of the same name (HF raises "size mismatch").</summary>
public sealed class CheckpointShapeMismatchException(string source, IReadOnlyList<ParameterShapeMismatch> mismatches)
    : SharpformerException($"'{source}' does not fit the model: {string.Join("; ", mismatches.Select(m => m.ToString()))}. " +
        "Check that config.json belongs to this checkpoint, or pass IgnoreMismatchedSizes = true to re-initialise those parameters (e.g. a new classifier with another number of labels).")
{
    public string CheckpointFile { get; } = source;
    public IReadOnlyList<ParameterShapeMismatch> Mismatches { get; } = mismatches.ToArray();
}
