using System.Globalization;
using Sharpformer.Checkpoints;
using Sharpformer.Kernels;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

// GPT-2 (Radford et al. 2019) as transformers 4.30 implements it (models/gpt2/modeling_gpt2.py): a pre-norm decoder,
// Conv1D projections stored [in, out], fused c_attn (q | k | v), the LM head tied to wte. Parameter names equal the
// checkpoint keys. Inference (no autograd) runs attention on the key/value cache through the kernel; training runs the
// same attention op through Functional.Attention.

/// <summary>Input of a causal LM step: ids [B, T], attention mask [B, past + T] (1 = token), optional position ids [B, T].</summary>
/// <remarks>The mask spans the cached positions too (HF's convention). Without position ids, positions are past … past + T − 1;
/// generation passes cumsum(mask) − 1 so left-padded rows start at position 0.</remarks>
public sealed record CausalLMInput
{
    public CausalLMInput(int[] inputIds, int batchSize, int sequenceLength, int[]? attentionMask = null, int[]? positionIds = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (batchSize < 1 || sequenceLength < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size ({batchSize}) and sequence length ({sequenceLength}) must be at least 1.");
        if (inputIds.Length != batchSize * sequenceLength)
            throw new ArgumentException($"input_ids holds {inputIds.Length} ids, but batch {batchSize} × sequence {sequenceLength} needs {batchSize * sequenceLength}.", nameof(inputIds));
        if (attentionMask != null && (attentionMask.Length % batchSize != 0 || attentionMask.Length / batchSize < sequenceLength))
            throw new ArgumentException($"attention_mask holds {attentionMask.Length} values; batch {batchSize} × (cached + {sequenceLength}) expected.", nameof(attentionMask));
        if (attentionMask != null)
            foreach (var m in attentionMask)
                if (m is not (0 or 1)) throw new ArgumentException($"attention_mask holds {m}; only 0 (padding) and 1 (token) are allowed.", nameof(attentionMask));
        if (positionIds != null && positionIds.Length != inputIds.Length)
            throw new ArgumentException($"position_ids holds {positionIds.Length} values; {inputIds.Length} expected.", nameof(positionIds));
        InputIds = inputIds; BatchSize = batchSize; SequenceLength = sequenceLength; AttentionMask = attentionMask; PositionIds = positionIds;
    }

    public int[] InputIds { get; }
    public int BatchSize { get; }
    public int SequenceLength { get; }
    public int[]? AttentionMask { get; }
    public int[]? PositionIds { get; }

    /// <summary>One row per sequence, no padding.</summary>
    public static CausalLMInput FromIds(params int[][] rows)
    {
        int t = rows[0].Length;
        if (rows.Any(r => r.Length != t)) throw new ArgumentException("Rows differ in length; pad them and pass an attention mask.", nameof(rows));
        return new CausalLMInput(rows.SelectMany(r => r).ToArray(), rows.Length, t);
    }
}

/// <summary>What the bare decoder returns.</summary>
/// <param name="LastHiddenState">[B, T, H] after ln_f.</param>
/// <param name="HiddenStates">When requested: n_layer + 1 tensors [B, T, H]: embeddings, each block's output, the last one after ln_f (HF's convention).</param>
/// <param name="Attentions">When requested: per layer [B, heads, T, past + T].</param>
public sealed record DecoderOutput(Tensor LastHiddenState, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>Logits [B, T, V], the shifted next-token loss when labels were given, and the decoder output.</summary>
public sealed record CausalLMOutput(Tensor Logits, Tensor? Loss, DecoderOutput Decoder);

/// <summary>
/// Keys and values of every layer for the positions seen so far: per layer two buffers [B, Capacity, H·d] (rows of a
/// sample contiguous), so a decode step appends one row per sample in place and attention reads the first
/// <see cref="Length"/> rows directly — no copy of the cache per token. Capacity grows by doubling when exceeded.
/// </summary>
public sealed class KeyValueCache
{
    float[][] _keys, _values;

    public KeyValueCache(int layers, int batchSize, int width, int capacity)
    {
        if (layers < 0 || batchSize < 1 || width < 1 || capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), "KeyValueCache: sizes must be positive.");
        Layers = layers; BatchSize = batchSize; Width = width; Capacity = capacity;
        _keys = NewBuffers(); _values = NewBuffers();
    }

    public int Layers { get; }
    public int BatchSize { get; }
    /// <summary>H·d: one key (or value) row of all heads.</summary>
    public int Width { get; }
    public int Capacity { get; private set; }
    /// <summary>Positions stored (the same for every sample; padding included).</summary>
    public int Length { get; private set; }

    float[][] NewBuffers() => Enumerable.Range(0, Layers).Select(_ => new float[(long)BatchSize * Capacity * Width]).ToArray();

    /// <summary>Keys of one layer as [B, Length, H·d] (a copy, for inspection).</summary>
    public Tensor Keys(int layer) => Copy(_keys[layer]);
    /// <summary>Values of one layer as [B, Length, H·d] (a copy).</summary>
    public Tensor Values(int layer) => Copy(_values[layer]);

    Tensor Copy(float[] buffer)
    {
        var t = Tensor.Zeros(BatchSize, Length, Width);
        for (int b = 0; b < BatchSize; b++) buffer.AsSpan(b * Capacity * Width, Length * Width).CopyTo(t.Data.AsSpan(b * Length * Width));
        return t;
    }

    internal ReadOnlySpan<float> KeyRows(int layer, int b, int rows) => _keys[layer].AsSpan(b * Capacity * Width, rows * Width);
    internal ReadOnlySpan<float> ValueRows(int layer, int b, int rows) => _values[layer].AsSpan(b * Capacity * Width, rows * Width);

    /// <summary>Makes room for <paramref name="needed"/> positions (capacity at least doubles, so appends are amortised O(1)).</summary>
    public void Reserve(int needed)
    {
        if (needed <= Capacity) return;
        int old = Capacity;
        Capacity = Math.Max(needed, 2 * old);
        for (int l = 0; l < Layers; l++)
        {
            _keys[l] = Grow(_keys[l], old);
            _values[l] = Grow(_values[l], old);
        }
    }

    float[] Grow(float[] src, int oldCapacity)
    {
        var dst = new float[(long)BatchSize * Capacity * Width];
        for (int b = 0; b < BatchSize; b++) src.AsSpan(b * oldCapacity * Width, Length * Width).CopyTo(dst.AsSpan(b * Capacity * Width));
        return dst;
    }

    // Copies the k and v column blocks of a fused qkv [B, T, 3·W] into rows Length … Length + T − 1 of one layer.
    internal void Write(int layer, ReadOnlySpan<float> qkv, int t)
    {
        int w = Width;
        for (int b = 0; b < BatchSize; b++)
            for (int i = 0; i < t; i++)
            {
                var row = qkv.Slice((b * t + i) * 3 * w);
                long dst = ((long)b * Capacity + Length + i) * w;
                row.Slice(w, w).CopyTo(_keys[layer].AsSpan((int)dst, w));
                row.Slice(2 * w, w).CopyTo(_values[layer].AsSpan((int)dst, w));
            }
    }

    internal void Advance(int t) => Length += t;

    /// <summary>
    /// Appends the keys and values of a fused q | k | v [B, T, 3·W] to <paramref name="layer"/> and attends its T queries over the
    /// Length + T cached positions with the attention kernel: the context [B, T, W] and, when asked, the probabilities
    /// [B, heads, T, Length + T]. <paramref name="keyMask"/>: additive [B, Length + T], or null. Call <see cref="Advance"/> once
    /// every layer has been run. The decode path of GPT-2 and of the Transformer decoder.
    /// </summary>
    internal (float[] Context, float[]? Probabilities) Attend(int layer, ReadOnlySpan<float> qkv, int t, int heads, in AttentionOptions options,
        float[]? keyMask, bool returnProbabilities)
    {
        int B = BatchSize, W = Width, keys = Length + t, headDim = W / heads;
        Reserve(keys);
        Write(layer, qkv, t);
        var ctx = new float[B * t * W];
        var p = returnProbabilities ? new float[(long)B * heads * t * keys] : null;
        // Rows of a sample are contiguous in the cache but samples are Capacity rows apart: one kernel call per sample.
        var layout = new AttentionLayout(1, heads, t, keys, headDim, headDim, 3 * W, W, W, W);
        for (int b = 0; b < B; b++)
            Kernels.Attention.Forward(qkv.Slice(b * t * 3 * W), KeyRows(layer, b, keys), ValueRows(layer, b, keys),
                ctx.AsSpan(b * t * W, t * W), layout, options, keyMask == null ? default : keyMask.AsSpan(b * keys, keys),
                default, default, p == null ? default : p.AsSpan(b * heads * t * keys, heads * t * keys));
        return (ctx, p);
    }

    /// <summary>A new cache whose row i is row <paramref name="rows"/>[i] of this one (repeats allowed; beam search when the number of live hypotheses changes).</summary>
    public KeyValueCache Gather(ReadOnlySpan<int> rows)
    {
        if (rows.Length < 1) throw new ArgumentException("Gather needs at least one row.", nameof(rows));
        var c = new KeyValueCache(Layers, rows.Length, Width, Math.Max(1, Length)) { Length = Length };
        int n = Length * Width;
        for (int l = 0; l < Layers; l++)
            for (int i = 0; i < rows.Length; i++)
            {
                if ((uint)rows[i] >= (uint)BatchSize) throw new ArgumentOutOfRangeException(nameof(rows), rows[i], $"the cache has {BatchSize} rows.");
                _keys[l].AsSpan(rows[i] * Capacity * Width, n).CopyTo(c._keys[l].AsSpan(i * c.Capacity * Width));
                _values[l].AsSpan(rows[i] * Capacity * Width, n).CopyTo(c._values[l].AsSpan(i * c.Capacity * Width));
            }
        return c;
    }

    /// <summary>Row b becomes the old row <paramref name="sourceRows"/>[b] (beam search keeps the surviving beams: HF's <c>_reorder_cache</c>).</summary>
    public void Reorder(ReadOnlySpan<int> sourceRows)
    {
        if (sourceRows.Length != BatchSize) throw new ArgumentException($"Reorder needs {BatchSize} source rows, got {sourceRows.Length}.", nameof(sourceRows));
        int n = Length * Width;
        var tmp = new float[(long)BatchSize * n];
        foreach (var buffers in new[] { _keys, _values })
            foreach (var buf in buffers)
            {
                for (int b = 0; b < BatchSize; b++) buf.AsSpan(sourceRows[b] * Capacity * Width, n).CopyTo(tmp.AsSpan(b * n));
                for (int b = 0; b < BatchSize; b++) tmp.AsSpan(b * n, n).CopyTo(buf.AsSpan(b * Capacity * Width));
            }
    }
}

/// <summary>Causal self-attention with the fused <c>c_attn</c> (q | k | v) and the output projection <c>c_proj</c>.</summary>
/// <remarks>P = softmax(Q·Kᵀ/(√d·(l + 1)?) + causal + padding); the 1/(l + 1) factor only with scale_attn_by_inverse_layer_idx.</remarks>
public sealed class Gpt2Attention : Module
{
    internal Gpt2Attention(VarBuilder vb, Gpt2Config c, int layerIdx)
    {
        var init = WeightInit.Normal(c.InitializerRange);
        CAttn = RegisterModule("c_attn", new Conv1D(vb.Push("c_attn"), c.NEmbd, 3 * c.NEmbd, init));
        // GPT-2's special scaled init of residual projections: N(0, initializer_range / √(2·n_layer)).
        CProj = RegisterModule("c_proj", new Conv1D(vb.Push("c_proj"), c.NEmbd, c.NEmbd, WeightInit.Normal(c.InitializerRange / Math.Sqrt(2.0 * c.NLayer))));
        AttnDropout = RegisterModule("attn_dropout", new Dropout((float)c.AttnPdrop));
        ResidDropout = RegisterModule("resid_dropout", new Dropout((float)c.ResidPdrop));
        Heads = c.NHead; HeadDim = c.HeadDim; LayerIdx = layerIdx;
        float divisor = (c.ScaleAttnWeights ? MathF.Sqrt(HeadDim) : 1f) * (c.ScaleAttnByInverseLayerIdx ? layerIdx + 1 : 1);
        // (q·k)/√d exactly as transformers when only √d scales; otherwise one division by the product of the factors.
        Options = c.ScaleAttnWeights && !c.ScaleAttnByInverseLayerIdx
            ? AttentionOptions.For(HeadDim, AttentionScaling.DivideScores).Options with { Causal = true }
            : new AttentionOptions(1f, divisor == 1f ? 0f : divisor, Causal: true);
        _queryFactor = MathF.Sqrt(HeadDim) / divisor;
    }

