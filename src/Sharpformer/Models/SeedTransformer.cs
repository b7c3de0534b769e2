using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// Hyper-parameters of the Keras tutorial "Text classification with Transformer" model
/// (keras.io/examples/nlp/text_classification_with_transformer), the from-scratch seed model.
/// </summary>
/// <param name="VocabSize">TextVectorization max_tokens (0 = padding, 1 = [UNK]).</param>
/// <param name="SequenceLength">Fixed input length (TextVectorization output_sequence_length).</param>
/// <param name="EmbedDim">Token and position embedding size.</param>
/// <param name="NumHeads">Attention heads.</param>
/// <param name="KeyDim">Per-head query/key/value size (Keras key_dim).</param>
/// <param name="FfDim">Hidden size of the block's feed-forward network.</param>
/// <param name="DenseDim">Hidden size of the classifier (Dense(20, relu)).</param>
/// <param name="NumLabels">Classes.</param>
/// <param name="Dropout">Rate of all four dropouts.</param>
/// <param name="LayerNormEps">LayerNormalization epsilon (the tutorial uses 1e-6).</param>
/// <param name="MaskedAttention">Padding keys (id 0) get −1e9 added to their scores. The tutorial masks nothing.</param>
/// <param name="MaskedPooling">Average pooling over non-padding positions only. The tutorial averages all positions.</param>
/// <param name="Labels">Class names in id order (optional).</param>
public sealed record SeedTransformerConfig(
    int VocabSize = 20000,
    int SequenceLength = 256,
    int EmbedDim = 32,
    int NumHeads = 2,
    int KeyDim = 32,
    int FfDim = 32,
    int DenseDim = 20,
    int NumLabels = 4,
    float Dropout = 0.1f,
    float LayerNormEps = 1e-6f,
    bool MaskedAttention = false,
    bool MaskedPooling = false,
    IReadOnlyList<string>? Labels = null)
{
    /// <summary>The <c>model_type</c> written to config.json.</summary>
    public const string ModelType = "sharpformer-seed-transformer";

    internal void Validate()
    {
        if (VocabSize < 2 || SequenceLength < 1 || EmbedDim < 1 || NumHeads < 1 || KeyDim < 1 || FfDim < 1 || DenseDim < 1 || NumLabels < 2)
            throw new SharpformerException($"Invalid seed-transformer config {this}: sizes must be positive, vocab ≥ 2 and labels ≥ 2.");
        if (Dropout < 0 || Dropout >= 1) throw new SharpformerException($"Dropout {Dropout} must be in [0, 1).");
        if (Labels != null && Labels.Count != NumLabels)
            throw new SharpformerException($"The config names {Labels.Count} labels but NumLabels is {NumLabels}.");
    }
}

/// <summary>Output of <see cref="SeedTransformer.Forward"/>.</summary>
/// <param name="Logits">[batch, labels] pre-softmax scores (differentiable in training mode).</param>
/// <param name="Attentions">[batch, heads, SequenceLength, SequenceLength] attention probabilities (row = query), when asked for.</param>
public sealed record SeedTransformerOutput(Tensor Logits, Tensor? Attentions = null)
{
    /// <summary>Rows in the batch.</summary>
    public int Batch => Logits.Dim(0);

    /// <summary>Columns of <see cref="Logits"/>.</summary>
    public int NumLabels => Logits.Dim(1);

    /// <summary>Softmax probabilities, [batch, labels] row-major.</summary>
    public float[] Probabilities()
    {
        using var _ = Autograd.NoGrad();
        return Functional.Softmax(Logits).ToArray();
    }

    /// <summary>Arg-max class per row.</summary>
    public int[] Predictions() => Logits.ArgMax(-1);
}

