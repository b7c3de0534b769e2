using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Kernels;

/// <summary>
/// Bahdanau's additive attention for one decoder step over a batch, fused: scoreⱼ = vᵀ tanh(keysⱼ + query) + bias, the masked
/// softmax over the source positions, context = Σⱼ αⱼ valuesⱼ. Shapes: keys [B, S, U] (W1·h + b1, computed once per
/// source), query [B, U] (W2·s + b2), v [U], values [B, S, Dv], mask [B, S] additive (0 keeps, a large negative drops) or empty.
/// </summary>
/// <remarks>
/// One pass per (b, j) instead of a broadcast add, a tanh, a width-1 linear layer, a softmax and a batch of 1×S·S×Dv products —
/// each its own tensor op with its own buffers and, in the backward, a reduction over S for the query. The decoder of an RNN
/// encoder–decoder runs this once per output step, so these small ops dominated its cost. The tanh is TensorPrimitives'
/// float one, not <see cref="Activations.Tanh"/>'s double-precision pass (a third of this kernel's time): its error near 0 is
/// ~1e-7 absolute, and only absolute error matters in a score that sums U products with v. The reference twin (double
/// precision, one element at a time) lives in the tests.
/// </remarks>
public static class AdditiveAttention
{
    /// <summary>
    /// Forward. Writes hidden [B, S, U] = tanh(keys + query) (kept for the backward), scores [B, S] (raw energies, mask not
    /// applied), weights [B, S] = softmax(scores + mask) (exactly 0 at masked positions; a fully masked row gives zeros) and
    /// context [B, Dv].
    /// </summary>
    public static void Forward(ReadOnlySpan<float> keys, ReadOnlySpan<float> query, ReadOnlySpan<float> v, float bias,
        ReadOnlySpan<float> values, ReadOnlySpan<float> mask, Span<float> hidden, Span<float> scores, Span<float> weights, Span<float> context,
        int batch, int source, int units, int valueDim)
    {
        int B = batch, S = source, U = units, D = valueDim;
        CheckSizes(B, S, U, D);
        Need(keys.Length, B * S * U, nameof(keys)); Need(query.Length, B * U, nameof(query)); Need(v.Length, U, nameof(v));
        Need(values.Length, B * S * D, nameof(values)); Need(hidden.Length, B * S * U, nameof(hidden));
        Need(scores.Length, B * S, nameof(scores)); Need(weights.Length, B * S, nameof(weights)); Need(context.Length, B * D, nameof(context));
        if (!mask.IsEmpty) Need(mask.Length, B * S, nameof(mask));
        for (int b = 0; b < B; b++)
        {
            var q = query.Slice(b * U, U);
            for (int j = 0; j < S; j++)
            {
                int row = b * S + j;
                var h = hidden.Slice(row * U, U);
                TP.Add(keys.Slice(row * U, U), q, h);
                TP.Tanh(h, h);
                scores[row] = TP.Dot(h, v) + bias;
            }
        }
        Softmax.Forward(scores[..(B * S)], weights, B, S, mask.IsEmpty ? default : mask[..(B * S)], 1, threads: 1);
        for (int b = 0; b < B; b++)
        {
            var ctx = context.Slice(b * D, D);
            ctx.Clear();
            for (int j = 0; j < S; j++)
            {
                float w = weights[b * S + j];
                if (w != 0f) TP.MultiplyAdd(values.Slice((b * S + j) * D, D), w, ctx, ctx);
            }
        }
    }