    public Conv1D CAttn { get; }
    public Conv1D CProj { get; }
    public Dropout AttnDropout { get; }
    public Dropout ResidDropout { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    public int LayerIdx { get; }
    internal AttentionOptions Options { get; }
    readonly float _queryFactor;

    /// <summary>x [B, T, H] → (c_proj(attention) [B, T, H], probabilities [B, heads, T, past + T] when asked).</summary>
    internal (Tensor Output, Tensor? Probabilities) Forward(Tensor x, float[]? keyMask, KeyValueCache? cache, bool returnProbabilities)
    {
        int B = x.Dim(0), T = x.Dim(1), W = Heads * HeadDim;
        var qkv = CAttn.Forward(x);
        Tensor context; Tensor? probs = null;
        if (cache == null)
        {
            // Autograd: the same fused op through Functional; 1/(l + 1) (or no √d) folded into the queries.
            var q = qkv.Slice(2, 0, W);
            if (_queryFactor != 1f) q = q.Mul(_queryFactor);
            var mask = keyMask == null ? null : Tensor.FromArray(keyMask, B, T);
            var r = Functional.Attention(q, qkv.Slice(2, W, W), qkv.Slice(2, 2 * W, W), Heads, mask, AttnDropout.P, AttnDropout.Training, AttnDropout.Rng,
                returnProbabilities, causal: true, scaling: AttentionScaling.DivideScores);
            context = r.Context; probs = r.Probabilities;
        }
        else
        {
            var (ctx, p) = cache.Attend(LayerIdx, qkv.Contiguous().AsSpan(), T, Heads, Options, keyMask, returnProbabilities);
            context = Tensor.FromArray(ctx, B, T, W);
            if (p != null) probs = Tensor.FromArray(p, B, Heads, T, cache.Length + T);
        }
        return (Forwarded(ResidDropout.Forward(CProj.Forward(context))), probs);
    }
}

/// <summary>Feed-forward: c_proj(act(c_fc(x))), dropout.</summary>
public sealed class Gpt2Mlp : Module
{
    internal Gpt2Mlp(VarBuilder vb, Gpt2Config c)
    {
        CFc = RegisterModule("c_fc", new Conv1D(vb.Push("c_fc"), c.NEmbd, c.InnerSize, WeightInit.Normal(c.InitializerRange)));
        CProj = RegisterModule("c_proj", new Conv1D(vb.Push("c_proj"), c.InnerSize, c.NEmbd, WeightInit.Normal(c.InitializerRange / Math.Sqrt(2.0 * c.NLayer))));
        Dropout = RegisterModule("dropout", new Dropout((float)c.ResidPdrop));
        Activation = PretrainedModel.ParseActivation(c.ActivationFunction, "activation_function");
    }

