using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using AttentionOptions = Sharpformer.Kernels.AttentionOptions;
using AttentionScaling = Sharpformer.Kernels.AttentionScaling;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>Sizes and choices of a <see cref="TransformerSeq2Seq"/>.</summary>
/// <param name="VocabSize">shared by source and target (ids 0..V−1).</param>
/// <param name="DModel">d_model.</param>
/// <param name="Heads">attention heads (d_model / Heads per head).</param>
/// <param name="EncoderLayers">encoder layers.</param>
/// <param name="DecoderLayers">decoder layers.</param>
/// <param name="FeedForward">inner width of the feed-forward sublayers.</param>
/// <param name="Dropout">dropout on embeddings, attention probabilities and sublayers (training only).</param>
/// <param name="MaxPositions">longest source or target sequence (BOS and EOS included).</param>
/// <param name="SharedEmbeddings">one table for source, target and the output projection (Vaswani et al. §3.4), or separate source/target tables and a generator Linear.</param>
/// <param name="LearnedPositions">learned position tables instead of the fixed sinusoids of Vaswani et al. §3.5.</param>
/// <param name="PadId">padding (embedding row without gradient; ignored by the loss).</param>
/// <param name="BosId">first decoder input.</param>
/// <param name="EosId">end of sequence.</param>
public sealed record TransformerSeq2SeqConfig(int VocabSize, int DModel = 128, int Heads = 4, int EncoderLayers = 3, int DecoderLayers = 3,
    int FeedForward = 512, float Dropout = 0.1f, int MaxPositions = 64, bool SharedEmbeddings = true, bool LearnedPositions = false,
    int PadId = 0, int BosId = 1, int EosId = 2)
{
    internal TransformerOptions Options => new(DModel, Heads, EncoderLayers, DecoderLayers, FeedForward, Dropout);
}

/// <summary>A source batch encoded once: memory [B, S, d], every decoder layer's cross-attention keys | values [B, S, 2d], the additive source mask [B, S].</summary>
public sealed record TransformerEncoding(Tensor Memory, IReadOnlyList<Tensor> MemoryKeysValues, Tensor SourceMask);

/// <summary>Teacher-forced output: logits [B, T, V], the mean cross-entropy over non-pad labels when labels were given.</summary>
public sealed record TransformerSeq2SeqOutput(Tensor Logits, Tensor? Loss);

/// <summary>The decoding state of N hypotheses: the encoded source row of each and the decoder's self-attention key/value cache.</summary>
public sealed record TransformerDecodingState(TransformerEncoding Encoding, KeyValueCache Cache);

/// <summary>
/// The Transformer encoder–decoder of Vaswani et al. 2017 over token ids: embeddings scaled by √d_model plus positions, dropout,
/// PyTorch's <see cref="Nn.Transformer"/> (post-norm; parameters under <c>transformer.</c> with nn.Transformer's names), and
/// the output projection (the shared embedding, or <c>generator</c>). Decoding runs one token per step through a key/value
/// cache of the decoder's self-attention; the cross-attention of the last decoder layer, averaged over heads, is each step's
/// alignment.
/// </summary>
public sealed class TransformerSeq2Seq : Module, ISeq2SeqModel
{
    readonly Tensor? _sinusoids;

