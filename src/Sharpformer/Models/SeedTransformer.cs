using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sharpformer.Kernels;
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

/// <summary>One named parameter of a model trained through flat buffers: value and gradient, row-major, same length.</summary>
/// <param name="Name">Dotted name, e.g. <c>block.attention.query.weight</c>.</param>
/// <param name="Shape">Logical shape (weights are [out, in] as in PyTorch).</param>
/// <param name="Value">The values.</param>
/// <param name="Grad">The gradient, accumulated by backward passes.</param>
public sealed record FlatParameter(string Name, int[] Shape, float[] Value, float[] Grad)
{
    public int Size => Value.Length;
}

/// <summary>Output of <see cref="SeedTransformer.Forward"/>.</summary>
/// <param name="Logits">[batch, labels] pre-softmax scores.</param>
/// <param name="Batch">Rows in the batch.</param>
/// <param name="NumLabels">Columns of <paramref name="Logits"/>.</param>
public sealed record SeedTransformerOutput(float[] Logits, int Batch, int NumLabels)
{
    /// <summary>Softmax probabilities, [batch, labels].</summary>
    public float[] Probabilities()
    {
        var p = new float[Logits.Length];
        Softmax.Forward(Logits, p, Batch, NumLabels);
        return p;
    }

    /// <summary>Arg-max class per row.</summary>
    public int[] Predictions()
    {
        var r = new int[Batch];
        for (int b = 0; b < Batch; b++) r[b] = TensorPrimitives.IndexOfMax(Logits.AsSpan(b * NumLabels, NumLabels));
        return r;
    }
}

/// <summary>
/// The Keras tutorial text classifier: token + learned position embeddings → one post-norm transformer
/// block → global average pooling → Dropout → Dense(20, relu) → Dropout → Dense(labels, softmax).
/// </summary>
/// <remarks>
/// Written as explicit forward/backward passes over flat buffers (as llm.c) because the whole model is
/// a handful of GEMMs; every activation the backward needs is cached by the forward in a workspace sized
/// for the batch. Block (post-norm, as the tutorial):
/// a = MHA(x, x); h₁ = LN₁(x + Dropout(a)); f = W₂·relu(W₁·h₁ + b₁) + b₂; h₂ = LN₂(h₁ + Dropout(f)).
/// MHA: per head, softmax(Q·Kᵀ/√key_dim + mask)·V, heads concatenated then projected back to EmbedDim.
/// Initialisation as Keras: Glorot-uniform kernels with Keras' fan rules for the 3-D attention kernels
/// (Q/K/V [D, H, Kd]: fan_in = H·D, fan_out = Kd·D; output [H, Kd, D]: fan_in = Kd·H, fan_out = D·H),
/// zero biases, LayerNorm γ = 1, β = 0, embeddings U(−0.05, 0.05).
/// Parameter names and [out, in] weight layout follow PyTorch conventions.
/// </remarks>
public sealed class SeedTransformer
{
    const float MaskNegative = -1e9f;   // Keras' additive mask value for float32

    readonly List<FlatParameter> _parameters = [];
    readonly FlatParameter _tok, _pos, _wq, _bq, _wk, _bk, _wv, _bv, _wo, _bo, _ln1g, _ln1b, _w1, _b1, _w2, _b2, _ln2g, _ln2b, _wd, _bd, _wc, _bc;
    Workspace? _ws;

    /// <summary>The configuration.</summary>
    public SeedTransformerConfig Config { get; }

    /// <summary>All parameters in a fixed order (the order of the state dict and the optimizer state).</summary>
    public IReadOnlyList<FlatParameter> Parameters => _parameters;

    /// <summary>Training mode enables dropout.</summary>
    public bool Training { get; set; } = true;

    /// <summary>Threads for the attention loop and the GEMMs (≤ 0: the caller's <see cref="ExecutionScope"/>).</summary>
    public int Threads { get; set; }