    public Conv1D CFc { get; }
    public Conv1D CProj { get; }
    public Dropout Dropout { get; }
    public HiddenActivation Activation { get; }

    public Tensor Forward(Tensor x)
    {
        return Forwarded(Dropout.Forward(CProj.Forward(PretrainedModel.Activate(CFc.Forward(x), Activation))));
    }
}

/// <summary>One pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
public sealed class Gpt2Block : Module
{
    internal Gpt2Block(VarBuilder vb, Gpt2Config c, int layerIdx)
    {
        float eps = (float)c.LayerNormEpsilon;
        Ln1 = RegisterModule("ln_1", new Nn.LayerNorm(vb.Push("ln_1"), c.NEmbd, eps));
        Attn = RegisterModule("attn", new Gpt2Attention(vb.Push("attn"), c, layerIdx));
        Ln2 = RegisterModule("ln_2", new Nn.LayerNorm(vb.Push("ln_2"), c.NEmbd, eps));
        Mlp = RegisterModule("mlp", new Gpt2Mlp(vb.Push("mlp"), c));
    }

    public Nn.LayerNorm Ln1 { get; }
    public Gpt2Attention Attn { get; }
    public Nn.LayerNorm Ln2 { get; }
    public Gpt2Mlp Mlp { get; }

    internal (Tensor Hidden, Tensor? Probabilities) Forward(Tensor x, float[]? keyMask, KeyValueCache? cache, bool returnProbabilities)
    {
        var (a, probs) = Attn.Forward(Ln1.Forward(x), keyMask, cache, returnProbabilities);
        x = a.Add(x);
        return (Forwarded(x.Add(Mlp.Forward(Ln2.Forward(x)))), probs);
    }
}

/// <summary>The bare GPT-2 decoder (HF <c>GPT2Model</c>): wte + wpe, blocks <c>h.N</c>, final LayerNorm <c>ln_f</c>.</summary>
public sealed class Gpt2Model : Module
{
    /// <summary>The decoder with parameters from <paramref name="vb"/> (a checkpoint, or the initialiser).</summary>
    public Gpt2Model(Gpt2Config config, VarBuilder vb)
    {
        config.CheckSizes();
        PretrainedModel.ParseActivation(config.ActivationFunction, "activation_function");
        Config = config;
        var init = WeightInit.Normal(config.InitializerRange);
        Wte = RegisterModule("wte", new Nn.Embedding(vb.Push("wte"), config.VocabSize, config.NEmbd, init));
        Wpe = RegisterModule("wpe", new Nn.Embedding(vb.Push("wpe"), config.NPositions, config.NEmbd, init));
        Drop = RegisterModule("drop", new Dropout((float)config.EmbdPdrop));
        var list = vb.Push("h");
        H = RegisterModule("h", new ModuleList<Gpt2Block>(Enumerable.Range(0, config.NLayer)
            .Select(i => new Gpt2Block(list.Push(i.ToString(CultureInfo.InvariantCulture)), config, i))));
        LnF = RegisterModule("ln_f", new Nn.LayerNorm(vb.Push("ln_f"), config.NEmbd, (float)config.LayerNormEpsilon));
    }

