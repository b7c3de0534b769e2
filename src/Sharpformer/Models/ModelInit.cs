using Sharpformer.Nn;
using NnLayerNorm = Sharpformer.Nn.LayerNorm;
using NnEmbedding = Sharpformer.Nn.Embedding;

namespace Sharpformer.Models;

/// <summary>HF's <c>_init_weights</c> for BERT and DistilBERT, applied in place (no temporary copies of large tables).</summary>
/// <remarks>
/// Linear: W ~ N(0, initializer_range), b = 0. Embedding: N(0, initializer_range) with the padding row zeroed.
/// LayerNorm: γ = 1, β = 0. Other biases (MLM output bias) start at 0. DistilBERT with sinusoidal_pos_embds gets the
/// fixed table sin/cos(pos / 10000^(2j/dim)).
/// </remarks>
internal static class ModelInit
{
    public static void Init(Module root, double std, int seed, bool sinusoidalPositions = false)
    {
        var rng = new Random(seed);
        foreach (var (name, m) in root.NamedModules())
        {
            switch (m)
            {
                case Linear l:
                    FillNormal(l.Weight.Value.AsSpan(), rng, (float)std);
                    l.Bias?.Value.AsSpan().Clear();
                    break;
                case NnEmbedding e:
                    var w = e.Weight.Value.AsSpan();
                    if (sinusoidalPositions && name.EndsWith("position_embeddings", StringComparison.Ordinal))
                    {
                        Sinusoidal(w, e.Weight.Value.Dim(0), e.Weight.Value.Dim(1));
                        break;
                    }
                    FillNormal(w, rng, (float)std);
                    if (e.PaddingIdx is int pad) w.Slice(pad * e.Weight.Value.Dim(1), e.Weight.Value.Dim(1)).Clear();
                    break;
                case NnLayerNorm n:
                    n.Weight.Value.AsSpan().Fill(1f);
                    n.Bias.Value.AsSpan().Clear();
                    break;
            }
        }
    }

    static void FillNormal(Span<float> x, Random rng, float std)
    {
        // Box–Muller, two samples per pair of uniforms.
        for (int i = 0; i < x.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)) * std, a = 2.0 * Math.PI * u2;
            x[i] = (float)(r * Math.Cos(a));
            if (i + 1 < x.Length) x[i + 1] = (float)(r * Math.Sin(a));
        }
    }

    static void Sinusoidal(Span<float> w, int positions, int dim)
    {
        for (int p = 0; p < positions; p++)
            for (int j = 0; j < dim; j++)
            {
                double angle = p / Math.Pow(10000, 2 * (j / 2) / (double)dim);
                w[p * dim + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
    }
}