    /// <summary>A freshly initialised model (Keras initialisers) drawing from <paramref name="rng"/>.</summary>
    public SeedTransformer(SeedTransformerConfig config, Random rng)
    {
        config.Validate();
        Config = config;
        int v = config.VocabSize, t = config.SequenceLength, d = config.EmbedDim, hk = config.NumHeads * config.KeyDim;
        int h = config.NumHeads, kd = config.KeyDim, f = config.FfDim, dd = config.DenseDim, c = config.NumLabels;
        // Creation order = the order Keras builds the layers, so a seed means the same thing run to run.
        _tok = Add("embeddings.token.weight", [v, d], Uniform(rng, v * d, 0.05f));
        _pos = Add("embeddings.position.weight", [t, d], Uniform(rng, t * d, 0.05f));
        float qkvLimit = GlorotLimit(h * d, kd * d);
        _wq = Add("block.attention.query.weight", [hk, d], Uniform(rng, hk * d, qkvLimit));
        _bq = Add("block.attention.query.bias", [hk], new float[hk]);
        _wk = Add("block.attention.key.weight", [hk, d], Uniform(rng, hk * d, qkvLimit));
        _bk = Add("block.attention.key.bias", [hk], new float[hk]);
        _wv = Add("block.attention.value.weight", [hk, d], Uniform(rng, hk * d, qkvLimit));
        _bv = Add("block.attention.value.bias", [hk], new float[hk]);
        _wo = Add("block.attention.output.weight", [d, hk], Uniform(rng, d * hk, GlorotLimit(kd * h, d * h)));
        _bo = Add("block.attention.output.bias", [d], new float[d]);
        _w1 = Add("block.ffn.dense1.weight", [f, d], Uniform(rng, f * d, GlorotLimit(d, f)));
        _b1 = Add("block.ffn.dense1.bias", [f], new float[f]);
        _w2 = Add("block.ffn.dense2.weight", [d, f], Uniform(rng, d * f, GlorotLimit(f, d)));
        _b2 = Add("block.ffn.dense2.bias", [d], new float[d]);
        _ln1g = Add("block.attention_norm.weight", [d], Ones(d));
        _ln1b = Add("block.attention_norm.bias", [d], new float[d]);
        _ln2g = Add("block.ffn_norm.weight", [d], Ones(d));
        _ln2b = Add("block.ffn_norm.bias", [d], new float[d]);
        _wd = Add("classifier.dense.weight", [dd, d], Uniform(rng, dd * d, GlorotLimit(d, dd)));
        _bd = Add("classifier.dense.bias", [dd], new float[dd]);
        _wc = Add("classifier.output.weight", [c, dd], Uniform(rng, c * dd, GlorotLimit(dd, c)));
        _bc = Add("classifier.output.bias", [c], new float[c]);
    }

    FlatParameter Add(string name, int[] shape, float[] value)
    {
        var p = new FlatParameter(name, shape, value, new float[value.Length]);
        _parameters.Add(p);
        return p;
    }

    static float GlorotLimit(int fanIn, int fanOut) => MathF.Sqrt(6f / (fanIn + fanOut));