    /// <summary>A freshly initialised decoder (HF's init: normal(0, initializer_range), residual projections scaled by 1/√(2·n_layer)).</summary>
    public Gpt2Model(Gpt2Config config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }

    public Gpt2Config Config { get; }
    /// <summary>What loading the checkpoint did (null for a fresh model).</summary>
    public LoadReport? LoadReport { get; private set; }
    public Nn.Embedding Wte { get; }
    public Nn.Embedding Wpe { get; }
    public Dropout Drop { get; }
    public ModuleList<Gpt2Block> H { get; }
    public Nn.LayerNorm LnF { get; }

    /// <summary>Loads the bare decoder from a GPT2LMHeadModel or GPT2Model checkpoint (a stored <c>lm_head.weight</c> is then unexpected, as in transformers).</summary>
    public static Gpt2Model FromPretrained(string dirOrModelId, ModelLoadOptions? options = null)
    {
        var (model, report, _) = Gpt2Loading.Load(dirOrModelId, options, (c, vb) => new Gpt2Model(c, vb));
        model.LoadReport = report;
        return model;
    }

    /// <summary>A cache for <paramref name="batchSize"/> rows with room for <paramref name="capacity"/> positions (it grows if exceeded).</summary>
    public KeyValueCache NewCache(int batchSize, int capacity) => new(Config.NLayer, batchSize, Config.NEmbd, Math.Min(Math.Max(1, capacity), Config.NPositions));

