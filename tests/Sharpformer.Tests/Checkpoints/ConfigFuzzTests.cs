using System.Text;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Models;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>Seeded corruption of real config.json files: load or <see cref="ConfigException"/>, nothing else.</summary>
public class ConfigFuzzTests
{
    static readonly JsonNode?[] OddValues =
    [
        null, "x", "", true, false, -1, 0, 1.5, 1e308, -1e308, int.MaxValue, long.MaxValue, 3.0, new JsonArray(1, 2), new JsonObject { ["0"] = "a" },
        JsonValue.Create(1e-320), JsonValue.Create(ulong.MaxValue),
    ];

    [Theory]
    [InlineData("bert-tiny-uncased-seqcls")]
    [InlineData("distilbert-tiny-uncased-tokcls")]
    public void Mutated_configs_load_or_fail_with_config_exception(string dir)
    {
        var text = File.ReadAllText(SharedData.Fixture(dir, "config.json"));
        var rng = new Random(dir.Length);
        var failures = new List<string>();
        for (int i = 0; i < 1500; i++)
        {
            string mutated;
            if (i % 3 == 0)
            {
                var b = Encoding.UTF8.GetBytes(text);
                b[rng.Next(b.Length)] = (byte)rng.Next(32, 127);
                mutated = Encoding.UTF8.GetString(b);
            }
            else
            {
                var o = JsonNode.Parse(text)!.AsObject();
                var keys = o.Select(kv => kv.Key).ToList();
                var key = keys[rng.Next(keys.Count)];
                if (i % 3 == 1) o[key] = OddValues[rng.Next(OddValues.Length)]?.DeepClone();
                else if (o[key] is JsonObject inner && inner.Count > 0)
                {
                    var k2 = inner.Select(kv => kv.Key).ElementAt(rng.Next(inner.Count));
                    if (rng.Next(2) == 0) inner[k2] = OddValues[rng.Next(OddValues.Length)]?.DeepClone();
                    else { var v = inner[k2]?.DeepClone(); inner.Remove(k2); inner[rng.Next(3) switch { 0 => "-1", 1 => "99999999999", _ => "x" }] = v; }
                }
                else o.Remove(key);
                mutated = o.ToJsonString();
                // Text-level number extremes System.Text.Json itself cannot produce.
                if (rng.Next(8) == 0) mutated = mutated.Replace("0.1", "1e999", StringComparison.Ordinal);
            }
            try
            {
                var c = ModelConfigLoader.Parse(mutated, "fuzz.json");
                _ = c.ToJsonString();
            }
            catch (ConfigException e) { Assert.Contains("fuzz.json", e.Message); }
            catch (Exception e) { failures.Add($"case {i}: {e.GetType().Name}: {e.Message}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(10)));
    }

    [Theory]
    [InlineData("hidden_dropout_prob", "1e999")]
    [InlineData("num_labels", "1000000000")]
    [InlineData("vocab_size", "1e3")]
    [InlineData("layer_norm_eps", "-1e-12")]
    public void Extreme_numbers_are_config_exceptions(string key, string raw)
    {
        var o = JsonNode.Parse("""{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4}""")!.AsObject();
        o.Remove(key);
        var json = o.ToJsonString()[..^1] + $",\"{key}\":{raw}}}";
        var e = Assert.Throws<ConfigException>(() => ModelConfigLoader.Parse(json, "x.json"));
        Assert.Equal(key, e.Key);
    }

    [Fact]
    public void Duplicate_keys_are_refused()
    {
        var e = Assert.Throws<ConfigException>(() => ModelConfigLoader.Parse(
            """{"model_type":"bert","vocab_size":10,"vocab_size":20,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4}""", "dup.json"));
        Assert.Contains("dup.json", e.Message);
        Assert.Contains("vocab_size", e.Message);
    }
}