/// <summary>
/// The Keras tutorial text classifier: token + learned position embeddings → one post-norm transformer
/// block → global average pooling → Dropout → Dense(20, relu) → Dropout → Dense(labels, softmax).
/// </summary>
/// <remarks>
/// A <see cref="Module"/> of the shared layers; attention is the library's one fused op (<see cref="Functional.SelfAttention"/>
/// over a fused Q·K·V projection), so the backward recomputes the probabilities and stores nothing of size T×T.
/// Block (post-norm, as the tutorial): a = MHA(x, x); h₁ = LN₁(x + Dropout(a)); f = W₂·relu(W₁·h₁ + b₁) + b₂; h₂ = LN₂(h₁ + Dropout(f)).
/// MHA: per head, softmax(Q·Kᵀ/√key_dim + mask)·V, heads concatenated then projected back to EmbedDim.
/// Initialisation as Keras (for a <see cref="VarBuilder"/> without weights): Glorot-uniform kernels with Keras' fan rules for the
/// 3-D attention kernels (Q/K/V [D, H, Kd]: fan_in = H·D, fan_out = Kd·D; output [H, Kd, D]: fan_in = Kd·H, fan_out = D·H),
/// zero biases, LayerNorm γ = 1, β = 0, embeddings U(−0.05, 0.05); drawn in the order Keras builds the layers.
/// Parameter names and [out, in] weight layout follow PyTorch conventions. Dropout draws from <see cref="Module.UseRandom"/>'s generator.
/// </remarks>
public sealed class SeedTransformer : Module
{
    /// <summary>Keras' additive mask value for float32.</summary>
    const float MaskNegative = -1e9f;

    /// <summary>The configuration.</summary>
    public SeedTransformerConfig Config { get; }

    /// <summary>Token and position embeddings ("embeddings").</summary>
    public SeedEmbeddings Embeddings { get; }

    /// <summary>The transformer block ("block").</summary>
    public SeedBlock Block { get; }

    /// <summary>Pooling output → Dense(relu) → Dense(labels) ("classifier").</summary>
    public SeedClassifier Classifier { get; }

    /// <summary>A freshly initialised model (Keras initialisers) drawing from <paramref name="rng"/>.</summary>
    public SeedTransformer(SeedTransformerConfig config, Random rng) : this(config, VarBuilder.Fresh(rng)) { }