    /// <summary>
    /// Runs the decoder on <paramref name="input"/>. With a <paramref name="cache"/> (inference only: eval mode under
    /// <see cref="Autograd.NoGrad"/>) the new keys/values are appended and attention covers the cached positions; otherwise
    /// the input is the whole sequence. Under no-grad without a cache a temporary one is used (the same kernel path).
    /// </summary>
    public DecoderOutput Forward(CausalLMInput input, ForwardOptions? options = null, KeyValueCache? cache = null)
    {
        options ??= ForwardOptions.Default;
        int B = input.BatchSize, T = input.SequenceLength, Hd = Config.NEmbd;
        bool inference = !Training && !Autograd.IsEnabled;
        if (cache != null && !inference)
            throw new InvalidOperationException("The key/value cache is for inference: call Eval() and run under Autograd.NoGrad().");
        if (inference) cache ??= NewCache(B, T);
        if (cache != null && cache.BatchSize != B)
            throw new ModelInputException($"The cache holds {cache.BatchSize} rows but the input has {B}; use one cache per batch.");
        int past = cache?.Length ?? 0;
        CheckInput(input, past);
        cache?.Reserve(past + T);
        var positions = input.PositionIds ?? DefaultPositions(B, T, past);
        var x = Wte.Forward(input.InputIds, B, T).Add(Wpe.Forward(positions, B, T));
        x = Drop.Forward(x);
        var keyMask = KeyMask(input, past + T);
        var states = options.OutputHiddenStates ? new List<Tensor>() : null;
        var attentions = options.OutputAttentions ? new List<Tensor>() : null;
        foreach (var block in H)
        {
            states?.Add(x);
            (x, var probs) = block.Forward(x, keyMask, cache, options.OutputAttentions);
            attentions?.Add(probs!);
        }
        cache?.Advance(T);
        x = LnF.Forward(x);
        states?.Add(x);
        Forwarded(x);
        return new DecoderOutput(x, states, attentions);
    }

    static int[] DefaultPositions(int b, int t, int past)
    {
        var p = new int[b * t];
        for (int i = 0; i < p.Length; i++) p[i] = past + i % t;
        return p;
    }

    // [B, past + T] additive: 0 for tokens, float32 min for padding (HF's (1 − mask)·finfo.min); null without a mask.
    static float[]? KeyMask(CausalLMInput input, int keys)
    {
        if (input.AttentionMask is not { } m) return null;
        if (m.Length != input.BatchSize * keys)
            throw new ModelInputException($"attention_mask has {m.Length / input.BatchSize} positions per row; the cache plus the input need {keys}.");
        var a = new float[m.Length];
        for (int i = 0; i < m.Length; i++) a[i] = m[i] != 0 ? 0f : Functional.MaskedValue;
        return a;
    }

    void CheckInput(CausalLMInput input, int past)
    {
        var ids = input.InputIds;
        int t = input.SequenceLength;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new ModelInputException($"input_ids[{i / t}][{i % t}] = {ids[i]} is outside the vocabulary of {Config.VocabSize} tokens; the tokenizer does not match the model.");
        if (input.PositionIds is { } pos)
        {
            for (int i = 0; i < pos.Length; i++)
                if ((uint)pos[i] >= (uint)Config.NPositions)
                    throw new ModelInputException($"position_ids[{i / t}][{i % t}] = {pos[i]} is outside n_positions = {Config.NPositions}.");
        }
        else if (past + t > Config.NPositions)
            throw new ModelInputException($"{past} cached + {t} new positions exceed n_positions = {Config.NPositions}; shorten the prompt or max_new_tokens.");
    }
}

/// <summary>GPT-2 with the language-model head tied to the token embeddings: logits = h·wteᵀ (HF <c>GPT2LMHeadModel</c>).</summary>
public sealed class Gpt2LMHeadModel : Module, ICausalLM
{
    /// <summary>The model with parameters from <paramref name="vb"/>; a stored <c>lm_head.weight</c> is the tied alias of <c>transformer.wte.weight</c>.</summary>
    public Gpt2LMHeadModel(Gpt2Config config, VarBuilder vb)
    {
        Transformer = RegisterModule("transformer", new Gpt2Model(config, vb.Push("transformer")));
        vb.Tie("lm_head.weight", "transformer.wte.weight");
        LmHead = new TiedOutputProjection(Transformer.Wte);
    }

