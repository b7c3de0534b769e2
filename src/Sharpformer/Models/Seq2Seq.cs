using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>Sizes and special tokens of a <see cref="BahdanauSeq2Seq"/>.</summary>
/// <param name="VocabSize">shared by source and target (ids 0..V−1).</param>
/// <param name="EmbeddingDim">E, both embeddings.</param>
/// <param name="EncoderHidden">He per direction of the bidirectional encoder GRU (encoder states are 2·He wide).</param>
/// <param name="DecoderHidden">Hd, the decoder GRU state.</param>
/// <param name="AttentionUnits">width of the additive attention's hidden layer.</param>
/// <param name="PadId">padding (embedding row 0 without gradient; ignored by the loss).</param>
/// <param name="BosId">first decoder input.</param>
/// <param name="EosId">end of sequence.</param>
/// <param name="Dropout">training-only dropout on both embeddings, on the encoder states (before the attention reads them) and on
/// the decoder state before the output layer, the places the usual attention G2P/NMT recipes put it; 0 (the default, and
/// the fixtures') leaves the model deterministic.</param>
public sealed record Seq2SeqConfig(int VocabSize, int EmbeddingDim, int EncoderHidden, int DecoderHidden, int AttentionUnits,
    int PadId = 0, int BosId = 1, int EosId = 2, float Dropout = 0f);

/// <summary>A source batch encoded once and read by every decoder step.</summary>
/// <param name="Outputs">[B, S, 2He] encoder states h_j (forward half first), 0 at padding.</param>
/// <param name="InitialState">[B, Hd] s₀ = tanh(bridge([h_n fwd; h_n rev])).</param>
/// <param name="SourceMask">additive [B, S] mask of the padding.</param>
/// <param name="Keys">W1·h_j [B, S, units], the query-independent half of the attention scores.</param>
public sealed record Seq2SeqEncoding(Tensor Outputs, Tensor InitialState, Tensor SourceMask, Tensor Keys);

/// <summary>One decoder step: logits [B, V], the new state s_t [B, Hd] and the attention weights α_t [B, S].</summary>
public sealed record Seq2SeqStep(Tensor Logits, Tensor State, Tensor Attention);

/// <summary>Teacher-forced output: logits [B, T, V], attention [B, T, S], the mean cross-entropy over non-pad labels when labels were given.</summary>
public sealed record Seq2SeqOutput(Tensor Logits, Tensor Attention, Tensor? Loss, Seq2SeqEncoding Encoding);

/// <summary>Greedy decoding: tokens per sequence (all steps, EOS included and not cut), logits [B, steps, V], attention [B, steps, S].</summary>
public sealed record GreedyDecoding(int[][] Tokens, Tensor Logits, Tensor Attention);

/// <summary>The beam-search state of a <see cref="BahdanauSeq2Seq"/>: the encoded source row of every hypothesis and its decoder state s [N, Hd].</summary>
public sealed record Seq2SeqBeamState(Seq2SeqEncoding Encoding, Tensor State);

/// <summary>
/// What training, evaluation and G2P need from an encoder–decoder over token ids, whatever its architecture (the Bahdanau RNN,
/// the Transformer): the teacher-forced loss, greedy and beam decoding with the cross-attention of every step, and saving.
/// </summary>
public interface ISeq2SeqModel
{
    /// <summary>The model's parameters (for the optimiser and train/eval mode).</summary>
    Module Module { get; }
    /// <summary>model_type in config.json (<see cref="Seq2SeqModels.Load"/> dispatches on it).</summary>
    string ModelType { get; }
    int PadId { get; }
    int BosId { get; }
    int EosId { get; }

    /// <summary>
    /// Mean cross-entropy over non-pad labels of the teacher-forced decoder: src (row-major [B, S], right-padded) with its lengths,
    /// decoderInput and labels [B·T]; labelSmoothing is ε of <see cref="Losses.CrossEntropy"/> (torch's label_smoothing, 0 = none).
    /// </summary>
    Tensor Loss(int[] src, int[] srcLengths, int[] decoderInput, int[] labels, float labelSmoothing = 0f);

    /// <summary>Greedy decoding from BOS for exactly <paramref name="steps"/> steps (no stop at EOS).</summary>
    GreedyDecoding Greedy(int[] src, int[] srcLengths, int steps);