    /// <summary>A model whose parameters come from <paramref name="vb"/> (a checkpoint, or the Keras initialisers).</summary>
    public SeedTransformer(SeedTransformerConfig config, VarBuilder vb)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vb);
        config.Validate();
        Config = config;
        // Registration order = the order Keras builds (and draws) the layers, so a seed means the same weights run to run.
        Embeddings = RegisterModule("embeddings", new SeedEmbeddings(vb.Push("embeddings"), config));
        Block = RegisterModule("block", new SeedBlock(vb.Push("block"), config));
        Classifier = RegisterModule("classifier", new SeedClassifier(vb.Push("classifier"), config));
        NameParameters();
    }

    /// <summary>Glorot-uniform U(±√(6 / (fan_in + fan_out))), one draw per element as Keras' initialiser.</summary>
    internal static WeightInit Glorot(int fanIn, int fanOut) => KerasUniform(MathF.Sqrt(6f / (fanIn + fanOut)));

    /// <summary>U(±limit): each element (2·u − 1)·limit with u = rng.NextDouble().</summary>
    internal static WeightInit KerasUniform(float limit) => new($"uniform(±{limit})", (v, rng) =>
    {
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1) * limit;
    });

    /// <summary>How the model runs (kernel threads): its forward enters these options' <see cref="ExecutionScope"/>.</summary>
    public ExecutionOptions Execution { get; set; } = ExecutionOptions.Default;

    /// <summary>
    /// Forward pass over <paramref name="ids"/> ([batch, SequenceLength], 0 = padding). Dropout is active in training mode.
    /// With <paramref name="returnAttentions"/> the attention probabilities come back too.
    /// </summary>
    public SeedTransformerOutput Forward(int[] ids, int batch, bool returnAttentions = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var cfg = Config;
        int T = cfg.SequenceLength;
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be ≥ 1.");
        if (ids.Length != batch * T)
            throw new SeedTransformerException($"Seed transformer input holds {ids.Length} ids; batch {batch} × sequence length {T} = {batch * T} expected.");
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)cfg.VocabSize)
                throw new SeedTransformerException($"Token id {ids[i]} at row {i / T}, position {i % T} is outside the vocabulary of {cfg.VocabSize}.");
        using var scope = ExecutionScope.Enter(Execution);
        // With masked attention and masked pooling together, trailing columns that are padding in every row are inert:
        // as keys they get −1e9 (their probabilities underflow to exactly 0), and pooling gives them weight 0, so
        // nothing they compute reaches the logits or any gradient. The block then runs on the live prefix only
        // (AG News rows padded to 256 hold ≈ 45 tokens). Returned attentions keep the full [T, T] shape, so not then.
        if (cfg.MaskedAttention && cfg.MaskedPooling && !returnAttentions)
        {
            int live = LiveLength(ids, batch, T);
            if (live < T) { ids = TrimColumns(ids, batch, T, live); T = live; }
        }
        var x = Embeddings.Forward(ids, batch, T);
        var mask = cfg.MaskedAttention ? KeyMask(ids, batch, T) : null;
        var (h, attentions) = Block.Forward(x, mask, returnAttentions);
        var logits = Classifier.Forward(Pool(h, ids, batch, T));
        return new SeedTransformerOutput(Forwarded(logits), attentions);
    }

    // One past the last non-padding position over all rows (at least 1, so an all-padding batch keeps one column).
    static int LiveLength(int[] ids, int batch, int T)
    {
        int live = 1;
        for (int b = 0; b < batch; b++)
            for (int t = T - 1; t >= live; t--)
                if (ids[b * T + t] != 0) { live = t + 1; break; }
        return live;
    }

    static int[] TrimColumns(int[] ids, int batch, int T, int live)
    {
        var trimmed = new int[batch * live];
        for (int b = 0; b < batch; b++) ids.AsSpan(b * T, live).CopyTo(trimmed.AsSpan(b * live, live));
        return trimmed;
    }

    static Tensor KeyMask(int[] ids, int batch, int T)
    {
        var m = Tensor.Empty(batch, T);
        var d = m.AsSpan();
        for (int i = 0; i < ids.Length; i++) d[i] = ids[i] != 0 ? 0f : MaskNegative;
        return m;
    }

    // Global average pooling over positions: all of them (the tutorial), or the non-padding ones as a weighted sum
    // [B, 1, T]·[B, T, D] with weights 1/count on valid positions and 0 on padding.
    Tensor Pool(Tensor h, int[] ids, int batch, int T)
    {
        if (!Config.MaskedPooling) return h.Mean(1);
        var w = Tensor.Zeros(batch, 1, T);
        var ws = w.AsSpan();
        for (int b = 0; b < batch; b++)
        {
            int count = 0;
            for (int t = 0; t < T; t++) if (ids[b * T + t] != 0) count++;
            if (count == 0) continue;
            float inv = 1f / count;
            for (int t = 0; t < T; t++) if (ids[b * T + t] != 0) ws[b * T + t] = inv;
        }
        return h.Mul(w.Reshape(batch, T, 1)).Sum(1);
    }

    // ---------------------------------------------------------------- save / load

    /// <summary>File names of a seed-transformer model directory (the text vectorizer's own files sit beside them).</summary>
    public const string ConfigFileName = "config.json", WeightsFileName = "model.safetensors";

    /// <summary>
    /// Writes config.json (<c>model_type</c> "sharpformer-seed-transformer") and model.safetensors (the state dict) into
    /// <paramref name="directory"/> (created if needed), each through a temporary file and a rename.
    /// The caller saves the text vectorizer into the same directory.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var c = Config;
        var labels = c.Labels ?? Enumerable.Range(0, c.NumLabels).Select(i => $"LABEL_{i}").ToList();
        var json = new JsonObject
        {
            ["model_type"] = SeedTransformerConfig.ModelType,
            ["architectures"] = new JsonArray("SeedTransformerForSequenceClassification"),
            ["vocab_size"] = c.VocabSize, ["sequence_length"] = c.SequenceLength, ["embed_dim"] = c.EmbedDim,
            ["num_heads"] = c.NumHeads, ["key_dim"] = c.KeyDim, ["ff_dim"] = c.FfDim, ["dense_dim"] = c.DenseDim,
            ["num_labels"] = c.NumLabels, ["dropout"] = c.Dropout, ["layer_norm_eps"] = c.LayerNormEps,
            ["masked_attention"] = c.MaskedAttention, ["masked_pooling"] = c.MaskedPooling,
            ["id2label"] = new JsonObject(labels.Select((l, i) => KeyValuePair.Create(i.ToString(CultureInfo.InvariantCulture), (JsonNode?)l))),
            ["label2id"] = new JsonObject(labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)i))),
        };
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(directory, ConfigFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        Checkpoints.SafeTensorsWriter.Write(Path.Combine(directory, WeightsFileName),
            NamedParameters().Select(p => (p.Name, p.Parameter.Value.ShapeArray, (ReadOnlyMemory<float>)p.Parameter.Value.Data.AsMemory(p.Parameter.Value.Offset, p.Parameter.Size))).ToList());
    }

    /// <summary>True when <paramref name="directory"/>'s config.json declares this model type.</summary>
    public static bool IsSeedTransformerDirectory(string directory)
    {
        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path)) return false;
        try { return JsonNode.Parse(File.ReadAllText(path))?["model_type"]?.GetValue<string>() == SeedTransformerConfig.ModelType; }
        catch (JsonException) { return false; }
    }

    /// <summary>Reads the config of a model directory written by <see cref="Save"/>.</summary>
    public static SeedTransformerConfig LoadConfig(string directory)
    {
        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path)) throw new SeedTransformerException($"{path} does not exist; '{directory}' is not a seed-transformer model directory.");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path))!.AsObject(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw new SeedTransformerException($"{path} is not valid JSON ({e.Message})."); }
        string? type = o["model_type"]?.GetValue<string>();
        if (type != SeedTransformerConfig.ModelType)
            throw new SeedTransformerException($"{path}: model_type is '{type}', not '{SeedTransformerConfig.ModelType}'.");
        T Get<T>(string key)
        {
            try { return o[key]!.GetValue<T>(); }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
            { throw new SeedTransformerException($"{path}: key '{key}' is missing or not a {typeof(T).Name}."); }
        }
        int n = Get<int>("num_labels");
        IReadOnlyList<string>? labels = o["id2label"] is JsonObject id2
            ? Enumerable.Range(0, n).Select(i => id2[i.ToString(CultureInfo.InvariantCulture)]?.GetValue<string>()
                ?? throw new SeedTransformerException($"{path}: id2label has no entry for {i}.")).ToList()
            : null;
        var config = new SeedTransformerConfig(Get<int>("vocab_size"), Get<int>("sequence_length"), Get<int>("embed_dim"), Get<int>("num_heads"),
            Get<int>("key_dim"), Get<int>("ff_dim"), Get<int>("dense_dim"), n, Get<float>("dropout"), Get<float>("layer_norm_eps"),
            Get<bool>("masked_attention"), Get<bool>("masked_pooling"), labels);
        config.Validate();
        return config;
    }

    /// <summary>
    /// Loads a model directory written by <see cref="Save"/> (in eval mode) through a <see cref="VarBuilder"/> over its
    /// memory-mapped model.safetensors: every parameter must be stored with its shape, and nothing else may be.
    /// </summary>
    public static SeedTransformer Load(string directory)
    {
        var config = LoadConfig(directory);
        var path = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(path)) throw new SeedTransformerException($"{path} does not exist; the model directory is incomplete.");
        using var sd = Checkpoints.SafeTensorsReader.Read(path);
        var vb = VarBuilder.FromWeights(sd);
        SeedTransformer model;
        LoadReport report;
        try
        {
            model = new SeedTransformer(config, vb);
            report = vb.Finish();
        }
        catch (CheckpointShapeMismatchException e) { throw new SeedTransformerException($"{path}: {e.Message}"); }
        if (!report.IsComplete) throw new SeedTransformerException($"{path} does not fit its config.json: {report}");
        model.Eval();
        return model;
    }
}