    static float[] Uniform(Random rng, int n, float limit)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * limit;
        return a;
    }

    static float[] Ones(int n) { var a = new float[n]; a.AsSpan().Fill(1f); return a; }

    // ---------------------------------------------------------------- save / load

    /// <summary>File names of a seed-transformer model directory (the text vectorizer's own files sit beside them).</summary>
    public const string ConfigFileName = "config.json", WeightsFileName = "model.safetensors";

    /// <summary>
    /// Writes config.json (<c>model_type</c> "sharpformer-seed-transformer") and model.safetensors into
    /// <paramref name="directory"/> (created if needed), each through a temporary file and a rename.
    /// The caller saves the text vectorizer into the same directory.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var c = Config;
        var labels = c.Labels ?? Enumerable.Range(0, c.NumLabels).Select(i => $"LABEL_{i}").ToList();
        var json = new System.Text.Json.Nodes.JsonObject
        {
            ["model_type"] = SeedTransformerConfig.ModelType,
            ["architectures"] = new System.Text.Json.Nodes.JsonArray("SeedTransformerForSequenceClassification"),
            ["vocab_size"] = c.VocabSize, ["sequence_length"] = c.SequenceLength, ["embed_dim"] = c.EmbedDim,
            ["num_heads"] = c.NumHeads, ["key_dim"] = c.KeyDim, ["ff_dim"] = c.FfDim, ["dense_dim"] = c.DenseDim,
            ["num_labels"] = c.NumLabels, ["dropout"] = c.Dropout, ["layer_norm_eps"] = c.LayerNormEps,
            ["masked_attention"] = c.MaskedAttention, ["masked_pooling"] = c.MaskedPooling,
            ["id2label"] = new System.Text.Json.Nodes.JsonObject(labels.Select((l, i) => KeyValuePair.Create(i.ToString(System.Globalization.CultureInfo.InvariantCulture), (System.Text.Json.Nodes.JsonNode?)l))),
            ["label2id"] = new System.Text.Json.Nodes.JsonObject(labels.Select((l, i) => KeyValuePair.Create(l, (System.Text.Json.Nodes.JsonNode?)i))),
        };
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(directory, ConfigFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        Checkpoints.SafeTensorsWriter.Write(Path.Combine(directory, WeightsFileName),
            _parameters.Select(p => (p.Name, p.Shape, (ReadOnlyMemory<float>)p.Value)).ToList());
    }

    /// <summary>True when <paramref name="directory"/>'s config.json declares this model type.</summary>
    public static bool IsSeedTransformerDirectory(string directory)
    {
        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path)) return false;
        try { return System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))?["model_type"]?.GetValue<string>() == SeedTransformerConfig.ModelType; }
        catch (JsonException) { return false; }
    }

    /// <summary>Reads the config of a model directory written by <see cref="Save"/>.</summary>
    public static SeedTransformerConfig LoadConfig(string directory)
    {
        var path = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(path)) throw new SeedTransformerException($"{path} does not exist; '{directory}' is not a seed-transformer model directory.");
        System.Text.Json.Nodes.JsonObject o;
        try { o = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject(); }
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
        IReadOnlyList<string>? labels = o["id2label"] is System.Text.Json.Nodes.JsonObject id2
            ? Enumerable.Range(0, n).Select(i => id2[i.ToString(System.Globalization.CultureInfo.InvariantCulture)]?.GetValue<string>()
                ?? throw new SeedTransformerException($"{path}: id2label has no entry for {i}.")).ToList()
            : null;
        var config = new SeedTransformerConfig(Get<int>("vocab_size"), Get<int>("sequence_length"), Get<int>("embed_dim"), Get<int>("num_heads"),
            Get<int>("key_dim"), Get<int>("ff_dim"), Get<int>("dense_dim"), n, Get<float>("dropout"), Get<float>("layer_norm_eps"),
            Get<bool>("masked_attention"), Get<bool>("masked_pooling"), labels);
        config.Validate();
        return config;
    }

    /// <summary>Loads a model directory written by <see cref="Save"/> (in eval mode). Every parameter must be present with its shape.</summary>
    public static SeedTransformer Load(string directory)
    {
        var config = LoadConfig(directory);
        var model = new SeedTransformer(config, new Random(0)) { Training = false };
        var path = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(path)) throw new SeedTransformerException($"{path} does not exist; the model directory is incomplete.");
        using var sd = Checkpoints.SafeTensorsReader.Read(path);
        foreach (var p in model._parameters)
        {
            if (!sd.TryGetValue(p.Name, out var t)) throw new SeedTransformerException($"{path} has no tensor '{p.Name}'.");
            if (!t.Shape.SequenceEqual(p.Shape))
                throw new SeedTransformerException($"{path}: '{p.Name}' has shape [{string.Join(", ", t.Shape)}], the config implies [{string.Join(", ", p.Shape)}].");
            t.CopyTo(p.Value);
        }
        var extra = sd.Keys.Except(model._parameters.Select(p => p.Name)).ToList();
        if (extra.Count > 0) throw new SeedTransformerException($"{path} holds tensors this model does not have: {string.Join(", ", extra.Take(5))}.");
        return model;
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad()
    {
        foreach (var p in _parameters) Array.Clear(p.Grad);
    }

    /// <summary>Total number of parameters.</summary>
    public long ParameterCount => _parameters.Sum(p => (long)p.Size);

    // ---------------------------------------------------------------- forward

    /// <summary>
    /// Forward pass over <paramref name="ids"/> ([batch, SequenceLength], 0 = padding). Dropout is active when
    /// <see cref="Training"/> is set, drawing from <paramref name="rng"/> (required then). Caches what
    /// <see cref="Backward"/> needs.
    /// </summary>
    public SeedTransformerOutput Forward(ReadOnlySpan<int> ids, int batch, Random? rng = null)
    {
        var cfg = Config;
        int T = cfg.SequenceLength, D = cfg.EmbedDim, H = cfg.NumHeads, Kd = cfg.KeyDim, HK = H * Kd, F = cfg.FfDim, DD = cfg.DenseDim, C = cfg.NumLabels;
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be ≥ 1.");
        if (ids.Length != batch * T)
            throw new SeedTransformerException($"Seed transformer input holds {ids.Length} ids; batch {batch} × sequence length {T} = {batch * T} expected.");
        bool dropout = Training && cfg.Dropout > 0;
        if (dropout && rng == null) throw new ArgumentNullException(nameof(rng), "Training-mode forward needs a Random for dropout.");
        int N = batch * T;
        int threads = Threads > 0 ? Threads : ExecutionScope.Threads;
        var ws = _ws = Workspace.Ensure(_ws, cfg, batch, threads);
        ws.Batch = batch;
        ws.DropoutActive = dropout;

        ids.CopyTo(ws.Ids);
        for (int i = 0; i < N; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)cfg.VocabSize)
                throw new SeedTransformerException($"Token id {id} at row {i / T}, position {i % T} is outside the vocabulary of {cfg.VocabSize}.");
        }
        // Valid-key counts per row (masking) and the additive key mask.
        for (int b = 0; b < batch; b++)
        {
            int count = 0;
            for (int t = 0; t < T; t++)
            {
                bool valid = ids[b * T + t] != 0;
                if (valid) count++;
                ws.KeyMask[b * T + t] = valid ? 0f : MaskNegative;
            }
            ws.ValidCount[b] = count;
        }

        // x0 = tok[ids] + pos
        Embedding.Gather(_tok.Value, cfg.VocabSize, D, ids, ws.X0);
        for (int b = 0; b < batch; b++)
            TensorPrimitives.Add(ws.X0.AsSpan(b * T * D, T * D), _pos.Value, ws.X0.AsSpan(b * T * D, T * D));

        // Q, K and V in one product: QKV[N, 3·HK] = X0·[Wq; Wk; Wv]ᵀ + [bq; bk; bv] (Q at column 0, K at HK, V at 2·HK).
        _wq.Value.CopyTo(ws.Wqkv, 0); _wk.Value.CopyTo(ws.Wqkv, HK * D); _wv.Value.CopyTo(ws.Wqkv, 2 * HK * D);
        _bq.Value.CopyTo(ws.Bqkv, 0); _bk.Value.CopyTo(ws.Bqkv, HK); _bv.Value.CopyTo(ws.Bqkv, 2 * HK);
        LinearForward(ws.X0, N, D, ws.Wqkv, ws.Bqkv, 3 * HK, ws.Qkv, threads);

        // Flash-style fused attention over the Q, K, V column blocks of QKV; only each row's max and 1/sum are kept.
        Kernels.Attention.Forward(ws.Qkv, ws.Qkv.AsSpan(HK), ws.Qkv.AsSpan(2 * HK), ws.Ctx, AttentionLayout(batch), AttentionOptions,
            cfg.MaskedAttention ? ws.KeyMask.AsSpan(0, N) : default, ws.RowMax, ws.RowInvSum, default, threads);

        LinearForward(ws.Ctx, N, HK, _wo, _bo, D, ws.AttnOut, threads);
        var r1 = ws.R1.AsSpan(0, N * D);
        if (dropout)
        {
            FillDropoutMask(ws.M1.AsSpan(0, N * D), cfg.Dropout, rng!);
            TensorPrimitives.Multiply(ws.AttnOut.AsSpan(0, N * D), ws.M1.AsSpan(0, N * D), r1);
            TensorPrimitives.Add(r1, ws.X0.AsSpan(0, N * D), r1);
        }
        else TensorPrimitives.Add(ws.AttnOut.AsSpan(0, N * D), ws.X0.AsSpan(0, N * D), r1);
        LayerNorm.Forward(r1, _ln1g.Value, _ln1b.Value, ws.H1, N, D, cfg.LayerNormEps, ws.Mean1, ws.Rstd1, threads);

        LinearForward(ws.H1, N, D, _w1, _b1, F, ws.F1Pre, threads);
        Activations.Relu(ws.F1Pre.AsSpan(0, N * F), ws.F1.AsSpan(0, N * F));
        LinearForward(ws.F1, N, F, _w2, _b2, D, ws.F2, threads);
        var r2 = ws.R2.AsSpan(0, N * D);
        if (dropout)
        {
            FillDropoutMask(ws.M2.AsSpan(0, N * D), cfg.Dropout, rng!);
            TensorPrimitives.Multiply(ws.F2.AsSpan(0, N * D), ws.M2.AsSpan(0, N * D), r2);
            TensorPrimitives.Add(r2, ws.H1.AsSpan(0, N * D), r2);
        }
        else TensorPrimitives.Add(ws.F2.AsSpan(0, N * D), ws.H1.AsSpan(0, N * D), r2);
        LayerNorm.Forward(r2, _ln2g.Value, _ln2b.Value, ws.H2, N, D, cfg.LayerNormEps, ws.Mean2, ws.Rstd2, threads);

        // Global average pooling over positions (all, or valid ones).
        for (int b = 0; b < batch; b++)
        {
            var pooled = ws.Pooled.AsSpan(b * D, D);
            pooled.Clear();
            int count = 0;
            for (int t = 0; t < T; t++)
            {
                if (cfg.MaskedPooling && ids[b * T + t] == 0) continue;
                TensorPrimitives.Add(pooled, ws.H2.AsSpan((b * T + t) * D, D), pooled);
                count++;
            }
            if (count > 0) TensorPrimitives.Multiply(pooled, 1f / count, pooled);
        }
        var pooledIn = ws.PooledDrop.AsSpan(0, batch * D);
        if (dropout)
        {
            FillDropoutMask(ws.M3.AsSpan(0, batch * D), cfg.Dropout, rng!);
            TensorPrimitives.Multiply(ws.Pooled.AsSpan(0, batch * D), ws.M3.AsSpan(0, batch * D), pooledIn);
        }
        else ws.Pooled.AsSpan(0, batch * D).CopyTo(pooledIn);

        LinearForward(ws.PooledDrop, batch, D, _wd, _bd, DD, ws.DensePre, threads);
        Activations.Relu(ws.DensePre.AsSpan(0, batch * DD), ws.Dense.AsSpan(0, batch * DD));
        if (dropout)
        {
            FillDropoutMask(ws.M4.AsSpan(0, batch * DD), cfg.Dropout, rng!);
            TensorPrimitives.Multiply(ws.Dense.AsSpan(0, batch * DD), ws.M4.AsSpan(0, batch * DD), ws.DenseDrop.AsSpan(0, batch * DD));
        }
        else ws.Dense.AsSpan(0, batch * DD).CopyTo(ws.DenseDrop);
        var logits = new float[batch * C];
        LinearForward(ws.DenseDrop, batch, DD, _wc, _bc, C, logits, threads);
        ws.Logits = logits;
        ws.ForwardDone = true;
        return new SeedTransformerOutput(logits, batch, C);
    }

    /// <summary>
    /// Mean sparse categorical cross-entropy of the last forward against <paramref name="labels"/>, and
    /// the gradient of that mean with respect to the logits (times <paramref name="gradScale"/>) written to the workspace.
    /// </summary>
    /// <remarks>loss = −(1/B)·Σ_b log softmax(z_b)[y_b]; ∂loss/∂z_b = (softmax(z_b) − onehot(y_b)) / B.</remarks>
    public float CrossEntropyLoss(ReadOnlySpan<int> labels, float gradScale = 1f)
    {
        var ws = _ws ?? throw new InvalidOperationException("Call Forward before CrossEntropyLoss.");
        int B = ws.Batch, C = Config.NumLabels;
        if (labels.Length != B) throw new SeedTransformerException($"{labels.Length} labels for a batch of {B}.");
        var logp = new float[B * C];
        Softmax.LogForward(ws.Logits, logp, B, C);
        double loss = 0;
        for (int b = 0; b < B; b++)
        {
            int y = labels[b];
            if ((uint)y >= (uint)C) throw new SeedTransformerException($"Label {y} at row {b} is outside [0, {C}).");
            loss -= logp[b * C + y];
            for (int c = 0; c < C; c++)
                ws.DLogits[b * C + c] = (MathF.Exp(logp[b * C + c]) - (c == y ? 1f : 0f)) * gradScale / B;
        }
        return (float)(loss / B);
    }

    /// <summary>
    /// Backward from the logits gradient set by <see cref="CrossEntropyLoss"/>; gradients are added to each
    /// parameter's <see cref="FlatParameter.Grad"/> (call <see cref="ZeroGrad"/> between steps).
    /// </summary>
    public void Backward()
    {
        var ws = _ws;
        if (ws == null || !ws.ForwardDone) throw new InvalidOperationException("Backward needs a preceding Forward and CrossEntropyLoss.");
        ws.ForwardDone = false;
        var cfg = Config;
        int B = ws.Batch, T = cfg.SequenceLength, D = cfg.EmbedDim, H = cfg.NumHeads, Kd = cfg.KeyDim, HK = H * Kd, F = cfg.FfDim, DD = cfg.DenseDim, C = cfg.NumLabels;
        int N = B * T;
        int threads = Threads > 0 ? Threads : ExecutionScope.Threads;
        bool dropout = ws.DropoutActive;

        // classifier
        LinearBackward(ws.DLogits, B, C, ws.DenseDrop, DD, _wc, _bc, ws.DDense, threads);
        if (dropout) TensorPrimitives.Multiply(ws.DDense.AsSpan(0, B * DD), ws.M4.AsSpan(0, B * DD), ws.DDense.AsSpan(0, B * DD));
        Activations.ReluBackward(ws.DensePre.AsSpan(0, B * DD), ws.DDense.AsSpan(0, B * DD), ws.DDense.AsSpan(0, B * DD));
        LinearBackward(ws.DDense, B, DD, ws.PooledDrop, D, _wd, _bd, ws.DPooled, threads);
        if (dropout) TensorPrimitives.Multiply(ws.DPooled.AsSpan(0, B * D), ws.M3.AsSpan(0, B * D), ws.DPooled.AsSpan(0, B * D));

        // pooling
        var dH2 = ws.DBufA.AsSpan(0, N * D);
        for (int b = 0; b < B; b++)
        {
            int count = cfg.MaskedPooling ? ws.ValidCount[b] : T;
            float inv = count > 0 ? 1f / count : 0f;
            var dp = ws.DPooled.AsSpan(b * D, D);
            for (int t = 0; t < T; t++)
            {
                var dst = dH2.Slice((b * T + t) * D, D);
                if (cfg.MaskedPooling && ws.Ids[b * T + t] == 0) dst.Clear();
                else TensorPrimitives.Multiply(dp, inv, dst);
            }
        }

        // LN2 → dR2 (= dH1 residual part and dF2)
        var dR2 = ws.DBufB.AsSpan(0, N * D);
        LayerNorm.Backward(ws.R2, _ln2g.Value, ws.Mean2, ws.Rstd2, dH2, dR2, _ln2g.Grad, _ln2b.Grad, N, D);
        var dF2 = ws.DBufA.AsSpan(0, N * D);
        if (dropout) TensorPrimitives.Multiply(dR2, ws.M2.AsSpan(0, N * D), dF2); else dR2.CopyTo(dF2);
        LinearBackward(ws.DBufA, N, D, ws.F1, F, _w2, _b2, ws.DF1, threads, ws);
        Activations.ReluBackward(ws.F1Pre.AsSpan(0, N * F), ws.DF1.AsSpan(0, N * F), ws.DF1.AsSpan(0, N * F));
        var dH1 = ws.DBufC.AsSpan(0, N * D);
        LinearBackward(ws.DF1, N, F, ws.H1, D, _w1, _b1, ws.DBufC, threads, ws);
        TensorPrimitives.Add(dH1, dR2, dH1);

        // LN1 → dR1 (= dX0 residual part and dAttnOut)
        var dR1 = ws.DBufB.AsSpan(0, N * D);
        LayerNorm.Backward(ws.R1, _ln1g.Value, ws.Mean1, ws.Rstd1, dH1, dR1, _ln1g.Grad, _ln1b.Grad, N, D);
        var dAttn = ws.DBufA.AsSpan(0, N * D);
        if (dropout) TensorPrimitives.Multiply(dR1, ws.M1.AsSpan(0, N * D), dAttn); else dR1.CopyTo(dAttn);
        LinearBackward(ws.DBufA, N, D, ws.Ctx, HK, _wo, _bo, ws.DCtx, threads, ws);

        // Attention, probabilities recomputed per (sample, head) in cache; dQ, dK, dV land in dQKV, laid out as QKV.
        Kernels.Attention.Backward(ws.Qkv, ws.Qkv.AsSpan(HK), ws.Qkv.AsSpan(2 * HK), ws.DCtx, AttentionLayout(B), AttentionOptions,
            cfg.MaskedAttention ? ws.KeyMask.AsSpan(0, N) : default, ws.RowMax, ws.RowInvSum,
            ws.DQkv, 0f, ws.DQkv.AsSpan(HK), 0f, ws.DQkv.AsSpan(2 * HK), 0f, threads);

        // Q, K, V projections all read X0: their input gradients add up with the residual's (dR1, kept in DBufB),
        // which the fused product accumulates into directly (beta = 1).
        var dX0 = ws.DBufB.AsSpan(0, N * D);
        Array.Clear(ws.DWqkv); Array.Clear(ws.DBqkv);
        LinearBackward(ws.DQkv, N, 3 * HK, ws.X0, D, ws.Wqkv, ws.DWqkv, ws.DBqkv, ws.DBufB, threads, accumulateDx: true, ws);
        AddTo(_wq.Grad, ws.DWqkv.AsSpan(0, HK * D)); AddTo(_wk.Grad, ws.DWqkv.AsSpan(HK * D, HK * D)); AddTo(_wv.Grad, ws.DWqkv.AsSpan(2 * HK * D, HK * D));
        AddTo(_bq.Grad, ws.DBqkv.AsSpan(0, HK)); AddTo(_bk.Grad, ws.DBqkv.AsSpan(HK, HK)); AddTo(_bv.Grad, ws.DBqkv.AsSpan(2 * HK, HK));

        Embedding.ScatterAdd(dX0, ws.Ids.AsSpan(0, N), _tok.Grad, cfg.VocabSize, D);
        for (int b = 0; b < B; b++)
            TensorPrimitives.Add(_pos.Grad, dX0.Slice(b * T * D, T * D), _pos.Grad);
    }

    /// <summary>
    /// Attention probabilities of the last <see cref="Forward"/>: [batch, heads, SequenceLength, SequenceLength]
    /// (row = query, column = key), copied out.
    /// </summary>
    public float[] LastAttentionProbabilities()
    {
        var ws = _ws ?? throw new InvalidOperationException("Call Forward first.");
        int T = Config.SequenceLength, count = ws.Batch * Config.NumHeads;
        var probs = new float[(long)count * T * T > Array.MaxLength
            ? throw new SharpformerException($"{count} heads × {T}² attention probabilities exceed one array; use a smaller batch.")
            : count * T * T];
        // Recomputed from the cached Q and K (the forward keeps no T×T buffers); the context goes to a scratch buffer.
        int HK = Config.NumHeads * Config.KeyDim;
        Kernels.Attention.Forward(ws.Qkv, ws.Qkv.AsSpan(HK), ws.Qkv.AsSpan(2 * HK), new float[ws.Batch * T * HK], AttentionLayout(ws.Batch), AttentionOptions,
            Config.MaskedAttention ? ws.KeyMask.AsSpan(0, ws.Batch * T) : default, default, default, probs, Threads > 0 ? Threads : ExecutionScope.Threads);
        return probs;
    }

    // Q, K and V are the column blocks of the fused [N, 3·HK] projection; the context is [N, HK].
    AttentionLayout AttentionLayout(int batch)
    {
        int T = Config.SequenceLength, H = Config.NumHeads, Kd = Config.KeyDim, HK = H * Kd;
        return new AttentionLayout(batch, H, T, T, Kd, Kd, 3 * HK, 3 * HK, 3 * HK, HK);
    }

    // Keras: softmax(Q·Kᵀ·(1/√key_dim) + mask), the factor riding on the score product.
    AttentionOptions AttentionOptions => new(1f / MathF.Sqrt(Config.KeyDim));

    // ---------------------------------------------------------------- helpers

    // Row blocks of the token-wise layers: a fixed split (so sums are the same run to run for a given thread count).
    const int RowBlock = 1024;

    static void LinearForward(float[] x, int n, int inF, FlatParameter w, FlatParameter bias, int outF, float[] y, int threads)
        => LinearForward(x, n, inF, w.Value, bias.Value, outF, y, threads);

    // y[N,out] = x[N,in]·Wᵀ + b, over row blocks in parallel, each block's bias added while it is in cache.
    static void LinearForward(float[] x, int n, int inF, float[] w, float[] bias, int outF, float[] y, int threads)
    {
        int blocks = (n + RowBlock - 1) / RowBlock;
        ForBlocks(blocks, threads, blk =>
        {
            int r0 = blk * RowBlock, rows = Math.Min(RowBlock, n - r0);
            var yb = y.AsSpan(r0 * outF, rows * outF);
            Gemm.Sgemm(false, true, rows, outF, inF, 1f, x.AsSpan(r0 * inF), inF, w, inF, 0f, yb, outF, threads: 1);
            for (int i = 0; i < rows; i++) TensorPrimitives.Add(yb.Slice(i * outF, outF), bias, yb.Slice(i * outF, outF));
        });
    }

    static void LinearBackward(float[] dy, int n, int outF, float[] x, int inF, FlatParameter w, FlatParameter bias, float[] dx, int threads, Workspace? ws = null)
        => LinearBackward(dy, n, outF, x, inF, w.Value, w.Grad, bias.Grad, dx, threads, accumulateDx: false, ws);

    // dW += dyᵀ·x, db += Σ_rows dy, dx = dy·W (dx += dy·W with accumulateDx). Large n: each worker takes a fixed
    // contiguous share of the rows, computes its partial dW and db and its rows of dx; partials are then added in
    // worker order, so the result is deterministic for a given thread count.
    static void LinearBackward(float[] dy, int n, int outF, float[] x, int inF, float[] w, float[] wGrad, float[] bGrad, float[] dx,
        int threads, bool accumulateDx, Workspace? ws)
    {
        int workers = ws == null || n < 2 * RowBlock ? 1 : Math.Min(threads, ws.Workers);
        if (workers <= 1)
        {
            Gemm.Sgemm(true, false, outF, inF, n, 1f, dy, outF, x, inF, 1f, wGrad, inF, threads);
            var db = bGrad.AsSpan();
            for (int i = 0; i < n; i++) TensorPrimitives.Add(db, dy.AsSpan(i * outF, outF), db);
            Gemm.Sgemm(false, false, n, inF, outF, 1f, dy, outF, w, inF, accumulateDx ? 1f : 0f, dx, inF, threads);
            return;
        }
        int pw = outF * inF + outF;
        var partial = ws!.Partials;
        Parallelism.For(workers, k =>
        {
            var (r0, r1) = Parallelism.Range(n, k, workers);
            int rows = r1 - r0;
            var part = partial.AsSpan(k * pw, pw);
            part.Clear();
            if (rows == 0) return;
            Gemm.Sgemm(true, false, outF, inF, rows, 1f, dy.AsSpan(r0 * outF), outF, x.AsSpan(r0 * inF), inF, 0f, part, inF, threads: 1);
            var db = part.Slice(outF * inF, outF);
            for (int i = r0; i < r1; i++) TensorPrimitives.Add(db, dy.AsSpan(i * outF, outF), db);
            Gemm.Sgemm(false, false, rows, inF, outF, 1f, dy.AsSpan(r0 * outF), outF, w, inF, accumulateDx ? 1f : 0f, dx.AsSpan(r0 * inF), inF, threads: 1);
        });
        for (int k = 0; k < workers; k++)
        {
            AddTo(wGrad, partial.AsSpan(k * pw, outF * inF));
            AddTo(bGrad, partial.AsSpan(k * pw + outF * inF, outF));
        }
    }

    static void AddTo(Span<float> acc, ReadOnlySpan<float> x) => TensorPrimitives.Add(acc, x, acc);

    // Blocks handed out dynamically to up to `threads` workers (each block's result does not depend on who runs it).
    static void ForBlocks(int blocks, int threads, Action<int> body)
    {
        int workers = Math.Min(threads, blocks);
        if (workers <= 1 || Parallelism.IsInsideParallelRegion) { for (int i = 0; i < blocks; i++) body(i); return; }
        int next = -1;
        Parallelism.For(workers, _ => { int i; while ((i = Interlocked.Increment(ref next)) < blocks) body(i); });
    }

    // Inverted dropout: keep with probability 1 − p and scale by 1/(1 − p). With a TrainingRandom each
    // 64-bit draw decides four elements by 16-bit lanes (drop when lane < p·2¹⁶): p is quantised to
    // 1/65536, far below the statistical noise of dropout, and mask generation stops dominating small models.
    internal static void FillDropoutMask(Span<float> mask, float p, Random rng)
    {
        float keep = 1f / (1f - p);
        if (rng is Training.TrainingRandom fast)
        {
            uint threshold = (uint)MathF.Round(p * 65536f);
            int i = 0;
            // Sixteen elements from four draws at a time: the draws' 16-bit lanes in memory order are exactly the
            // elements the scalar loop below assigns them (bits 0-15 of a draw first), so the mask is the same.
            ref float m0 = ref MemoryMarshal.GetReference(mask);
            var vThreshold = Vector256.Create(threshold);
            var vKeep = Vector256.Create(keep);
            for (; i + 16 <= mask.Length; i += 16)
            {
                ulong r0 = fast.NextUInt64(), r1 = fast.NextUInt64(), r2 = fast.NextUInt64(), r3 = fast.NextUInt64();
                var (lo, hi) = Vector256.Widen(Vector256.Create(r0, r1, r2, r3).AsUInt16());
                Vector256.ConditionalSelect(Vector256.LessThan(lo, vThreshold).AsSingle(), Vector256<float>.Zero, vKeep).StoreUnsafe(ref m0, (nuint)i);
                Vector256.ConditionalSelect(Vector256.LessThan(hi, vThreshold).AsSingle(), Vector256<float>.Zero, vKeep).StoreUnsafe(ref m0, (nuint)(i + 8));
            }
            for (; i + 4 <= mask.Length; i += 4)
            {
                ulong r = fast.NextUInt64();
                mask[i] = (uint)(r & 0xFFFF) < threshold ? 0f : keep;
                mask[i + 1] = (uint)((r >> 16) & 0xFFFF) < threshold ? 0f : keep;
                mask[i + 2] = (uint)((r >> 32) & 0xFFFF) < threshold ? 0f : keep;
                mask[i + 3] = (uint)(r >> 48) < threshold ? 0f : keep;
            }
            for (; i < mask.Length; i++) mask[i] = (uint)(fast.NextUInt64() >> 48) < threshold ? 0f : keep;
            return;
        }
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextSingle() < p ? 0f : keep;
    }

    sealed class Workspace
    {
        public int Capacity, Batch, Workers;
        public bool DropoutActive, ForwardDone;
        public float[] Logits = [];
        public int[] Ids = [], ValidCount = [];
        public float[] KeyMask = [], X0 = [], Qkv = [], Wqkv = [], Bqkv = [], RowMax = [], RowInvSum = [], Partials = [], Ctx = [], AttnOut = [], M1 = [], R1 = [], H1 = [],
            Mean1 = [], Rstd1 = [], F1Pre = [], F1 = [], F2 = [], M2 = [], R2 = [], H2 = [], Mean2 = [], Rstd2 = [], Pooled = [], M3 = [],
            PooledDrop = [], DensePre = [], Dense = [], M4 = [], DenseDrop = [], DLogits = [], DDense = [], DPooled = [],
            DBufA = [], DBufB = [], DBufC = [], DF1 = [], DCtx = [], DQkv = [], DWqkv = [], DBqkv = [];

        public static Workspace Ensure(Workspace? ws, SeedTransformerConfig c, int batch, int threads)
        {
            int workers = Math.Max(1, threads);
            if (ws != null && ws.Capacity >= batch && ws.Workers >= workers) return ws;
            int T = c.SequenceLength, D = c.EmbedDim, HK = c.NumHeads * c.KeyDim, F = c.FfDim, DD = c.DenseDim, C = c.NumLabels;
            int N = batch * T;
            int big = Math.Max(D, HK);
            return new Workspace
            {
                Capacity = batch, Workers = workers,
                Ids = new int[N], ValidCount = new int[batch], KeyMask = new float[N],
                X0 = new float[N * D], Qkv = new float[N * 3 * HK], Wqkv = new float[3 * HK * D], Bqkv = new float[3 * HK],
                RowMax = new float[N * c.NumHeads], RowInvSum = new float[N * c.NumHeads],
                Partials = new float[workers * (Math.Max(3 * HK, Math.Max(D, F)) * Math.Max(D, Math.Max(HK, F)) + Math.Max(3 * HK, Math.Max(D, F)))],
                Ctx = new float[N * HK], AttnOut = new float[N * D], M1 = new float[N * D], R1 = new float[N * D], H1 = new float[N * D],
                Mean1 = new float[N], Rstd1 = new float[N], F1Pre = new float[N * F], F1 = new float[N * F], F2 = new float[N * D],
                M2 = new float[N * D], R2 = new float[N * D], H2 = new float[N * D], Mean2 = new float[N], Rstd2 = new float[N],
                Pooled = new float[batch * D], M3 = new float[batch * D], PooledDrop = new float[batch * D],
                DensePre = new float[batch * DD], Dense = new float[batch * DD], M4 = new float[batch * DD], DenseDrop = new float[batch * DD],
                DLogits = new float[batch * C], DDense = new float[batch * DD], DPooled = new float[batch * D],
                DBufA = new float[N * big], DBufB = new float[N * big], DBufC = new float[N * big], DF1 = new float[N * F],
                DCtx = new float[N * HK], DQkv = new float[N * 3 * HK], DWqkv = new float[3 * HK * D], DBqkv = new float[3 * HK],
            };
        }
    }
}

/// <summary>Bad input to the seed transformer (wrong length, id or label out of range).</summary>
public sealed class SeedTransformerException(string message) : SharpformerException(message);
