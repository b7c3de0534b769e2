using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Models;

/// <summary>
/// Hugging Face <c>BertConfig</c> (model_type <c>bert</c>). Property defaults are transformers' (bert-base-uncased);
/// when loading a file, the size keys (vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
/// intermediate_size) are required.
/// </summary>
public sealed record BertConfig : ModelConfig
{
    public override string ModelType => "bert";

    public int VocabSize { get; init; } = 30522;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;

    /// <summary><c>gelu</c> (erf), <c>gelu_new</c>/<c>gelu_pytorch_tanh</c> (tanh approximation), <c>relu</c>, ...</summary>
    public string HiddenAct { get; init; } = "gelu";

    public double HiddenDropoutProb { get; init; } = 0.1;
    public double AttentionProbsDropoutProb { get; init; } = 0.1;
    public int MaxPositionEmbeddings { get; init; } = 512;
    public int TypeVocabSize { get; init; } = 2;
    public double InitializerRange { get; init; } = 0.02;
    public double LayerNormEps { get; init; } = 1e-12;
    public int? PadTokenId { get; init; } = 0;

    /// <summary><c>absolute</c> is the only one implemented; <c>relative_key</c>/<c>relative_key_query</c> are rejected by the model.</summary>
    public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary>Dropout before classifier heads; null means <see cref="HiddenDropoutProb"/> (transformers' rule).</summary>
    public double? ClassifierDropout { get; init; }

    /// <summary>Size of one attention head: hidden_size / num_attention_heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Reads a <c>config.json</c> file (or a directory holding one).</summary>
    public static BertConfig Load(string path) => (BertConfig)ModelConfigLoader.Load(path, expectedModelType: "bert");

    /// <summary>Parses <c>config.json</c> text; <paramref name="sourceName"/> appears in error messages.</summary>
    public static BertConfig FromJson(string json, string sourceName = "<config.json>") =>
        FromJson(ParseObject(json, sourceName), sourceName);

    /// <summary>Builds from a parsed JSON object; keys not modelled here land in <see cref="ModelConfig.ExtraProperties"/>.</summary>
    public static BertConfig FromJson(JsonObject json, string sourceName)
    {
        var r = new ConfigReader(json, sourceName);
        var modelType = r.String("model_type", "bert");
        if (modelType != "bert")
            throw new ConfigException(sourceName, "model_type", $"expected 'bert', got '{modelType}'; load it with ModelConfigLoader.Load, which picks the right config type.");
        var c = new BertConfig
        {
            VocabSize = r.RequiredInt("vocab_size", 1),
            HiddenSize = r.RequiredInt("hidden_size", 1),
            NumHiddenLayers = r.RequiredInt("num_hidden_layers", 0),
            NumAttentionHeads = r.RequiredInt("num_attention_heads", 1),
            IntermediateSize = r.RequiredInt("intermediate_size", 1),
            HiddenAct = r.String("hidden_act", "gelu"),
            HiddenDropoutProb = r.Double("hidden_dropout_prob", 0.1, 0, 1),
            AttentionProbsDropoutProb = r.Double("attention_probs_dropout_prob", 0.1, 0, 1),
            MaxPositionEmbeddings = r.Int("max_position_embeddings", 512, 1),
            TypeVocabSize = r.Int("type_vocab_size", 2, 0),
            InitializerRange = r.Double("initializer_range", 0.02, 0),
            LayerNormEps = r.Double("layer_norm_eps", 1e-12, 0),
            PadTokenId = r.NullableInt("pad_token_id", 0),
            PositionEmbeddingType = r.String("position_embedding_type", "absolute"),
            ClassifierDropout = r.NullableDouble("classifier_dropout", null, 0, 1),
        };
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new ConfigException(sourceName, "num_attention_heads",
                $"hidden_size {c.HiddenSize} is not a multiple of num_attention_heads {c.NumAttentionHeads}; fix one of them.");
        c = ReadCommon(c, r);
        return c with { ExtraProperties = r.Rest() };
    }

    private protected override IEnumerable<(double, string, string, double)> WeightMatrices()
    {
        double h = HiddenSize;
        yield return (VocabSize * h, Larger("vocab_size", VocabSize, "hidden_size", HiddenSize), "vocab_size", 1);
        yield return (MaxPositionEmbeddings * h, Larger("max_position_embeddings", MaxPositionEmbeddings, "hidden_size", HiddenSize), "max_position_embeddings", 1);
        yield return (TypeVocabSize * h, Larger("type_vocab_size", TypeVocabSize, "hidden_size", HiddenSize), "type_vocab_size", 1);
        yield return (h * h, "hidden_size", "num_hidden_layers", 4.0 * NumHiddenLayers + 1);   // Q, K, V, attention output; pooler
        yield return (h * IntermediateSize, Larger("intermediate_size", IntermediateSize, "hidden_size", HiddenSize), "num_hidden_layers", 2.0 * NumHiddenLayers);
    }

    protected override void WriteModelKeys(JsonObject o)
    {
        o["vocab_size"] = VocabSize;
        o["hidden_size"] = HiddenSize;
        o["num_hidden_layers"] = NumHiddenLayers;
        o["num_attention_heads"] = NumAttentionHeads;
        o["intermediate_size"] = IntermediateSize;
        o["hidden_act"] = HiddenAct;
        o["hidden_dropout_prob"] = HiddenDropoutProb;
        o["attention_probs_dropout_prob"] = AttentionProbsDropoutProb;
        o["max_position_embeddings"] = MaxPositionEmbeddings;
        o["type_vocab_size"] = TypeVocabSize;
        o["initializer_range"] = InitializerRange;
        o["layer_norm_eps"] = LayerNormEps;
        // Always written: transformers keeps keys that differ from the class default (0), so null is saved as null.
        o["pad_token_id"] = PadTokenId;
        o["position_embedding_type"] = PositionEmbeddingType;
        o["classifier_dropout"] = ClassifierDropout;
    }
}
