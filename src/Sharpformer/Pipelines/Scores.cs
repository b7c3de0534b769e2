namespace Sharpformer.Pipelines;

/// <summary>Score functions and top-k selection as transformers' pipelines compute them.</summary>
public static class Scores
{
    /// <summary>Numerically stable softmax of one row (HF <c>softmax</c> in pipelines/text_classification.py).</summary>
    /// <remarks>p_i = exp(x_i − max x) / Σ_j exp(x_j − max x). The sum runs in double.</remarks>
    public static float[] Softmax(ReadOnlySpan<float> logits)
    {
        var p = new float[logits.Length];
        if (logits.IsEmpty) return p;
        float max = float.NegativeInfinity;
        foreach (var v in logits) if (v > max) max = v;
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) { p[i] = MathF.Exp(logits[i] - max); sum += p[i]; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < p.Length; i++) p[i] *= inv;
        return p;
    }

    /// <summary>Element-wise logistic function.</summary>
    /// <remarks>σ(x) = 1 / (1 + exp(−x)).</remarks>
    public static float[] Sigmoid(ReadOnlySpan<float> logits)
    {
        var p = new float[logits.Length];
        for (int i = 0; i < p.Length; i++) p[i] = 1f / (1f + MathF.Exp(-logits[i]));
        return p;
    }

    /// <summary>Applies <paramref name="function"/> (already resolved: not <see cref="ClassificationFunction.Default"/>).</summary>
    public static float[] Apply(ClassificationFunction function, ReadOnlySpan<float> logits) => function switch
    {
        ClassificationFunction.Softmax => Softmax(logits),
        ClassificationFunction.Sigmoid => Sigmoid(logits),
        ClassificationFunction.None => logits.ToArray(),
        _ => throw new ArgumentException("ClassificationFunction.Default must be resolved against the model config first.", nameof(function)),
    };

    /// <summary>Index of the largest value; the first one on ties (numpy argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) throw new ArgumentException("ArgMax of an empty span.", nameof(values));
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>The indices of the k largest values, largest first; ties keep the lower index first.</summary>
    public static int[] TopK(ReadOnlySpan<float> values, int k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be ≥ 0.");
        k = Math.Min(k, values.Length);
        var idx = new int[k];
        if (k == 0) return idx;
        var val = new float[k];
        int n = 0;
        // Insertion into a small sorted buffer: O(V·k), fine for k ≪ V (fill-mask over a 30k vocabulary).
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (n == k && !(v > val[k - 1])) continue;
            int pos = n < k ? n++ : k - 1;   // slot freed at the end (or the dropped last entry)
            while (pos > 0 && v > val[pos - 1]) { val[pos] = val[pos - 1]; idx[pos] = idx[pos - 1]; pos--; }
            val[pos] = v; idx[pos] = i;
        }
        return idx;
    }
}