    /// <summary>Batched beam search; each result's hypotheses carry the attention rows (steps × source) of their steps.</summary>
    BeamSearchResult[] Beam(int[] src, int[] srcLengths, BeamSearchOptions options);

    /// <summary>Writes config.json (with model_type) and model.safetensors into <paramref name="directory"/>.</summary>
    void Save(string directory);
}

/// <summary>Extensions and loading shared by every <see cref="ISeq2SeqModel"/>.</summary>
public static class Seq2SeqModels
{
    /// <summary>Beam options from the model's special tokens.</summary>
    public static BeamSearchOptions BeamOptions(this ISeq2SeqModel model, int beamWidth, int maxSteps, double alpha, int nBest = 1) =>
        new(beamWidth, maxSteps, alpha, model.BosId, model.EosId, nBest);

    /// <summary>Loads a directory written by <see cref="ISeq2SeqModel.Save"/>; its config.json's model_type picks the architecture.</summary>
    public static ISeq2SeqModel Load(string directory)
    {
        var (path, node) = ReadConfig(directory);
        return (string?)node["model_type"] switch
        {
            BahdanauSeq2Seq.ModelType => BahdanauSeq2Seq.Load(directory),
            TransformerSeq2Seq.ModelType => TransformerSeq2Seq.Load(directory),
            var t => throw new ConfigException(path, "model_type", $"'{t}' is not a sequence-to-sequence model; expected '{BahdanauSeq2Seq.ModelType}' or '{TransformerSeq2Seq.ModelType}'."),
        };
    }

    internal static (string Path, JsonObject Node) ReadConfig(string directory, string? expectedType = null)
    {
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"'{directory}' has no config.json.", path);
        var node = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ConfigException(path, "(root)", "config.json is not a JSON object.");
        if (expectedType != null && (string?)node["model_type"] != expectedType)
            throw new ConfigException(path, "model_type", $"expected model_type '{expectedType}', found '{node["model_type"]}'.");
        return (path, node);
    }

    internal static int Int(this (string Path, JsonObject Node) config, string key) =>
        config.Node[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw new ConfigException(config.Path, key, $"config.json needs an integer '{key}'.");

    // Keys added after models were saved without them (e.g. dropout) default to their old meaning.
    internal static float OptionalFloat(this (string Path, JsonObject Node) config, string key, float fallback) =>
        config.Node[key] switch
        {
            null => fallback,
            JsonValue v when v.TryGetValue<double>(out var d) => (float)d,
            _ => throw new ConfigException(config.Path, key, $"config.json's '{key}' must be a number."),
        };

    internal static void Write(Module model, JsonObject config, string directory)
    {
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        SafeTensorsWriter.Write(Path.Combine(directory, "model.safetensors"),
            model.NamedParameters().Select(p => (p.Name, p.Parameter.Value.ShapeArray, (ReadOnlyMemory<float>)p.Parameter.Value.ToArray())).ToList(),
            new Dictionary<string, string> { ["format"] = "pt" });
    }

    // Builds the model from the directory's weights; a parameter the file lacks is an error naming it.
    internal static T ReadWeights<T>(string directory, string configPath, Func<VarBuilder, T> build) where T : Module
    {
        using var weights = CheckpointLoader.Load(directory);
        var model = build(VarBuilder.FromWeights(weights));
        var missing = model.NamedParameters().Select(p => p.Name).Where(n => !weights.ContainsKey(n)).ToList();
        if (missing.Count > 0) throw new ConfigException(configPath, missing[0], $"the weights in '{directory}' lack {missing.Count} parameter(s), first '{missing[0]}'.");
        return model;
    }
}

/// <summary>The encoder: embedding (padding row 0) and a bidirectional batch-first GRU run on the real source lengths.</summary>
public sealed class BahdanauEncoder : Module
{
    public BahdanauEncoder(VarBuilder vb, Seq2SeqConfig c)
    {
        Embedding = RegisterModule("embedding", new Embedding(vb.Push("embedding"), c.VocabSize, c.EmbeddingDim, WeightInit.Normal(1), c.PadId));
        Gru = RegisterModule("gru", new Gru(vb.Push("gru"), new RecurrentOptions(c.EmbeddingDim, c.EncoderHidden, Bidirectional: true, BatchFirst: true)));
        Dropout = RegisterModule("dropout", new Dropout(c.Dropout));
    }

    public Embedding Embedding { get; }
    public Gru Gru { get; }
    /// <summary>On the embeddings and on the GRU output (no parameters).</summary>
    public Dropout Dropout { get; }