/// <summary>Token embeddings plus learned position embeddings (Keras' TokenAndPositionEmbedding).</summary>
public sealed class SeedEmbeddings : Module
{
    internal SeedEmbeddings(VarBuilder vb, SeedTransformerConfig c)
    {
        var init = SeedTransformer.KerasUniform(0.05f);
        Token = RegisterModule("token", new Embedding(vb.Push("token"), c.VocabSize, c.EmbedDim, init));
        Position = RegisterModule("position", new Embedding(vb.Push("position"), c.SequenceLength, c.EmbedDim, init));
    }

    public Embedding Token { get; }
    public Embedding Position { get; }

    /// <summary>ids [batch, T] (T ≤ the position table's length) → token[ids] + position[0..T) [batch, T, D].</summary>
    public Tensor Forward(int[] ids, int batch, int T)
    {
        var positions = Position.Weight.Value;
        if (T < Position.Num) positions = positions.Slice(0, 0, T);
        // one pass: gather and position add fused (Token's own Forward and a broadcast Add would write [B, T, D] twice)
        var y = Functional.EmbeddingAdd(Token.Weight.Value, ids, [batch, T], positions);
        return Forwarded(y);
    }
}

/// <summary>Keras MultiHeadAttention(num_heads, key_dim) as self-attention: Q, K, V projected in one fused product, the one attention op, output projection.</summary>
public sealed class SeedSelfAttention : Module
{
    readonly int _heads;