    /// <summary>A freshly initialised model.</summary>
    public Gpt2LMHeadModel(Gpt2Config config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }

    public Gpt2Model Transformer { get; }
    /// <summary><c>lm_head</c>: logits = h·wteᵀ; after <see cref="DynamicQuantization.Quantize(Gpt2LMHeadModel)"/> or
    /// <see cref="Bf16Inference.Convert(Gpt2LMHeadModel)"/> it multiplies by its own int8 / bf16 copy of wte.</summary>
    public TiedOutputProjection LmHead { get; }
    public Gpt2Config Config => Transformer.Config;
    /// <summary>What loading the checkpoint did (null for a fresh model).</summary>
    public LoadReport? LoadReport { get; private set; }
    /// <summary>The directory the model was loaded from (its tokenizer files are saved along), or null.</summary>
    public string? SourceDirectory { get; private set; }

    int ICausalLM.VocabSize => Config.VocabSize;
    int ICausalLM.MaxPositions => Config.NPositions;

    /// <summary>Logits [B, T, V]; with <paramref name="labels"/> [B·T] (−100 ignored) the mean cross-entropy of predicting token t + 1 from t.</summary>
    /// <remarks>A batch whose labels leave no target (one token, or all −100) gets a NaN loss, as transformers.</remarks>
    public CausalLMOutput Forward(CausalLMInput input, ForwardOptions? options = null, KeyValueCache? cache = null, int[]? labels = null)
    {
        var d = Transformer.Forward(input, options, cache);
        var logits = LmHead.Forward(d.LastHiddenState, Training);
        return new CausalLMOutput(logits, labels == null ? null : ShiftedLoss(logits, labels, input.BatchSize, input.SequenceLength), d);
    }

    static Tensor ShiftedLoss(Tensor logits, int[] labels, int b, int t)
    {
        if (labels.Length != b * t) throw new ModelInputException($"labels hold {labels.Length} ids; batch {b} × sequence {t} = {b * t} expected.");
        // Position s predicts label s + 1; each row's last position predicts nothing and is ignored (−100) rather than sliced
        // off, so the loss reads the logits in place: the same valid rows in the same order (the same loss bits), and no
        // copy of [B, T − 1, V] forward nor zero-filled scatter of its gradient backward.
        var targets = new int[b * t];
        for (int i = 0; i < b; i++)
        {
            Array.Copy(labels, i * t + 1, targets, i * t, t - 1);
            targets[i * t + t - 1] = -100;
        }
        if (targets.All(x => x == -100)) return Tensor.Scalar(float.NaN);
        return Losses.CrossEntropy(logits.Reshape(-1, logits.Dim(2)), targets);
    }

    /// <summary>Logits of the last position of every row, [B, V] (only those rows go through the head).</summary>
    public float[] NextTokenLogits(CausalLMInput input, KeyValueCache cache)
    {
        var h = Transformer.Forward(input, null, cache).LastHiddenState;
        int b = input.BatchSize, t = input.SequenceLength, hd = Config.NEmbd, v = Config.VocabSize;
        var last = h.Contiguous().AsSpan();
        var rows = new float[b * hd];
        for (int i = 0; i < b; i++) last.Slice(((i + 1) * t - 1) * hd, hd).CopyTo(rows.AsSpan(i * hd));
        var logits = new float[b * v];
        LmHead.Logits(rows, b, logits, ExecutionScope.Threads);
        return logits;
    }

    /// <inheritdoc cref="Gpt2Model.NewCache"/>
    public KeyValueCache NewCache(int batchSize, int capacity) => Transformer.NewCache(batchSize, capacity);

    /// <summary>Loads a model directory (config.json + model.safetensors or pytorch_model.bin) or Hub id; returned in eval mode.</summary>
    public static Gpt2LMHeadModel FromPretrained(string dirOrModelId, ModelLoadOptions? options = null)
    {
        var (model, report, dir) = Gpt2Loading.Load(dirOrModelId, options, (c, vb) => new Gpt2LMHeadModel(c, vb));
        model.LoadReport = report; model.SourceDirectory = dir;
        return model;
    }

