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
    [ThreadStatic] static bool t_deferred;

    /// <summary>
    /// Within the scope, model constructors skip initialisation: <see cref="AutoModel.FromPretrained(string, ModelLoadOptions?)"/>
    /// initialises only what the checkpoint does not provide (HF's <c>_fast_init</c>), instead of drawing 110 M normals
    /// for bert-base only to overwrite them.
    /// </summary>
    public static IDisposable Deferred()
    {
        bool previous = t_deferred;
        t_deferred = true;
        return new Restore(previous);
    }

    sealed class Restore(bool previous) : IDisposable
    {
        public void Dispose() => t_deferred = previous;
    }

    public static void Init(Module root, double std, int seed, bool sinusoidalPositions = false)
    {
        if (t_deferred) return;
        InitWhere(root, std, seed, sinusoidalPositions, null);
    }

    /// <summary>Initialises only the named parameters (dotted names from the root), as <see cref="Init"/> would.</summary>
    public static void InitOnly(Module root, IReadOnlyCollection<string> names, double std, int seed, bool sinusoidalPositions = false)
    {
        if (names.Count > 0) InitWhere(root, std, seed, sinusoidalPositions, names.ToHashSet(StringComparer.Ordinal));
    }

    static void InitWhere(Module root, double std, int seed, bool sinusoidalPositions, HashSet<string>? only)
    {
        var rng = new Random(seed);
        foreach (var (name, m) in root.NamedModules())
        {
            string prefix = name.Length == 0 ? "" : name + ".";
            if (only != null)
            {
                // Parameters of other module kinds (the MLM output bias) start at zero.
                if (m is not (Linear or NnEmbedding or NnLayerNorm))
                    foreach (var (leaf, p) in m.OwnParameters())
                        if (only.Contains(prefix + leaf)) p.Value.AsSpan().Clear();
                bool any = m.OwnParameters().Any(p => only.Contains(prefix + p.Name));
                if (!any) continue;
            }
            switch (m)
            {
                case Linear l:
                    if (only == null || only.Contains(prefix + "weight")) FillNormal(l.Weight.Value.AsSpan(), rng, (float)std);
                    if (only == null || only.Contains(prefix + "bias")) l.Bias?.Value.AsSpan().Clear();
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
                    if (only == null || only.Contains(prefix + "weight")) n.Weight.Value.AsSpan().Fill(1f);
                    if (only == null || only.Contains(prefix + "bias")) n.Bias.Value.AsSpan().Clear();
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