    /// <summary>src [B·S] ids (row-major [B, S]) with per-sequence lengths → GRU output [B, S, 2He] (after dropout) and h_n [2, B, He].</summary>
    public RecurrentOutput Forward(int[] src, int batch, int[] lengths)
    {
        var r = Gru.Forward(Dropout.Forward(Embedding.Forward(src, batch, src.Length / batch)), null, lengths);
        return Dropout.P == 0f ? r : r with { Output = Dropout.Forward(r.Output) };
    }
}

/// <summary>
/// The decoder with input feeding: per step the attention reads the previous state, the GRU reads [context; embedding(y_{t−1})],
/// a linear layer gives the logits.
/// </summary>
public sealed class BahdanauDecoder : Module
{
    public BahdanauDecoder(VarBuilder vb, Seq2SeqConfig c)
    {
        Embedding = RegisterModule("embedding", new Embedding(vb.Push("embedding"), c.VocabSize, c.EmbeddingDim, WeightInit.Normal(1), c.PadId));
        Attention = RegisterModule("attention", new BahdanauAttention(vb.Push("attention"), c.DecoderHidden, 2 * c.EncoderHidden, c.AttentionUnits));
        Gru = RegisterModule("gru", new Gru(vb.Push("gru"), new RecurrentOptions(2 * c.EncoderHidden + c.EmbeddingDim, c.DecoderHidden, BatchFirst: true)));
        Fc = RegisterModule("fc", new Linear(vb.Push("fc"), c.DecoderHidden, c.VocabSize, WeightInit.Uniform(1 / Math.Sqrt(c.DecoderHidden))));
        Dropout = RegisterModule("dropout", new Dropout(c.Dropout));
    }

    public Embedding Embedding { get; }
    /// <summary>On the target embeddings (see <see cref="Embed(int[], int)"/>) and on s_t before <see cref="Fc"/>; s_t itself goes on undropped.</summary>
    public Dropout Dropout { get; }
    public BahdanauAttention Attention { get; }
    public Gru Gru { get; }
    public Linear Fc { get; }

    /// <summary>Dropout(e(ids)) for ids [B·T] (row-major [B, T]) → [B, T, E].</summary>
    public Tensor Embed(int[] ids, int batch, int steps) => Dropout.Forward(Embedding.Forward(ids, batch, steps));

    /// <summary>Dropout(e(ids)) for one token per row, ids [B] → [B, E].</summary>
    public Tensor Embed(int[] ids, int batch) => Dropout.Forward(Embedding.Forward(ids, batch));

    /// <summary>context_t, α_t = attention(s_{t−1}, h); s_t = GRU([context_t; e(y_{t−1})], s_{t−1}); logits_t = fc(dropout(s_t)).</summary>
    /// <param name="encoding">the encoded source.</param>
    /// <param name="state">s_{t−1} [B, Hd].</param>
    /// <param name="embedded">e(y_{t−1}) [B, E].</param>
    public Seq2SeqStep Step(Seq2SeqEncoding encoding, Tensor state, Tensor embedded)
    {
        var (s, weights) = Advance(encoding, state, embedded);
        return new Seq2SeqStep(Output(s), s, weights);
    }

    /// <summary>The recurrent half of <see cref="Step"/>: s_t [B, Hd] and α_t [B, S], without the output layer.</summary>
    public (Tensor State, Tensor Attention) Advance(Seq2SeqEncoding encoding, Tensor state, Tensor embedded)
    {
        var a = Attention.Forward(state, encoding.Outputs, encoding.SourceMask, encoding.Keys);
        var x = Tensor.Concat([a.Context, embedded], -1).Unsqueeze(1);
        return (Gru.Forward(x, state.Unsqueeze(0)).HN.Select(0, 0), a.Weights);
    }

    /// <summary>logits = fc(dropout(s)) for states [..., Hd]: one step's, or all teacher-forced steps' at once.</summary>
    public Tensor Output(Tensor states) => Fc.Forward(Dropout.Forward(states));
}

