using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Weight initialisers (in place, seeded) and whole-model schemes as BERT and Keras apply them.</summary>
public static class Init
{
    /// <summary>N(mean, std²); BERT uses std = initializer_range = 0.02.</summary>
    public static void Normal(Tensor t, Random rng, float std = 0.02f, float mean = 0f) => Tensor.FillNormal(rng, t.AsSpan(), mean, std);

    /// <summary>U[low, high).</summary>
    public static void Uniform(Tensor t, Random rng, float low, float high)
    {
        var s = t.AsSpan();
        for (int i = 0; i < s.Length; i++) s[i] = low + (high - low) * rng.NextSingle();
    }

    public static void Zeros(Tensor t) => t.Fill(0f);
    public static void Ones(Tensor t) => t.Fill(1f);

    /// <summary>Glorot (Xavier) uniform: U(±√(6/(fanIn + fanOut))). Returns the bound.</summary>
    public static float GlorotUniform(Tensor t, Random rng, int fanIn, int fanOut)
    {
        if (fanIn + fanOut <= 0) throw new ArgumentException($"Glorot fans must be positive (fanIn={fanIn}, fanOut={fanOut}).");
        float bound = GlorotBound(fanIn, fanOut);
        Uniform(t, rng, -bound, bound);
        return bound;
    }

    public static float GlorotBound(int fanIn, int fanOut) => MathF.Sqrt(6f / (fanIn + fanOut));

    /// <summary>
    /// Keras' fan rule for a kernel of the given shape: 1-D → (n, n); 2-D [in, out] → (in, out); N-D → receptive = Π shape[..−2],
    /// fan_in = shape[−2]·receptive, fan_out = shape[−1]·receptive. So a MultiHeadAttention query kernel [hidden, heads, keyDim]
    /// has fan_in = heads·hidden and fan_out = keyDim·hidden, and the output kernel [heads, keyDim, hidden] has
    /// fan_in = keyDim·heads, fan_out = hidden·heads.
    /// </summary>
    public static (int FanIn, int FanOut) KerasFans(params int[] kernelShape)
    {
        if (kernelShape.Length == 0) return (1, 1);
        if (kernelShape.Length == 1) return (kernelShape[0], kernelShape[0]);
        if (kernelShape.Length == 2) return (kernelShape[0], kernelShape[1]);
        int receptive = 1;
        for (int i = 0; i < kernelShape.Length - 2; i++) receptive *= kernelShape[i];
        return (kernelShape[^2] * receptive, kernelShape[^1] * receptive);
    }

    /// <summary>
    /// HF BertPreTrainedModel._init_weights: Linear and Embedding weights N(0, std²), Linear biases 0, the embedding padding row 0,
    /// LayerNorm weight 1 and bias 0. Modules are visited in registration order, so a seeded Random reproduces the weights.
    /// </summary>
    public static void BertStyle(Module model, Random rng, float std = 0.02f)
    {
        foreach (var (_, m) in model.NamedModules())
        {
            switch (m)
            {
                case Linear l:
                    Normal(l.Weight.Value, rng, std);
                    if (l.Bias != null) Zeros(l.Bias.Value);
                    break;
                case Embedding e:
                    Normal(e.Weight.Value, rng, std);
                    if (e.PaddingIdx is { } p) e.Weight.Value.AsSpan().Slice(p * e.Dim, e.Dim).Clear();
                    break;
                case LayerNorm n:
                    Ones(n.Weight.Value); Zeros(n.Bias.Value);
                    break;
            }
        }
    }

    /// <summary>
    /// Keras defaults: Dense kernels Glorot-uniform with fans (in, out); MultiHeadAttention kernels Glorot-uniform with the fans of
    /// their 3-D Keras kernels (<see cref="KerasFans"/>); biases 0; Embedding U(±0.05); LayerNorm 1/0.
    /// </summary>
    public static void KerasStyle(Module model, Random rng)
    {
        var mhaLinears = new HashSet<Linear>(ReferenceEqualityComparer.Instance);
        foreach (var (_, m) in model.NamedModules())
        {
            switch (m)
            {
                case MultiHeadAttention a:
                    var (qi, qo) = KerasFans(a.Hidden, a.Heads, a.KeyDim);
                    foreach (var l in new[] { a.Query, a.Key, a.Value }) { GlorotUniform(l.Weight.Value, rng, qi, qo); if (l.Bias != null) Zeros(l.Bias.Value); mhaLinears.Add(l); }
                    var (oi, oo) = KerasFans(a.Heads, a.KeyDim, a.Hidden);
                    GlorotUniform(a.Out.Weight.Value, rng, oi, oo); if (a.Out.Bias != null) Zeros(a.Out.Bias.Value);
                    mhaLinears.Add(a.Out);
                    break;
                case Linear l when !mhaLinears.Contains(l):
                    GlorotUniform(l.Weight.Value, rng, l.InFeatures, l.OutFeatures);
                    if (l.Bias != null) Zeros(l.Bias.Value);
                    break;
                case Embedding e:
                    Uniform(e.Weight.Value, rng, -0.05f, 0.05f);
                    break;
                case LayerNorm n:
                    Ones(n.Weight.Value); Zeros(n.Bias.Value);
                    break;
            }
        }
    }
}