    /// <summary>Writes config.json, model.safetensors (lm_head omitted as transformers does) and the source's tokenizer files.</summary>
    /// <remarks>An int8-quantized model writes each Conv1D weight as I8 [in, out] with <c>weight_scale</c> F32 [1, out], its head's
    /// int8 copy as <c>lm_head.weight</c> I8 [vocab, n_embd] with <c>lm_head.weight_scale</c> [vocab] (wte stays F32 for the
    /// embedding gather) and config.json's quantization_config (<see cref="DynamicQuantization"/>); a bf16 model writes its
    /// bf16 values as F32.</remarks>
    public void SavePretrained(string directory, string? tokenizerDirectory = null) =>
        PretrainedModel.SaveFiles(directory, Gpt2Loading.ConfigJson(Config, "GPT2LMHeadModel", DynamicQuantization.IsQuantized(this)), Gpt2Loading.Tensors(this, LmHead),
            tokenizerDirectory ?? SourceDirectory, Gpt2Loading.TokenizerFiles);
}

/// <summary>
/// GPT-2 with a linear classifier read at each row's last token (HF <c>GPT2ForSequenceClassification</c>): logits =
/// h[b, last_b]·<c>score.weight</c>ᵀ, no bias, where last_b = (number of ids ≠ pad_token_id) − 1 — transformers 4.30's rule,
/// which assumes right padding; a causal model's last token is the only one that has seen the whole text.
/// </summary>
/// <remarks>Without a pad_token_id transformers takes the last position and refuses batches of more than one row; so does this.</remarks>
public sealed class Gpt2ForSequenceClassification : Module
{
    /// <summary>The model with parameters from <paramref name="vb"/>; <c>score.weight</c> [num_labels, n_embd] gets GPT-2's normal(0, initializer_range) when absent.</summary>
    public Gpt2ForSequenceClassification(Gpt2Config config, VarBuilder vb)
    {
        Transformer = RegisterModule("transformer", new Gpt2Model(config, vb.Push("transformer")));
        Score = RegisterModule("score", new Linear(vb.Push("score"), config.NEmbd, config.NumLabels, WeightInit.Normal(config.InitializerRange), bias: false));
    }

    /// <summary>A freshly initialised model.</summary>
    public Gpt2ForSequenceClassification(Gpt2Config config, int seed = 0) : this(config, VarBuilder.Fresh(seed)) { }

    public Gpt2Model Transformer { get; }
    public Linear Score { get; }
    public Gpt2Config Config => Transformer.Config;
    public int NumLabels => Config.NumLabels;
    /// <summary>What loading the checkpoint did (null for a fresh model).</summary>
    public LoadReport? LoadReport { get; private set; }
    /// <summary>The directory whose tokenizer files the model saves along (the one it was loaded from), or null.</summary>
    public string? SourceDirectory { get; set; }

    /// <summary>The position read in every row: (ids ≠ pad_token_id) − 1, wrapping to the last position when a row is all padding
    /// (torch's index −1); without a pad id, the last position.</summary>
    /// <exception cref="ModelInputException">No pad_token_id and more than one row.</exception>
    public int[] LastTokenPositions(CausalLMInput input)
    {
        int b = input.BatchSize, t = input.SequenceLength;
        var last = new int[b];
        if (Config.PadTokenId is not int pad)
        {
            if (b > 1) throw new ModelInputException("GPT2ForSequenceClassification cannot find the last token of padded rows: config.json has no pad_token_id (set it, e.g. to eos_token_id).");
            last[0] = t - 1;
            return last;
        }
        for (int i = 0; i < b; i++)
        {
            int n = 0;
            for (int j = 0; j < t; j++) if (input.InputIds[i * t + j] != pad) n++;
            last[i] = n == 0 ? t - 1 : n - 1;
        }
        return last;
    }

    /// <summary>Logits [B, num_labels] at each row's last token; with <paramref name="labels"/> the loss of config.problem_type (as BERT's heads).</summary>
    public (Tensor Logits, Tensor? Loss) Forward(CausalLMInput input, SequenceLabels? labels = null)
    {
        var h = Transformer.Forward(input).LastHiddenState;   // [B, T, H]
        int t = input.SequenceLength;
        var rows = LastTokenPositions(input).Select((p, i) => i * t + p).ToArray();
        // Only the read rows go through the score layer: the same values as transformers' score-then-gather.
        var logits = Forwarded(Score.Forward(h.Reshape(-1, Config.NEmbd).IndexSelect(0, rows)));
        return (logits, labels == null ? null : HeadLosses.Sequence(logits, labels, NumLabels, Config.ProblemType));
    }