    /// <summary>
    /// Backward of <see cref="Forward"/> from the saved hidden and weights. dContext [B, Dv] is required; dWeights and dScores
    /// [B, S] (gradients reaching the weights and the raw scores directly) may be empty. Adds (+=) into dKeys [B, S, U],
    /// dQuery [B, U], dV [U], dBias [1] and dValues [B, S, Dv]; an empty target is not computed.
    /// </summary>
    /// <remarks>
    /// dαⱼ = dcontext·valuesⱼ + dWeightsⱼ; dscoreⱼ = αⱼ(dαⱼ − Σₖ αₖ dαₖ) + dScoresⱼ; dpreⱼ = dscoreⱼ · v ⊙ (1 − hiddenⱼ²);
    /// dKeysⱼ += dpreⱼ, dQuery += Σⱼ dpreⱼ, dV += Σⱼ dscoreⱼ hiddenⱼ, dBias += Σⱼ dscoreⱼ, dValuesⱼ += αⱼ dcontext.
    /// </remarks>
    public static void Backward(ReadOnlySpan<float> hidden, ReadOnlySpan<float> v, ReadOnlySpan<float> values, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> dContext, ReadOnlySpan<float> dWeights, ReadOnlySpan<float> dScores,
        Span<float> dKeys, Span<float> dQuery, Span<float> dV, Span<float> dBias, Span<float> dValues,
        int batch, int source, int units, int valueDim)
    {
        int B = batch, S = source, U = units, D = valueDim;
        CheckSizes(B, S, U, D);
        Need(hidden.Length, B * S * U, nameof(hidden)); Need(v.Length, U, nameof(v)); Need(values.Length, B * S * D, nameof(values));
        Need(weights.Length, B * S, nameof(weights)); Need(dContext.Length, B * D, nameof(dContext));
        if (!dWeights.IsEmpty) Need(dWeights.Length, B * S, nameof(dWeights));
        if (!dScores.IsEmpty) Need(dScores.Length, B * S, nameof(dScores));
        if (!dKeys.IsEmpty) Need(dKeys.Length, B * S * U, nameof(dKeys));
        if (!dQuery.IsEmpty) Need(dQuery.Length, B * U, nameof(dQuery));
        if (!dV.IsEmpty) Need(dV.Length, U, nameof(dV));
        if (!dBias.IsEmpty) Need(dBias.Length, 1, nameof(dBias));
        if (!dValues.IsEmpty) Need(dValues.Length, B * S * D, nameof(dValues));
        Span<float> ds = S <= 1024 ? stackalloc float[S] : new float[S];
        Span<float> dpre = U <= 1024 ? stackalloc float[U] : new float[U];
        bool needPre = !dKeys.IsEmpty || !dQuery.IsEmpty;
        double biasGrad = 0;
        for (int b = 0; b < B; b++)
        {
            var dctx = dContext.Slice(b * D, D);
            double weighted = 0;
            for (int j = 0; j < S; j++)
            {
                int row = b * S + j;
                float da = TP.Dot(dctx, values.Slice(row * D, D)) + (dWeights.IsEmpty ? 0f : dWeights[row]);
                ds[j] = da;
                weighted += (double)weights[row] * da;
            }
            for (int j = 0; j < S; j++)
            {
                int row = b * S + j;
                float w = weights[row];
                ds[j] = w * (ds[j] - (float)weighted) + (dScores.IsEmpty ? 0f : dScores[row]);
                if (!dValues.IsEmpty && w != 0f) { var dv = dValues.Slice(row * D, D); TP.MultiplyAdd(dctx, w, dv, dv); }
            }
            for (int j = 0; j < S; j++)
            {
                float g = ds[j];
                if (g == 0f) continue;
                int row = b * S + j;
                var h = hidden.Slice(row * U, U);
                biasGrad += g;
                if (!dV.IsEmpty) TP.MultiplyAdd(h, g, dV[..U], dV[..U]);
                if (!needPre) continue;
                // dpre = g · v ⊙ (1 − h²)
                TP.Multiply(h, h, dpre); TP.Multiply(dpre, v[..U], dpre); TP.Subtract(v[..U], dpre, dpre); TP.Multiply(dpre, g, dpre);
                if (!dKeys.IsEmpty) { var dk = dKeys.Slice(row * U, U); TP.Add(dk, dpre, dk); }
                if (!dQuery.IsEmpty) { var dq = dQuery.Slice(b * U, U); TP.Add(dq, dpre, dq); }
            }
        }
        if (!dBias.IsEmpty) dBias[0] += (float)biasGrad;
    }

    static void CheckSizes(int batch, int source, int units, int valueDim)
    {
        if (batch < 0 || source < 0 || units < 0 || valueDim < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), $"AdditiveAttention: batch={batch}, source={source}, units={units}, value_dim={valueDim} must be non-negative.");
    }

    static void Need(int length, int needed, string name)
    {
        if (length < needed) throw new ArgumentException($"AdditiveAttention: {name} holds {length} floats; {needed} needed.", name);
    }
}