/// <summary>
/// The RNN encoder–decoder with additive attention of Bahdanau, Cho &amp; Bengio 2015 ("Neural Machine Translation by Jointly
/// Learning to Align and Translate"): a bidirectional GRU encoder, a bridge to the decoder's first state, and a GRU decoder
/// whose attention over the encoder states is queried with its previous state. Parameter names follow the fixture's
/// PyTorch module (encoder.gru.weight_ih_l0_reverse, decoder.attention.W1.weight, …), which mirrors the TensorFlow
/// NMT-with-attention tutorial's Encoder/Decoder.
/// </summary>
public sealed class BahdanauSeq2Seq : Module, ISeq2SeqModel
{
    public BahdanauSeq2Seq(VarBuilder vb, Seq2SeqConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        Encoder = RegisterModule("encoder", new BahdanauEncoder(vb.Push("encoder"), config));
        Bridge = RegisterModule("bridge", new Linear(vb.Push("bridge"), 2 * config.EncoderHidden, config.DecoderHidden, WeightInit.Uniform(1 / Math.Sqrt(2 * config.EncoderHidden))));
        Decoder = RegisterModule("decoder", new BahdanauDecoder(vb.Push("decoder"), config));
    }

    /// <summary>A freshly initialised model (seeded).</summary>
    public BahdanauSeq2Seq(Seq2SeqConfig config, int seed = 0) : this(VarBuilder.Fresh(seed), config) { }

    public Seq2SeqConfig Config { get; }
    public BahdanauEncoder Encoder { get; }
    public Linear Bridge { get; }
    public BahdanauDecoder Decoder { get; }

    Module ISeq2SeqModel.Module => this;
    string ISeq2SeqModel.ModelType => ModelType;
    public int PadId => Config.PadId;
    public int BosId => Config.BosId;
    public int EosId => Config.EosId;

    /// <inheritdoc/>
    public Tensor Loss(int[] src, int[] srcLengths, int[] decoderInput, int[] labels, float labelSmoothing = 0f) =>
        Forward(src, srcLengths, decoderInput, labels, labelSmoothing).Loss!;

    /// <summary>Encodes src (row-major [B, S] ids, right-padded) with its lengths.</summary>
    public Seq2SeqEncoding Encode(int[] src, int[] srcLengths)
    {
        ArgumentNullException.ThrowIfNull(src); ArgumentNullException.ThrowIfNull(srcLengths);
        int B = srcLengths.Length;
        if (B == 0 || src.Length % B != 0)
            throw new ArgumentException($"Seq2Seq: {src.Length} source ids do not form {B} rows of equal length.", nameof(src));
        int S = src.Length / B;
        var r = Encoder.Forward(src, B, srcLengths);
        var last = Tensor.Concat([r.HN.Select(0, 0), r.HN.Select(0, 1)], -1);
        var init = Bridge.Forward(last).Tanh();
        return new Seq2SeqEncoding(r.Output, init, RecurrentAttention.SourceMask(srcLengths, S), Decoder.Attention.Keys(r.Output));
    }

    /// <summary>Teacher forcing: decoderInput (row-major [B, T], starting with BOS) → logits, attention and, with labels [B·T], the loss (label-smoothed by ε = <paramref name="labelSmoothing"/>).</summary>
    public Seq2SeqOutput Forward(int[] src, int[] srcLengths, int[] decoderInput, int[]? labels = null, float labelSmoothing = 0f)
    {
        var enc = Encode(src, srcLengths);
        int B = srcLengths.Length;
        if (decoderInput.Length % B != 0) throw new ArgumentException($"Seq2Seq: {decoderInput.Length} decoder inputs do not form {B} rows.", nameof(decoderInput));
        int T = decoderInput.Length / B;
        var embedded = Decoder.Embed(decoderInput, B, T);
        var state = enc.InitialState;
        var states = new List<Tensor>(T); var attention = new List<Tensor>(T);
        for (int t = 0; t < T; t++)
        {
            (state, var weights) = Decoder.Advance(enc, state, embedded.Select(1, t));
            states.Add(state); attention.Add(weights);
        }
        // Nothing feeds back from the logits under teacher forcing, so the output layer runs once over all steps: one GEMM
        // of B·T rows (and one for each gradient) instead of T small ones.
        var allLogits = Decoder.Output(Tensor.Stack(states, 1));
        var loss = labels == null ? null : Losses.CrossEntropy(allLogits.Reshape(B * T, Config.VocabSize), labels, ignoreIndex: Config.PadId, labelSmoothing);
        return new Seq2SeqOutput(allLogits, Tensor.Stack(attention, 1), loss, enc);
    }

