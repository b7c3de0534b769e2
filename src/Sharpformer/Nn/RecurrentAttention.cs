using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>Output of a <see cref="RecurrentAttention"/> step.</summary>
/// <param name="Context">[B, Dv] = Σⱼ weightsⱼ · valuesⱼ.</param>
/// <param name="Weights">[B, S] softmax of the scores over the source positions, exactly 0 at masked ones (differentiable).</param>
/// <param name="Scores">[B, S] raw energies before masking.</param>
public sealed record RecurrentAttentionOutput(Tensor Context, Tensor Weights, Tensor Scores);

/// <summary>
/// Attention of one decoder state s (the query, [B, Dq]) over encoder states hⱼ (the values, [B, S, Dv]) as in RNN
/// encoder–decoders: a score per source position, the project's masked softmax over them, the weighted sum of the values.
/// </summary>
/// <remarks>
/// Unlike <see cref="Functional.Attention"/> (multi-head scaled dot-product, whose probabilities are a by-product without a
/// gradient) the weights here are an output in their own right — alignments are shown and may enter a loss — so they are
/// formed with the differentiable <see cref="Functional.SoftmaxWithMask"/>. The part of a score that does not depend on the
/// query (<see cref="Keys"/>) can be computed once per source and passed to every decoder step.
/// </remarks>
public abstract class RecurrentAttention : Module
{
    /// <summary>The query-independent projection of the values used by the scores ([B, S, ·]); the values themselves for Luong dot.</summary>
    public abstract Tensor Keys(Tensor values);

    /// <summary>Scores [B, S] of <paramref name="query"/> [B, Dq] against <paramref name="keys"/> (from <see cref="Keys"/>).</summary>
    protected abstract Tensor Scores(Tensor query, Tensor keys);

    /// <summary>One attention step.</summary>
    /// <param name="query">[B, Dq] the decoder state.</param>
    /// <param name="values">[B, S, Dv] the encoder states.</param>
    /// <param name="sourceMask">additive [B, S] mask from <see cref="SourceMask(ReadOnlySpan{int}, int)"/> (0 keeps, <see cref="Functional.MaskedValue"/> drops), or null.</param>
    /// <param name="keys"><see cref="Keys"/>(values) computed beforehand, or null to compute it here.</param>
    public RecurrentAttentionOutput Forward(Tensor query, Tensor values, Tensor? sourceMask = null, Tensor? keys = null)
    {
        if (query.Rank != 2 || values.Rank != 3 || values.Dim(0) != query.Dim(0))
            throw ShapeMismatchException.For(GetType().Name, query.Shape, values.Shape, "query must be [batch, query_dim] and values [batch, source, values_dim]");
        if (sourceMask != null && (sourceMask.Rank != 2 || sourceMask.Dim(0) != values.Dim(0) || sourceMask.Dim(1) != values.Dim(1)))
            throw ShapeMismatchException.For(GetType().Name, values.Shape, sourceMask.Shape, "the source mask must be [batch, source]");
        var output = Attend(query, values, sourceMask, keys ?? Keys(values));
        Forwarded(output.Context);
        return output;
    }

    /// <summary>Scores, the masked softmax over them and the context, from checked shapes; a subclass may fuse the three.</summary>
    protected virtual RecurrentAttentionOutput Attend(Tensor query, Tensor values, Tensor? sourceMask, Tensor keys)
    {
        var scores = Scores(query, keys);
        var weights = Functional.SoftmaxWithMask(scores, sourceMask);
        var context = weights.Unsqueeze(1).MatMul(values).Squeeze(1);
        return new RecurrentAttentionOutput(context, weights, scores);
    }

    /// <summary>An additive source mask [B, S]: position j of sequence b is real when j &lt; lengths[b].</summary>
    public static Tensor SourceMask(ReadOnlySpan<int> lengths, int sourceLength)
    {
        var keep = new int[lengths.Length * sourceLength];
        for (int b = 0; b < lengths.Length; b++)
        {
            if ((uint)lengths[b] > (uint)sourceLength)
                throw new ArgumentOutOfRangeException(nameof(lengths), $"lengths[{b}] = {lengths[b]} is outside [0, {sourceLength}].");
            keep.AsSpan(b * sourceLength, lengths[b]).Fill(1);
        }
        return SourceMask(keep, lengths.Length, sourceLength);
    }

    /// <summary>An additive source mask [B, S] from a 0/1 mask (1 = real position), as <see cref="Functional.AdditiveMask"/>.</summary>
    public static Tensor SourceMask(ReadOnlySpan<int> keep, int batch, int sourceLength) =>
        Functional.AdditiveMask(keep, batch, sourceLength).Reshape(batch, sourceLength);
}