    public TransformerSeq2Seq(VarBuilder vb, TransformerSeq2SeqConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.VocabSize <= 0 || config.MaxPositions <= 0)
            throw new ArgumentOutOfRangeException(nameof(config), $"TransformerSeq2Seq: vocab_size ({config.VocabSize}) and max_positions ({config.MaxPositions}) must be positive.");
        Config = config;
        int d = config.DModel;
        // N(0, d^-1/2): after the √d scale the embeddings have unit variance, and tied logits start with unit variance too.
        var init = WeightInit.Normal(1 / Math.Sqrt(d));
        if (config.SharedEmbeddings)
            SrcEmbedding = TgtEmbedding = RegisterModule("embedding", new Embedding(vb.Push("embedding"), config.VocabSize, d, init, config.PadId));
        else
        {
            SrcEmbedding = RegisterModule("src_embedding", new Embedding(vb.Push("src_embedding"), config.VocabSize, d, init, config.PadId));
            TgtEmbedding = RegisterModule("tgt_embedding", new Embedding(vb.Push("tgt_embedding"), config.VocabSize, d, init, config.PadId));
        }
        if (config.LearnedPositions)
        {
            SrcPositions = RegisterModule("src_positions", new Embedding(vb.Push("src_positions"), config.MaxPositions, d, WeightInit.Normal(0.02)));
            TgtPositions = RegisterModule("tgt_positions", new Embedding(vb.Push("tgt_positions"), config.MaxPositions, d, WeightInit.Normal(0.02)));
        }
        else
        {
            _sinusoids = Tensor.Zeros(config.MaxPositions, d);
            WeightInit.Sinusoidal(config.MaxPositions, d).Fill(_sinusoids.Data, new Random(0));   // fixed table, no draws
        }
        Dropout = RegisterModule("dropout", new Dropout(config.Dropout));
        Transformer = RegisterModule("transformer", new Nn.Transformer(vb.Push("transformer"), config.Options));
        if (!config.SharedEmbeddings)
            Generator = RegisterModule("generator", new Linear(vb.Push("generator"), d, config.VocabSize, WeightInit.Uniform(1 / Math.Sqrt(d))));
        _cacheOptions = AttentionOptions.For(d / config.Heads, AttentionScaling.ScaleScores).Options with { Causal = true };
    }

    /// <summary>A freshly initialised model (seeded).</summary>
    public TransformerSeq2Seq(TransformerSeq2SeqConfig config, int seed = 0) : this(VarBuilder.Fresh(seed), config) { }

    readonly AttentionOptions _cacheOptions;

    public TransformerSeq2SeqConfig Config { get; }
    public Embedding SrcEmbedding { get; }
    /// <summary>The target table (the same object as <see cref="SrcEmbedding"/> when shared).</summary>
    public Embedding TgtEmbedding { get; }
    public Embedding? SrcPositions { get; }
    public Embedding? TgtPositions { get; }
    public Dropout Dropout { get; }
    public Nn.Transformer Transformer { get; }
    /// <summary>The output projection when embeddings are separate (null: logits = h·Eᵀ with the shared table).</summary>
    public Linear? Generator { get; }

    Module ISeq2SeqModel.Module => this;
    string ISeq2SeqModel.ModelType => ModelType;
    public int PadId => Config.PadId;
    public int BosId => Config.BosId;
    public int EosId => Config.EosId;

    // Dropout(E[ids]·√d + P[start … start + T − 1]) for ids [B, T].
    Tensor Embed(Embedding table, Embedding? positions, int[] ids, int batch, int start)
    {
        int T = ids.Length / batch;
        if (start + T > Config.MaxPositions)
            throw new ArgumentException($"TransformerSeq2Seq: position {start + T - 1} is beyond max_positions {Config.MaxPositions}; shorten the sequence or raise max_positions.", nameof(ids));
        var p = positions != null ? positions.Weight.Value.Slice(0, start, T) : _sinusoids!.Slice(0, start, T);
        return Dropout.Forward(table.Forward(ids, batch, T).Mul(MathF.Sqrt(Config.DModel)).Add(p));
    }

    Tensor Logits(Tensor h) => Generator != null ? Generator.Forward(h) : Functional.Linear(h, TgtEmbedding.Weight.Value);

    /// <summary>Encodes src (row-major [B, S] ids, right-padded) with its lengths.</summary>
    public TransformerEncoding Encode(int[] src, int[] srcLengths)
    {
        ArgumentNullException.ThrowIfNull(src); ArgumentNullException.ThrowIfNull(srcLengths);
        int B = srcLengths.Length;
        if (B == 0 || src.Length % B != 0)
            throw new ArgumentException($"TransformerSeq2Seq: {src.Length} source ids do not form {B} rows of equal length.", nameof(src));
        int S = src.Length / B;
        var mask = RecurrentAttention.SourceMask(srcLengths, S);
        var memory = Transformer.Encoder.Forward(Embed(SrcEmbedding, SrcPositions, src, B, 0), mask);
        return new TransformerEncoding(memory, Transformer.Decoder.ProjectMemory(memory), mask);
    }

    /// <summary>
    /// Teacher forcing: decoderInput (row-major [B, T], starting with BOS) → logits and, with labels [B·T], the loss. The targets
    /// are right-padded and the self-attention causal, so a real position never sees a padded one: no target mask is needed
    /// (padded positions only produce ignored labels). labelSmoothing is ε of <see cref="Losses.CrossEntropy"/>.
    /// </summary>
    public TransformerSeq2SeqOutput Forward(int[] src, int[] srcLengths, int[] decoderInput, int[]? labels = null, float labelSmoothing = 0f)
    {
        var enc = Encode(src, srcLengths);
        int B = srcLengths.Length;
        if (decoderInput.Length % B != 0) throw new ArgumentException($"TransformerSeq2Seq: {decoderInput.Length} decoder inputs do not form {B} rows.", nameof(decoderInput));
        int T = decoderInput.Length / B;
        var h = Transformer.Decoder.Forward(Embed(TgtEmbedding, TgtPositions, decoderInput, B, 0), enc.MemoryKeysValues, enc.SourceMask, null).Output;
        var logits = Logits(h);
        var loss = labels == null ? null : Losses.CrossEntropy(logits.Reshape(B * T, Config.VocabSize), labels, ignoreIndex: Config.PadId, labelSmoothing);
        return new TransformerSeq2SeqOutput(Forwarded(logits), loss);
    }

    /// <inheritdoc/>
    public Tensor Loss(int[] src, int[] srcLengths, int[] decoderInput, int[] labels, float labelSmoothing = 0f) =>
        Forward(src, srcLengths, decoderInput, labels, labelSmoothing).Loss!;

    /// <summary>The state before the first decoding step: the encoded source and an empty cache.</summary>
    public TransformerDecodingState StartDecoding(TransformerEncoding encoding, int capacity) =>
        new(encoding, new KeyValueCache(Config.DecoderLayers, encoding.Memory.Dim(0), Config.DModel, Math.Max(1, capacity)));

    /// <summary>
    /// One decoding step for N rows (inference: call under <see cref="Autograd.NoGrad"/>): embeds <paramref name="lastTokens"/> at
    /// position cache.Length, appends each layer's keys/values to the cache, attends over all cached positions. Returns logits
    /// [N, V] and the last layer's cross-attention averaged over heads [N, S]; the cache advances by one position.
    /// </summary>
    public (Tensor Logits, Tensor Attention) Step(TransformerDecodingState state, int[] lastTokens)
    {
        int N = lastTokens.Length, d = Config.DModel;
        var cache = state.Cache;
        if (Autograd.IsEnabled)
            throw new InvalidOperationException("Cached decoding steps are for inference (the cache holds no gradient): run them under Autograd.NoGrad(), as Greedy and Beam do.");
        if (cache.BatchSize != N) throw new ArgumentException($"TransformerSeq2Seq: the cache holds {cache.BatchSize} rows but {N} tokens were given.", nameof(lastTokens));
        var x = Embed(TgtEmbedding, TgtPositions, lastTokens, N, cache.Length);
        var r = Transformer.Decoder.Forward(x, state.Encoding.MemoryKeysValues, state.Encoding.SourceMask, null, returnCrossAttention: true,
            layer => qkv => Tensor.FromArray(cache.Attend(layer, qkv.Contiguous().AsSpan(), 1, Config.Heads, _cacheOptions, null, false).Context, N, 1, d));
        cache.Advance(1);
        var probs = r.CrossAttentions![^1];   // [N, H, 1, S]
        return (Logits(r.Output).Reshape(N, Config.VocabSize), probs.Mean(1).Reshape(N, probs.Dim(3)));
    }

    /// <summary>Greedy decoding from BOS for exactly <paramref name="steps"/> steps (no stop at EOS; cut at the first EOS yourself).</summary>
    public GreedyDecoding Greedy(int[] src, int[] srcLengths, int steps)
    {
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "Greedy decoding needs at least one step.");
        using var noGrad = Autograd.NoGrad();
        var state = StartDecoding(Encode(src, srcLengths), steps);
        int B = srcLengths.Length;
        var prev = Enumerable.Repeat(Config.BosId, B).ToArray();
        var tokens = Enumerable.Range(0, B).Select(_ => new int[steps]).ToArray();
        var logits = new List<Tensor>(steps); var attention = new List<Tensor>(steps);
        for (int t = 0; t < steps; t++)
        {
            var (l, a) = Step(state, prev);
            prev = l.ArgMax(-1);
            for (int b = 0; b < B; b++) tokens[b][t] = prev[b];
            logits.Add(l); attention.Add(a);
        }
        return new GreedyDecoding(tokens, Tensor.Stack(logits, 1), Tensor.Stack(attention, 1));
    }

    /// <summary>Beam search (see <see cref="BeamSearch"/>) for every source of the batch at once.</summary>
    public BeamSearchResult[] Beam(int[] src, int[] srcLengths, BeamSearchOptions options)
    {
        using var noGrad = Autograd.NoGrad();
        var state = StartDecoding(Encode(src, srcLengths), options.MaxSteps);
        return BeamSearch.Run(new BeamDecoder(this), state, srcLengths.Length, options);
    }

    sealed class BeamDecoder(TransformerSeq2Seq model) : IBeamDecoder<TransformerDecodingState>
    {
        public BeamDecoderStep<TransformerDecodingState> Step(TransformerDecodingState state, int[] lastTokens)
        {
            var (logits, attention) = model.Step(state, lastTokens);
            return new BeamDecoderStep<TransformerDecodingState>(logits, state, attention);
        }

        public TransformerDecodingState Reorder(TransformerDecodingState state, int[] rows)
        {
            var e = state.Encoding;
            var encoding = new TransformerEncoding(e.Memory.IndexSelect(0, rows), e.MemoryKeysValues.Select(kv => kv.IndexSelect(0, rows)).ToArray(), e.SourceMask.IndexSelect(0, rows));
            return new TransformerDecodingState(encoding, state.Cache.Gather(rows));
        }
    }

    /// <summary>model_type in config.json.</summary>
    public const string ModelType = "transformer-seq2seq";

    /// <summary>Writes config.json and model.safetensors into <paramref name="directory"/>, each atomically.</summary>
    public void Save(string directory)
    {
        var c = Config;
        Seq2SeqModels.Write(this, new JsonObject
        {
            ["model_type"] = ModelType, ["architectures"] = new JsonArray("TransformerSeq2Seq"),
            ["vocab_size"] = c.VocabSize, ["d_model"] = c.DModel, ["nhead"] = c.Heads, ["num_encoder_layers"] = c.EncoderLayers,
            ["num_decoder_layers"] = c.DecoderLayers, ["dim_feedforward"] = c.FeedForward, ["dropout"] = c.Dropout, ["max_positions"] = c.MaxPositions,
            ["shared_embeddings"] = c.SharedEmbeddings, ["learned_positions"] = c.LearnedPositions,
            ["pad_token_id"] = c.PadId, ["bos_token_id"] = c.BosId, ["eos_token_id"] = c.EosId,
        }, directory);
    }

    /// <summary>Loads a directory written by <see cref="Save"/>; a missing or wrong config key raises <see cref="ConfigException"/>.</summary>
    public static TransformerSeq2Seq Load(string directory)
    {
        var cfg = Seq2SeqModels.ReadConfig(directory, ModelType);
        bool Bool(string key) => cfg.Node[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : throw new ConfigException(cfg.Path, key, $"config.json needs a boolean '{key}'.");
        float dropout = cfg.Node["dropout"] is JsonValue dv && dv.TryGetValue<float>(out var f) ? f : throw new ConfigException(cfg.Path, "dropout", "config.json needs a number 'dropout'.");
        var config = new TransformerSeq2SeqConfig(cfg.Int("vocab_size"), cfg.Int("d_model"), cfg.Int("nhead"), cfg.Int("num_encoder_layers"), cfg.Int("num_decoder_layers"),
            cfg.Int("dim_feedforward"), dropout, cfg.Int("max_positions"), Bool("shared_embeddings"), Bool("learned_positions"),
            cfg.Int("pad_token_id"), cfg.Int("bos_token_id"), cfg.Int("eos_token_id"));
        return Seq2SeqModels.ReadWeights(directory, cfg.Path, vb => new TransformerSeq2Seq(vb, config));
    }
}