    /// <summary>Greedy decoding from BOS for exactly <paramref name="steps"/> steps (no stop at EOS; cut at the first EOS yourself).</summary>
    public GreedyDecoding Greedy(int[] src, int[] srcLengths, int steps)
    {
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "Greedy decoding needs at least one step.");
        using var noGrad = Autograd.NoGrad();
        var enc = Encode(src, srcLengths);
        int B = srcLengths.Length;
        var prev = Enumerable.Repeat(Config.BosId, B).ToArray();
        var tokens = Enumerable.Range(0, B).Select(_ => new int[steps]).ToArray();
        var state = enc.InitialState;
        var logits = new List<Tensor>(steps); var attention = new List<Tensor>(steps);
        for (int t = 0; t < steps; t++)
        {
            var step = Decoder.Step(enc, state, Decoder.Embed(prev, B));
            prev = step.Logits.ArgMax(-1);
            for (int b = 0; b < B; b++) tokens[b][t] = prev[b];
            logits.Add(step.Logits); attention.Add(step.Attention); state = step.State;
        }
        return new GreedyDecoding(tokens, Tensor.Stack(logits, 1), Tensor.Stack(attention, 1));
    }

    /// <summary>
    /// Beam search (see <see cref="BeamSearch"/>) for every source of the batch at once; each result holds the best and n-best
    /// hypotheses with the attention rows of their steps.
    /// </summary>
    public BeamSearchResult[] Beam(int[] src, int[] srcLengths, BeamSearchOptions options)
    {
        using var noGrad = Autograd.NoGrad();
        var enc = Encode(src, srcLengths);
        return BeamSearch.Run(new BeamDecoder(this), new Seq2SeqBeamState(enc, enc.InitialState), srcLengths.Length, options);
    }

    sealed class BeamDecoder(BahdanauSeq2Seq model) : IBeamDecoder<Seq2SeqBeamState>
    {
        public BeamDecoderStep<Seq2SeqBeamState> Step(Seq2SeqBeamState state, int[] lastTokens)
        {
            var step = model.Decoder.Step(state.Encoding, state.State, model.Decoder.Embed(lastTokens, lastTokens.Length));
            return new BeamDecoderStep<Seq2SeqBeamState>(step.Logits, state with { State = step.State }, step.Attention);
        }

        public Seq2SeqBeamState Reorder(Seq2SeqBeamState state, int[] rows)
        {
            var e = state.Encoding;
            var encoding = new Seq2SeqEncoding(e.Outputs.IndexSelect(0, rows), e.InitialState.IndexSelect(0, rows), e.SourceMask.IndexSelect(0, rows), e.Keys.IndexSelect(0, rows));
            return new Seq2SeqBeamState(encoding, state.State.IndexSelect(0, rows));
        }
    }

    /// <summary>model_type in config.json.</summary>
    public const string ModelType = "bahdanau-seq2seq";

    /// <summary>Writes config.json and model.safetensors (PyTorch state-dict names) into <paramref name="directory"/>, each atomically.</summary>
    public void Save(string directory)
    {
        var c = Config;
        Seq2SeqModels.Write(this, new JsonObject
        {
            ["model_type"] = ModelType, ["architectures"] = new JsonArray("BahdanauSeq2Seq"),
            ["vocab_size"] = c.VocabSize, ["embedding_dim"] = c.EmbeddingDim, ["encoder_hidden"] = c.EncoderHidden,
            ["decoder_hidden"] = c.DecoderHidden, ["attention_units"] = c.AttentionUnits,
            ["pad_token_id"] = c.PadId, ["bos_token_id"] = c.BosId, ["eos_token_id"] = c.EosId, ["dropout"] = c.Dropout,
        }, directory);
    }

    /// <summary>Loads a directory written by <see cref="Save"/>; a missing or wrong config key raises <see cref="ConfigException"/>.</summary>
    public static BahdanauSeq2Seq Load(string directory)
    {
        var cfg = Seq2SeqModels.ReadConfig(directory, ModelType);
        var config = new Seq2SeqConfig(cfg.Int("vocab_size"), cfg.Int("embedding_dim"), cfg.Int("encoder_hidden"), cfg.Int("decoder_hidden"), cfg.Int("attention_units"),
            cfg.Int("pad_token_id"), cfg.Int("bos_token_id"), cfg.Int("eos_token_id"), cfg.OptionalFloat("dropout", 0f));
        return Seq2SeqModels.ReadWeights(directory, cfg.Path, vb => new BahdanauSeq2Seq(vb, config));
    }
}
