using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>
/// Hugging Face <c>DistilBertConfig</c> (model_type <c>distilbert</c>). Defaults are transformers' (distilbert-base-uncased);
/// when loading a file, vocab_size, dim, n_layers, n_heads and hidden_dim are required.
/// </summary>
public sealed record DistilBertConfig : ModelConfig
{
    public override string ModelType => "distilbert";

    public int VocabSize { get; init; } = 30522;
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary>Fixed sinusoidal position embeddings instead of learned ones.</summary>
    public bool SinusoidalPosEmbds { get; init; }

    public int NLayers { get; init; } = 6;
    public int NHeads { get; init; } = 12;

    /// <summary>Hidden size (BERT's hidden_size).</summary>
    public int Dim { get; init; } = 768;

    /// <summary>Feed-forward inner size (BERT's intermediate_size).</summary>
    public int HiddenDim { get; init; } = 3072;

    public double Dropout { get; init; } = 0.1;
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary><c>gelu</c> or <c>relu</c>.</summary>
    public string Activation { get; init; } = "gelu";

    public double InitializerRange { get; init; } = 0.02;
    public double QaDropout { get; init; } = 0.1;
    public double SeqClassifDropout { get; init; } = 0.2;
    public int? PadTokenId { get; init; } = 0;

    /// <summary>Size of one attention head: dim / n_heads.</summary>
    public int HeadDim => Dim / NHeads;

    /// <summary>DistilBERT's LayerNorm epsilon: not a config key, fixed at 1e-12 in transformers' modeling code.</summary>
    public const double LayerNormEps = 1e-12;

    public static DistilBertConfig Load(string path) => (DistilBertConfig)ModelConfigLoader.Load(path, expectedModelType: "distilbert");

    public static DistilBertConfig FromJson(string json, string sourceName = "<config.json>") =>
        FromJson(ParseObject(json, sourceName), sourceName);

    public static DistilBertConfig FromJson(JsonObject json, string sourceName)
    {
        var r = new ConfigReader(json, sourceName);
        var modelType = r.String("model_type", "distilbert");
        if (modelType != "distilbert")
            throw new ConfigException(sourceName, "model_type", $"expected 'distilbert', got '{modelType}'; load it with ModelConfigLoader.Load, which picks the right config type.");
        var c = new DistilBertConfig
        {
            VocabSize = r.RequiredInt("vocab_size", 1),
            MaxPositionEmbeddings = r.Int("max_position_embeddings", 512, 1),
            SinusoidalPosEmbds = r.Bool("sinusoidal_pos_embds", false),
            NLayers = r.RequiredInt("n_layers", 0),
            NHeads = r.RequiredInt("n_heads", 1),
            Dim = r.RequiredInt("dim", 1),
            HiddenDim = r.RequiredInt("hidden_dim", 1),
            Dropout = r.Double("dropout", 0.1, 0, 1),
            AttentionDropout = r.Double("attention_dropout", 0.1, 0, 1),
            Activation = r.String("activation", "gelu"),
            InitializerRange = r.Double("initializer_range", 0.02, 0),
            QaDropout = r.Double("qa_dropout", 0.1, 0, 1),
            SeqClassifDropout = r.Double("seq_classif_dropout", 0.2, 0, 1),
            PadTokenId = r.NullableInt("pad_token_id", 0),
        };
        if (c.Dim % c.NHeads != 0)
            throw new ConfigException(sourceName, "n_heads", $"dim {c.Dim} is not a multiple of n_heads {c.NHeads}; fix one of them.");
        c = ReadCommon(c, r);
        return c with { ExtraProperties = r.Rest() };
    }

    private protected override IEnumerable<(double, string, string, double)> WeightMatrices()
    {
        double h = Dim;
        yield return (VocabSize * h, Larger("vocab_size", VocabSize, "dim", Dim), "vocab_size", 1);
        yield return (MaxPositionEmbeddings * h, Larger("max_position_embeddings", MaxPositionEmbeddings, "dim", Dim), "max_position_embeddings", 1);
        yield return (h * h, "dim", "n_layers", 4.0 * NLayers);
        yield return (h * HiddenDim, Larger("hidden_dim", HiddenDim, "dim", Dim), "n_layers", 2.0 * NLayers);
    }

    protected override void WriteModelKeys(JsonObject o)
    {
        o["vocab_size"] = VocabSize;
        o["max_position_embeddings"] = MaxPositionEmbeddings;
        o["sinusoidal_pos_embds"] = SinusoidalPosEmbds;
        o["n_layers"] = NLayers;
        o["n_heads"] = NHeads;
        o["dim"] = Dim;
        o["hidden_dim"] = HiddenDim;
        o["dropout"] = Dropout;
        o["attention_dropout"] = AttentionDropout;
        o["activation"] = Activation;
        o["initializer_range"] = InitializerRange;
        o["qa_dropout"] = QaDropout;
        o["seq_classif_dropout"] = SeqClassifDropout;
        // Always written: transformers keeps keys that differ from the class default (0), so null is saved as null.
        o["pad_token_id"] = PadTokenId;
    }
}
