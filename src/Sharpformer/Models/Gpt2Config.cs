using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>
/// Hugging Face <c>GPT2Config</c> (model_type <c>gpt2</c>). Defaults are transformers' (gpt2 small); keys not modelled here
/// (<c>summary_*</c>, task-specific params, …) are kept in <see cref="ModelConfig.ExtraProperties"/> and written back.
/// </summary>
public sealed record Gpt2Config : ModelConfig
{
    public override string ModelType => "gpt2";

    public int VocabSize { get; init; } = 50257;
    /// <summary><c>n_positions</c>: rows of the position table, the longest context (prompt + generated tokens).</summary>
    public int NPositions { get; init; } = 1024;
    /// <summary><c>n_embd</c>: hidden size.</summary>
    public int NEmbd { get; init; } = 768;
    public int NLayer { get; init; } = 12;
    public int NHead { get; init; } = 12;
    /// <summary><c>n_inner</c>: feed-forward width; null means 4 × n_embd.</summary>
    public int? NInner { get; init; }
    /// <summary><c>gelu_new</c> (tanh approximation, GPT-2's), <c>gelu</c> (erf), <c>relu</c>, …</summary>
    public string ActivationFunction { get; init; } = "gelu_new";
    public double ResidPdrop { get; init; } = 0.1;
    public double EmbdPdrop { get; init; } = 0.1;
    public double AttnPdrop { get; init; } = 0.1;
    public double LayerNormEpsilon { get; init; } = 1e-5;
    public double InitializerRange { get; init; } = 0.02;
    /// <summary>Divide attention scores by √head_dim.</summary>
    public bool ScaleAttnWeights { get; init; } = true;
    /// <summary>Also divide layer i's scores by i + 1 (Mistral/Stanford CRFM GPT-2 runs).</summary>
    public bool ScaleAttnByInverseLayerIdx { get; init; }
    /// <summary>Mixed-precision detail of transformers (scores computed in float32); everything here is float32 already.</summary>
    public bool ReorderAndUpcastAttn { get; init; }
    public bool UseCache { get; init; } = true;
    public int? BosTokenId { get; init; } = 50256;
    public int? EosTokenId { get; init; } = 50256;
    /// <summary><c>pad_token_id</c>: GPT-2 has none; a sequence classifier needs one to find each row's last token (fine-tuning
    /// recipes set it to the EOS id). Written only when set, as transformers omits a null pad_token_id.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Feed-forward width (n_inner or 4 × n_embd).</summary>
    public int InnerSize => NInner ?? 4 * NEmbd;
    public int HeadDim => NEmbd / NHead;

    /// <summary>Reads a <c>config.json</c> file (or a directory holding one).</summary>
    public static Gpt2Config Load(string path) => (Gpt2Config)ModelConfigLoader.Load(path, expectedModelType: "gpt2");

    /// <summary>Parses <c>config.json</c> text; <paramref name="sourceName"/> appears in error messages.</summary>
    public static Gpt2Config FromJson(string json, string sourceName = "<config.json>") => FromJson(ParseObject(json, sourceName), sourceName);

    /// <summary>Builds from a parsed JSON object; keys not modelled here land in <see cref="ModelConfig.ExtraProperties"/>.</summary>
    public static Gpt2Config FromJson(JsonObject json, string sourceName)
    {
        var r = new ConfigReader(json, sourceName);
        var modelType = r.String("model_type", "gpt2");
        if (modelType != "gpt2")
            throw new ConfigException(sourceName, "model_type", $"expected 'gpt2', got '{modelType}'; load it with ModelConfigLoader.Load, which picks the right config type.");
        var c = new Gpt2Config
        {
            VocabSize = r.RequiredInt("vocab_size", 1),
            NPositions = r.Int("n_positions", 1024, 1),
            NEmbd = r.RequiredInt("n_embd", 1),
            NLayer = r.RequiredInt("n_layer", 0),
            NHead = r.RequiredInt("n_head", 1),
            NInner = r.NullableInt("n_inner", null),
            ActivationFunction = r.String("activation_function", "gelu_new"),
            ResidPdrop = r.Double("resid_pdrop", 0.1, 0, 1),
            EmbdPdrop = r.Double("embd_pdrop", 0.1, 0, 1),
            AttnPdrop = r.Double("attn_pdrop", 0.1, 0, 1),
            LayerNormEpsilon = r.Double("layer_norm_epsilon", 1e-5, 0),
            InitializerRange = r.Double("initializer_range", 0.02, 0),
            ScaleAttnWeights = r.Bool("scale_attn_weights", true),
            ScaleAttnByInverseLayerIdx = r.Bool("scale_attn_by_inverse_layer_idx", false),
            ReorderAndUpcastAttn = r.Bool("reorder_and_upcast_attn", false),
            UseCache = r.Bool("use_cache", true),
            BosTokenId = r.NullableInt("bos_token_id", 50256),
            EosTokenId = r.NullableInt("eos_token_id", 50256),
            PadTokenId = r.NullableInt("pad_token_id", null),
        };
        if (c.NEmbd % c.NHead != 0)
            throw new ConfigException(sourceName, "n_head", $"n_embd {c.NEmbd} is not a multiple of n_head {c.NHead}; fix one of them.");
        if (c.NInner is < 1)
            throw new ConfigException(sourceName, "n_inner", $"must be null or at least 1, got {c.NInner}.");
        c = ReadCommon(c, r);
        return c with { ExtraProperties = r.Rest() };
    }

    private protected override IEnumerable<(double, string, string, double)> WeightMatrices()
    {
        double h = NEmbd;
        yield return (VocabSize * h, Larger("vocab_size", VocabSize, "n_embd", NEmbd), "vocab_size", 1);
        yield return (NPositions * h, Larger("n_positions", NPositions, "n_embd", NEmbd), "n_positions", 1);
        yield return (h * h, "n_embd", "n_layer", 4.0 * NLayer);                  // c_attn (3) and attn.c_proj
        yield return (h * InnerSize, NInner is null ? "n_embd" : "n_inner", "n_layer", 2.0 * NLayer);
    }

    protected override void WriteModelKeys(JsonObject o)
    {
        o["activation_function"] = ActivationFunction;
        o["attn_pdrop"] = AttnPdrop;
        o["bos_token_id"] = BosTokenId;
        o["embd_pdrop"] = EmbdPdrop;
        o["eos_token_id"] = EosTokenId;
        o["initializer_range"] = InitializerRange;
        o["layer_norm_epsilon"] = LayerNormEpsilon;
        o["n_embd"] = NEmbd;
        o["n_head"] = NHead;
        o["n_inner"] = NInner;
        o["n_layer"] = NLayer;
        o["n_positions"] = NPositions;
        if (PadTokenId is int pad) o["pad_token_id"] = pad;
        o["reorder_and_upcast_attn"] = ReorderAndUpcastAttn;
        o["resid_pdrop"] = ResidPdrop;
        o["scale_attn_by_inverse_layer_idx"] = ScaleAttnByInverseLayerIdx;
        o["scale_attn_weights"] = ScaleAttnWeights;
        o["use_cache"] = UseCache;
        o["vocab_size"] = VocabSize;
    }
}