    /// <summary>
    /// Loads a GPT-2 directory (an LM checkpoint gives the decoder; <c>score.weight</c> is initialised when missing or, with
    /// <see cref="ModelLoadOptions.IgnoreMismatchedSizes"/>, of another label count). <paramref name="config"/> replaces the
    /// directory's config.json (e.g. with labels and a pad id). Returned in eval mode.
    /// </summary>
    public static Gpt2ForSequenceClassification FromPretrained(string dirOrModelId, Gpt2Config? config = null, ModelLoadOptions? options = null)
    {
        var (model, report, dir) = Gpt2Loading.Load(dirOrModelId, options, (c, vb) => new Gpt2ForSequenceClassification(c, vb), config);
        model.LoadReport = report; model.SourceDirectory = dir;
        return model;
    }

    /// <summary>Writes config.json (architectures GPT2ForSequenceClassification), model.safetensors and the source's tokenizer files.</summary>
    public void SavePretrained(string directory, string? tokenizerDirectory = null) =>
        PretrainedModel.SaveFiles(directory, Gpt2Loading.ConfigJson(Config, "GPT2ForSequenceClassification", quantized: false), Gpt2Loading.Tensors(this),
            tokenizerDirectory ?? SourceDirectory, Gpt2Loading.TokenizerFiles);
}

/// <summary>Loading and saving shared by <see cref="Gpt2Model"/> and <see cref="Gpt2LMHeadModel"/>.</summary>
public static class Gpt2Loading
{
    /// <summary>Files of a GPT-2 tokenizer and generation config copied by SavePretrained.</summary>
    public static IReadOnlyList<string> TokenizerFiles { get; } =
        ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "generation_config.json"];

    /// <summary>transformers' <c>_keys_to_ignore_on_load_unexpected</c> for GPT-2: the causal-mask buffers of older checkpoints.</summary>
    public static bool IsIgnoredBuffer(string key) =>
        key.EndsWith(".attn.bias", StringComparison.Ordinal) || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal);

    internal static (T Model, LoadReport Report, string Dir) Load<T>(string dirOrModelId, ModelLoadOptions? options, Func<Gpt2Config, VarBuilder, T> build,
        Gpt2Config? config = null) where T : Module
    {
        options ??= new ModelLoadOptions();
        string dir = AutoModel.ResolveDirectory(dirOrModelId);
        config ??= Gpt2Config.Load(dir);
        bool quantized = DynamicQuantization.IsQuantizedConfig(config);
        using var sd = CheckpointLoader.Load(AutoModel.FindCheckpoint(dir, options.Checkpoint));
        // A quantized checkpoint loads as its dequantized values, then the projections (and the LM head) get their int8 copies.
        var vb = VarBuilder.FromWeights(quantized ? DynamicQuantization.Dequantizing(sd) : sd, new WeightLoadOptions("transformer", options.IgnoreMismatchedSizes, options.Seed));
        var model = build(config, vb);
        var report = vb.Finish(IsIgnoredBuffer);
        if (quantized) DynamicQuantization.AttachFromCheckpoint(model, (model as Gpt2LMHeadModel)?.LmHead, sd, "transformer");
        model.Eval();
        return (model, report, dir);
    }

    internal static string ConfigJson(Gpt2Config c, string architecture, bool quantized)
    {
        ModelConfig config = c with { Architectures = [architecture] };
        return (quantized ? DynamicQuantization.WithConfigEntry(config, "decoder_linear_and_lm_head") : config).ToJsonString();
    }

    /// <summary>Every parameter under its HF name; packed Conv1D weights as I8 + scales (int8) or their bf16 values as F32 [in, out];
    /// an int8 head's copy as <c>lm_head.weight</c>.</summary>
    internal static IReadOnlyList<CheckpointTensor> Tensors(Module m, TiedOutputProjection? head = null)
    {
        var packed = new Dictionary<string, Conv1D>(StringComparer.Ordinal);
        foreach (var (name, module) in m.NamedModules())
            if (module is Conv1D c && (c.Int8Weight != null || c.Bf16Weight != null)) packed[name + ".weight"] = c;
        var list = new List<CheckpointTensor>();
        foreach (var (name, p) in m.NamedParameters())
        {
            if (!packed.TryGetValue(name, out var c))
                list.Add(CheckpointTensor.FromFloat32(name, p.Value.Contiguous().ToArray(), p.Value.ShapeArray));
            else if (c.Int8Weight is { } q) list.AddRange(DynamicQuantization.CheckpointTensors(name, q, inOutLayout: true));
            else list.Add(CheckpointTensor.FromFloat32(name, Tensor.FromArray(c.Bf16Weight!.ToFloat(), c.OutFeatures, c.InFeatures).Transpose(0, 1).Contiguous().ToArray(),
                c.InFeatures, c.OutFeatures));
        }
        if (head?.Int8Weight is { } h) list.AddRange(DynamicQuantization.CheckpointTensors("lm_head.weight", h));
        return list;
    }
}
