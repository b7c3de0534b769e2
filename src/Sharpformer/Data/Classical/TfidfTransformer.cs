namespace Sharpformer.Classical;

/// <summary>
/// Turns term counts into TF-IDF weights as scikit-learn's <c>TfidfTransformer</c> (defaults norm='l2',
/// use_idf=True, smooth_idf=True, sublinear_tf=False).
/// </summary>
/// <remarks>
/// idf_t = ln((1 + n) / (1 + df_t)) + 1 with smoothing, ln(n / df_t) + 1 without (n documents, df_t documents containing t);
/// w_dt = tf_dt · idf_t, with tf replaced by 1 + ln(tf) when sublinear; then each row is divided by its L2 norm
/// (rows that are all zero stay zero).
/// </remarks>
public sealed class TfidfTransformer(bool smoothIdf = true, bool sublinearTf = false, bool l2Normalize = true)
{
    public bool SmoothIdf { get; } = smoothIdf;
    public bool SublinearTf { get; } = sublinearTf;
    public bool L2Normalize { get; } = l2Normalize;

    /// <summary>Inverse document frequency per feature, set by <see cref="Fit"/>.</summary>
    public double[] Idf { get; private set; } = [];

    public TfidfTransformer Fit(SparseRows counts)
    {
        var df = new long[counts.Cols];
        for (int i = 0; i < counts.Rows; i++)
        {
            var (idx, val) = counts.Row(i);
            for (int k = 0; k < idx.Length; k++) if (val[k] != 0) df[idx[k]]++;
        }
        double n = counts.Rows + (SmoothIdf ? 1 : 0);
        var idf = new double[counts.Cols];
        for (int j = 0; j < idf.Length; j++)
        {
            double d = df[j] + (SmoothIdf ? 1 : 0);
            // Without smoothing a term in no document has df 0; sklearn then yields inf. Give it idf 1 instead (it never occurs).
            idf[j] = d == 0 ? 1 : Math.Log(n / d) + 1;
        }
        Idf = idf;
        return this;
    }

    public SparseRows Transform(SparseRows counts)
    {
        if (Idf.Length == 0) throw new InvalidOperationException("TfidfTransformer is not fitted; call Fit first.");
        if (counts.Cols != Idf.Length) throw new ArgumentException($"Input has {counts.Cols} features but the transformer was fitted on {Idf.Length}.");
        var result = new SparseRows(counts.Cols);
        for (int i = 0; i < counts.Rows; i++)
        {
            var (idx, val) = counts.Row(i);
            var w = new double[val.Length];
            double norm = 0;
            for (int k = 0; k < w.Length; k++)
            {
                double tf = SublinearTf && val[k] > 0 ? 1 + Math.Log(val[k]) : val[k];
                w[k] = tf * Idf[idx[k]];
                norm += w[k] * w[k];
            }
            if (L2Normalize && norm > 0)
            {
                norm = Math.Sqrt(norm);
                for (int k = 0; k < w.Length; k++) w[k] /= norm;
            }
            result.Add(idx, w);
        }
        return result;
    }

    public SparseRows FitTransform(SparseRows counts) => Fit(counts).Transform(counts);
}