    internal SeedSelfAttention(VarBuilder vb, SeedTransformerConfig c)
    {
        int d = c.EmbedDim, h = c.NumHeads, kd = c.KeyDim, hk = h * kd;
        _heads = h;
        var qkv = SeedTransformer.Glorot(h * d, kd * d);
        Query = RegisterModule("query", new Linear(vb.Push("query"), d, hk, qkv));
        Key = RegisterModule("key", new Linear(vb.Push("key"), d, hk, qkv));
        Value = RegisterModule("value", new Linear(vb.Push("value"), d, hk, qkv));
        Output = RegisterModule("output", new Linear(vb.Push("output"), hk, d, SeedTransformer.Glorot(kd * h, d * h)));
    }

    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    public Linear Output { get; }

    /// <summary>x [B, T, D] → (attention output [B, T, D], probabilities [B, H, T, T] when asked for).</summary>
    public (Tensor Output, Tensor? Probabilities) Forward(Tensor x, Tensor? keyMask, bool returnProbabilities)
    {
        // One [N, 3·H·Kd] product (Q at column 0, K at H·Kd, V at 2·H·Kd), read in place by the fused attention.
        var w = Tensor.Concat([Query.Weight.Value, Key.Weight.Value, Value.Weight.Value], 0);
        var b = Tensor.Concat([Query.Bias!.Value, Key.Bias!.Value, Value.Bias!.Value], 0);
        var r = Functional.SelfAttention(Functional.Linear(x, w, b), _heads, keyMask, returnProbabilities: returnProbabilities);
        var y = Output.Forward(r.Context);
        return (Forwarded(y), r.Probabilities);
    }
}

/// <summary>The block's feed-forward network: Dense(ff_dim, relu) → Dense(embed_dim).</summary>
public sealed class SeedFeedForward : Module
{
    internal SeedFeedForward(VarBuilder vb, SeedTransformerConfig c)
    {
        Dense1 = RegisterModule("dense1", new Linear(vb.Push("dense1"), c.EmbedDim, c.FfDim, SeedTransformer.Glorot(c.EmbedDim, c.FfDim)));
        Dense2 = RegisterModule("dense2", new Linear(vb.Push("dense2"), c.FfDim, c.EmbedDim, SeedTransformer.Glorot(c.FfDim, c.EmbedDim)));
    }

