using Sharpformer.Cli;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Visualization;

/// <summary>The seed transformer's attention drawn through the same maps and renderers as BERT.</summary>
public class SeedAttentionTests
{
    static string SaveSeedModel(bool masked)
    {
        var dir = Directory.CreateTempSubdirectory("sf-seed-").FullName;
        var config = new SeedTransformerConfig(VocabSize: 40, SequenceLength: 12, EmbedDim: 8, NumHeads: 2, KeyDim: 4, FfDim: 8, DenseDim: 4, NumLabels: 2,
            MaskedAttention: masked, Labels: ["neg", "pos"]);
        var model = new SeedTransformer(config, new Random(3));
        var vectorizer = new TextVectorizer(new TextVectorizerOptions(40, 12));
        vectorizer.Adapt(["the cat sat on the mat", "dogs bark at the cat", "a mat is not a cat"]);
        model.Save(dir);
        vectorizer.Save(dir);
        return dir;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SeedAttention_EqualsTheModelsProbabilities_OverTheTextTokens(bool masked)
    {
        var dir = SaveSeedModel(masked);
        Assert.True(SeedAttention.IsSeedModel(dir));
        var maps = SeedAttention.Run(dir, "The cat sat on a zebra!");
        Assert.Equal(["the", "cat", "sat", "on", "a", "[UNK]"], maps.Tokens);
        Assert.Equal((1, 2), (maps.Layers, maps.Heads));

        var model = SeedTransformer.Load(dir);
        var ids = TextVectorizer.Load(dir).Vectorize("The cat sat on a zebra!");
        var probs = model.Forward(ids, 1, returnAttentions: true).Attentions!.ToArray();
        for (int h = 0; h < 2; h++)
        {
            var m = maps.Head(0, h);
            for (int q = 0; q < 6; q++)
            {
                for (int k = 0; k < 6; k++) Assert.Equal(probs[(h * 12 + q) * 12 + k], m[q, k]);
                double row = Enumerable.Range(0, 6).Sum(k => m[q, k]);
                if (masked) Assert.Equal(1.0, row, 1e-5);   // padding keys get nothing
                else Assert.True(row < 1.0);                 // the tutorial model also attends to padding
            }
        }
    }

    [Fact]
    public void AttentionVerb_DrawsTheSeedModel()
    {
        var dir = SaveSeedModel(masked: true);
        var out1 = Path.Combine(dir, "seed.html");
        var stdout = new StringWriter(); var stderr = new StringWriter();
        int code = CliHost.Invoke(["attention", "--model", dir, "dogs bark at the mat", "--out", out1], new StringReader(""), stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("5 tokens, 1 layers × 2 heads", stdout.ToString());
        Assert.Contains("\"rows\":[\"dogs\",\"bark\",\"at\",\"the\",\"mat\"],\"cols\":[\"dogs\",\"bark\",\"at\",\"the\",\"mat\"]", File.ReadAllText(out1));
        var svg = Path.Combine(dir, "seed.svg");
        Assert.Equal(0, CliHost.Invoke(["attention", "--model", dir, "dogs bark at the mat", "--head", "1", "--out", svg], new StringReader(""), stdout, stderr));
        Assert.Equal(25, System.Xml.Linq.XDocument.Load(svg).Descendants().Count(e => e.Name.LocalName == "rect" && e.Elements().Any()));
    }
}