/// <summary>
/// Bahdanau (additive) attention: scoreⱼ = V(tanh(W1(hⱼ) + W2(s))) = vᵀ tanh(W1 hⱼ + b1 + W2 s + b2) + b_v, with
/// <c>W1</c> Linear(values_dim → units), <c>W2</c> Linear(query_dim → units), <c>V</c> Linear(units → 1), all with bias.
/// </summary>
/// <remarks>
/// Bahdanau, Cho &amp; Bengio 2015, eq. (6) e_ij = v_aᵀ tanh(W_a s_{i−1} + U_a h_j) with W1 = U_a, W2 = W_a; the names and biases
/// are those of the TensorFlow NMT-with-attention tutorial (2019 – Feb 2020), whose later revisions swap W1 and W2.
/// </remarks>
public sealed class BahdanauAttention : RecurrentAttention
{
    public BahdanauAttention(VarBuilder vb, int queryDim, int valuesDim, int units)
    {
        if (queryDim <= 0 || valuesDim <= 0 || units <= 0)
            throw new ArgumentOutOfRangeException(nameof(units), $"BahdanauAttention(query_dim={queryDim}, values_dim={valuesDim}, units={units}): sizes must be positive.");
        W1 = RegisterModule("W1", new Linear(vb.Push("W1"), valuesDim, units, WeightInit.Uniform(1 / Math.Sqrt(valuesDim))));
        W2 = RegisterModule("W2", new Linear(vb.Push("W2"), queryDim, units, WeightInit.Uniform(1 / Math.Sqrt(queryDim))));
        V = RegisterModule("V", new Linear(vb.Push("V"), units, 1, WeightInit.Uniform(1 / Math.Sqrt(units))));
    }

    public Linear W1 { get; }
    public Linear W2 { get; }
    public Linear V { get; }

    /// <summary>W1(values) [B, S, units].</summary>
    public override Tensor Keys(Tensor values) => W1.Forward(values);

    protected override Tensor Scores(Tensor query, Tensor keys) =>
        V.Forward((keys + W2.Forward(query).Unsqueeze(1)).Tanh()).Squeeze(-1);

    /// <summary>W2(s) as a GEMM, then scores, masked softmax and context in one op (<see cref="Functional.AdditiveAttention"/>).</summary>
    protected override RecurrentAttentionOutput Attend(Tensor query, Tensor values, Tensor? sourceMask, Tensor keys)
    {
        // A quantized V keeps no fp32 weight to read: the unfused ops multiply by its packed form.
        if (V.Int8Weight != null || V.Bf16Weight != null) return base.Attend(query, values, sourceMask, keys);
        var r = Functional.AdditiveAttention(keys, W2.Forward(query), V.Weight.Value, V.Bias?.Value, values, sourceMask);
        return new RecurrentAttentionOutput(r.Context, r.Weights, r.Scores);
    }
}

/// <summary>How <see cref="LuongAttention"/> scores a source position (Luong, Pham &amp; Manning 2015, eq. 8).</summary>
public enum LuongScore
{
    /// <summary>scoreⱼ = sᵀ hⱼ (no parameters; query_dim = values_dim).</summary>
    Dot,
    /// <summary>scoreⱼ = sᵀ W_a hⱼ with <c>W</c> = Linear(values_dim → query_dim, no bias), weight [query_dim, values_dim].</summary>
    General,
}

/// <summary>Luong multiplicative attention, dot or general.</summary>
public sealed class LuongAttention : RecurrentAttention
{
    public LuongAttention(VarBuilder vb, LuongScore score, int queryDim, int valuesDim)
    {
        if (queryDim <= 0 || valuesDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(queryDim), $"LuongAttention(query_dim={queryDim}, values_dim={valuesDim}): sizes must be positive.");
        if (score == LuongScore.Dot && queryDim != valuesDim)
            throw new ArgumentException($"Luong dot attention needs query_dim = values_dim; got {queryDim} and {valuesDim}. Use LuongScore.General.", nameof(score));
        Score = score; QueryDim = queryDim;
        if (score == LuongScore.General)
            W = RegisterModule("W", new Linear(vb.Push("W"), valuesDim, queryDim, WeightInit.Uniform(1 / Math.Sqrt(valuesDim)), bias: false));
    }

    public LuongScore Score { get; }
    public int QueryDim { get; }
    /// <summary>W_a (general only).</summary>
    public Linear? W { get; }

    /// <summary>W(values) [B, S, query_dim] for general, the values for dot.</summary>
    public override Tensor Keys(Tensor values) => W?.Forward(values) ?? values;

    protected override Tensor Scores(Tensor query, Tensor keys)
    {
        if (query.Dim(1) != QueryDim || keys.Dim(2) != QueryDim)
            throw ShapeMismatchException.For("LuongAttention", query.Shape, keys.Shape, $"query and keys must both have width {QueryDim}");
        return keys.MatMul(query.Unsqueeze(-1)).Squeeze(-1);
    }
}
