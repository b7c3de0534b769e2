using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Models;

namespace Sharpformer.Tests.Checkpoints;

public class ModelConfigTests
{
    public static TheoryData<string> FixtureDirs => new()
    {
        "bert-tiny-uncased-seqcls", "bert-tiny-uncased-tokcls", "bert-tiny-uncased-mlm", "bert-tiny-cased-tokcls",
        "distilbert-tiny-uncased-seqcls", "distilbert-tiny-uncased-tokcls",
    };

    [Theory]
    [MemberData(nameof(FixtureDirs))]
    public void Saving_a_loaded_fixture_config_reproduces_the_file_exactly(string dir)
    {
        var path = SharedData.Fixture(dir, "config.json");
        var config = ModelConfigLoader.Load(SharedData.Fixture(dir));
        Assert.Equal(File.ReadAllText(path), config.ToJsonString());
        var tmp = SafeTensorsTestFiles.TempDir();
        try
        {
            config.Save(tmp);
            Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(Path.Combine(tmp, "config.json")));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Bert_fixture_values()
    {
        var c = Assert.IsType<BertConfig>(ModelConfigLoader.Load(SharedData.Fixture("bert-tiny-uncased-seqcls")));
        Assert.Equal((30522, 64, 2, 4, 128, 128, 2), (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize, c.MaxPositionEmbeddings, c.TypeVocabSize));
        Assert.Equal(("gelu", 0.1, 0.1, 0.2, 1e-12, 0, "absolute"), (c.HiddenAct, c.HiddenDropoutProb, c.AttentionProbsDropoutProb, c.InitializerRange, c.LayerNormEps, c.PadTokenId, c.PositionEmbeddingType));
        Assert.Null(c.ClassifierDropout);
        Assert.Equal(16, c.HeadDim);
        Assert.Equal(4, c.NumLabels);
        Assert.Equal(["World", "Sports", "Business", "Sci/Tech"], c.Labels);
        Assert.Equal(3, c.Label2Id["Sci/Tech"]);
        Assert.Equal(["BertForSequenceClassification"], c.Architectures);
        Assert.Equal("float32", c.TorchDType);
        Assert.Equal("4.30.2", c.TransformersVersion);
        // Unknown keys are preserved.
        Assert.True(c.ExtraProperties["use_cache"]!.GetValue<bool>());
        Assert.False(c.ExtraProperties.ContainsKey("vocab_size"));
    }

    [Fact]
    public void DistilBert_fixture_values_and_default_labels_for_mlm()
    {
        var d = DistilBertConfig.Load(SharedData.Fixture("distilbert-tiny-uncased-tokcls"));
        Assert.Equal((30522, 64, 2, 4, 128, false, 0.2), (d.VocabSize, d.Dim, d.NLayers, d.NHeads, d.HiddenDim, d.SinusoidalPosEmbds, d.SeqClassifDropout));
        Assert.Equal(9, d.NumLabels);
        Assert.Equal("B-PER", d.Id2Label[1]);
        var mlm = BertConfig.Load(SharedData.Fixture("bert-tiny-uncased-mlm"));
        Assert.Equal(2, mlm.NumLabels);
        Assert.Equal("LABEL_1", mlm.Id2Label[1]);
        Assert.Throws<ConfigException>(() => DistilBertConfig.Load(SharedData.Fixture("bert-tiny-uncased-mlm")));
    }

    [Fact]
    public void Missing_required_key_names_file_and_key()
    {
        var json = File.ReadAllText(SharedData.Fixture("bert-tiny-uncased-seqcls", "config.json"));
        var o = JsonNode.Parse(json)!.AsObject();
        o.Remove("num_attention_heads");
        var e = Assert.Throws<ConfigException>(() => ModelConfigLoader.Parse(o.ToJsonString(), "my/config.json"));
        Assert.Equal("num_attention_heads", e.Key);
        Assert.Contains("my/config.json", e.Message);
        Assert.Contains("num_attention_heads", e.Message);
    }

    [Theory]
    [InlineData("""{"model_type":"llama","n_layer":2}""", "model_type", "llama")]
    [InlineData("""{"model_type":"gpt2","n_layer":2,"vocab_size":10,"n_head":2}""", "n_embd", "required")]
    [InlineData("""{"model_type":"bert","vocab_size":"many","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4}""", "vocab_size", "integer")]
    [InlineData("""{"model_type":"bert","vocab_size":10,"hidden_size":10,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":4}""", "num_attention_heads", "multiple")]
    [InlineData("""{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"hidden_dropout_prob":1.5}""", "hidden_dropout_prob", "within")]
    [InlineData("""{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"id2label":{"0":"a","2":"b"}}""", "id2label", "missing")]
    [InlineData("""{"model_type":"distilbert","vocab_size":10,"dim":8,"n_layers":1,"n_heads":2,"hidden_dim":4,"sinusoidal_pos_embds":"no"}""", "sinusoidal_pos_embds", "true or false")]
    [InlineData("""{"hidden_size":8}""", "model_type", "missing")]
    public void Bad_values_raise_config_exception_naming_the_key(string json, string key, string fragment)
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfigLoader.Parse(json, "cfg.json"));
        Assert.Equal(key, e.Key);
        Assert.Contains(fragment, e.Message);
        Assert.Contains("cfg.json", e.Message);
    }

    [Fact]
    public void Not_json_is_a_config_exception()
    {
        Assert.Throws<ConfigException>(() => ModelConfigLoader.Parse("{\"model_type\": \"bert\",", "x.json"));
        Assert.Throws<ConfigException>(() => ModelConfigLoader.Parse("[1]", "x.json"));
    }

    [Fact]
    public void Model_type_inferred_from_architectures_and_num_labels_expands()
    {
        var c = ModelConfigLoader.Parse("""{"architectures":["DistilBertForMaskedLM"],"vocab_size":10,"dim":8,"n_layers":1,"n_heads":2,"hidden_dim":4,"num_labels":3}""");
        var d = Assert.IsType<DistilBertConfig>(c);
        Assert.Equal(["LABEL_0", "LABEL_1", "LABEL_2"], d.Labels);
        Assert.DoesNotContain("num_labels", d.ToJsonString());
    }

    [Fact]
    public void Unknown_nested_keys_and_unicode_round_trip_exactly_as_python_writes_them()
    {
        // Produced by CPython: json.dumps(d, indent=2, sort_keys=True) of a BERT config dict with extra keys.
        const string Python = """
        {
          "architectures": [
            "BertForMaskedLM"
          ],
          "attention_probs_dropout_prob": 0.25,
          "bad_words_ids": [
            [
              1,
              2
            ],
            [
              3
            ]
          ],
          "big": 12345678901234567890,
          "classifier_dropout": 0.3,
          "gradient_checkpointing": false,
          "hidden_act": "gelu_new",
          "hidden_dropout_prob": 0.0,
          "hidden_size": 8,
          "id2label": {
            "0": "n\u00e9gatif",
            "1": "positif",
            "2": "\ud83d\ude00"
          },
          "initializer_range": 0.02,
          "intermediate_size": 16,
          "label2id": {
            "n\u00e9gatif": 0,
            "positif": 1,
            "\ud83d\ude00": 2
          },
          "layer_norm_eps": 1e-05,
          "max_position_embeddings": 64,
          "model_type": "bert",
          "num_attention_heads": 2,
          "num_hidden_layers": 1,
          "output_past": true,
          "pad_token_id": null,
          "position_embedding_type": "absolute",
          "problem_type": "multi_label_classification",
          "task_specific_params": {
            "summarization": {
              "length_penalty": 2.0,
              "num_beams": 4,
              "prefix": "sum: "
            }
          },
          "temperature": 1e-20,
          "type_vocab_size": 1,
          "vocab_size": 100
        }
        """;
        var c = Assert.IsType<BertConfig>(ModelConfigLoader.Parse(Python, "py.json"));
        Assert.Null(c.PadTokenId);
        Assert.Equal(0.3, c.ClassifierDropout);
        Assert.Equal(["n\u00e9gatif", "positif", "\U0001F600"], c.Labels);
        Assert.Equal("multi_label_classification", c.ProblemType);
        Assert.Equal(4, c.ExtraProperties["task_specific_params"]!["summarization"]!["num_beams"]!.GetValue<int>());
        Assert.Equal(Python + "\n", c.ToJsonString());
    }

    [Fact]
    public void Many_labels_are_ordered_like_python_int_keys()
    {
        // Python: json.dumps({"id2label": {i: f"L{i}" for i in range(12)}, ...}, indent=2, sort_keys=True) puts "10" after "9"
        // in id2label (int keys) but "L10" after "L1" in label2id (str keys).
        var (id2, l2) = ModelConfig.LabelMaps(Enumerable.Range(0, 12).Select(i => $"L{i}").ToList());
        var text = new BertConfig { Id2Label = id2, Label2Id = l2 }.ToJsonString();
        Assert.Contains("\"9\": \"L9\",\n    \"10\": \"L10\",\n    \"11\": \"L11\"\n", text);
        Assert.Contains("\"L1\": 1,\n    \"L10\": 10,\n    \"L11\": 11,\n    \"L2\": 2,", text);
    }

    [Fact]
    public void Code_built_config_with_labels_saves_python_style_json()
    {
        var (id2, l2) = ModelConfig.LabelMaps(["neg", "pos", "caf\u00e9"]);
        var c = new BertConfig { VocabSize = 100, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 16, Id2Label = id2, Label2Id = l2, LayerNormEps = 1e-5 };
        var text = c.ToJsonString();
        Assert.Contains("\"layer_norm_eps\": 1e-05,", text);
        Assert.Contains("\"2\": \"caf\\u00e9\"", text);
        Assert.Contains("\"hidden_dropout_prob\": 0.1,", text);
        Assert.Contains("\"classifier_dropout\": null,", text);
        var back = Assert.IsType<BertConfig>(ModelConfigLoader.Parse(text));
        Assert.Equal(c.Labels, back.Labels);
        Assert.Equal(1e-5, back.LayerNormEps);
        Assert.Equal(text, back.ToJsonString());
    }
}