    public Linear Dense1 { get; }
    public Linear Dense2 { get; }

    public Tensor Forward(Tensor x)
    {
        var y = Dense2.Forward(Functional.LinearRelu(x, Dense1.Weight.Value, Dense1.Bias?.Value));
        return Forwarded(y);
    }
}

/// <summary>The tutorial's post-norm transformer block.</summary>
public sealed class SeedBlock : Module
{
    internal SeedBlock(VarBuilder vb, SeedTransformerConfig c)
    {
        Attention = RegisterModule("attention", new SeedSelfAttention(vb.Push("attention"), c));
        AttentionDropout = RegisterModule("attention_dropout", new Dropout(c.Dropout));
        AttentionNorm = RegisterModule("attention_norm", new LayerNorm(vb.Push("attention_norm"), c.EmbedDim, c.LayerNormEps));
        Ffn = RegisterModule("ffn", new SeedFeedForward(vb.Push("ffn"), c));
        FfnDropout = RegisterModule("ffn_dropout", new Dropout(c.Dropout));
        FfnNorm = RegisterModule("ffn_norm", new LayerNorm(vb.Push("ffn_norm"), c.EmbedDim, c.LayerNormEps));
    }

    public SeedSelfAttention Attention { get; }
    public Dropout AttentionDropout { get; }
    public LayerNorm AttentionNorm { get; }
    public SeedFeedForward Ffn { get; }
    public Dropout FfnDropout { get; }
    public LayerNorm FfnNorm { get; }

    /// <summary>x [B, T, D] (key mask [B, T] or null) → h₂ [B, T, D] and, when asked for, the attention probabilities.</summary>
    public (Tensor Output, Tensor? Attentions) Forward(Tensor x, Tensor? keyMask, bool returnAttentions)
    {
        var (a, probs) = Attention.Forward(x, keyMask, returnAttentions);
        var h1 = AttentionNorm.Forward(AttentionDropout.ForwardAdd(x, a));
        var h2 = FfnNorm.Forward(FfnDropout.ForwardAdd(h1, Ffn.Forward(h1)));
        return (Forwarded(h2), probs);
    }
}

/// <summary>The classifier on the pooled block output: Dropout → Dense(dense_dim, relu) → Dropout → Dense(labels).</summary>
public sealed class SeedClassifier : Module
{
    internal SeedClassifier(VarBuilder vb, SeedTransformerConfig c)
    {
        PooledDropout = RegisterModule("pooled_dropout", new Dropout(c.Dropout));
        Dense = RegisterModule("dense", new Linear(vb.Push("dense"), c.EmbedDim, c.DenseDim, SeedTransformer.Glorot(c.EmbedDim, c.DenseDim)));
        DenseDropout = RegisterModule("dense_dropout", new Dropout(c.Dropout));
        Output = RegisterModule("output", new Linear(vb.Push("output"), c.DenseDim, c.NumLabels, SeedTransformer.Glorot(c.DenseDim, c.NumLabels)));
    }

    public Dropout PooledDropout { get; }
    public Linear Dense { get; }
    public Dropout DenseDropout { get; }
    public Linear Output { get; }

    /// <summary>pooled [B, D] → logits [B, labels].</summary>
    public Tensor Forward(Tensor pooled)
    {
        var hidden = Functional.LinearRelu(PooledDropout.Forward(pooled), Dense.Weight.Value, Dense.Bias?.Value);
        var y = Output.Forward(DenseDropout.Forward(hidden));
        return Forwarded(y);
    }
}

/// <summary>Bad input to the seed transformer (wrong length, id or label out of range).</summary>
public sealed class SeedTransformerException(string message) : SharpformerException(message);
