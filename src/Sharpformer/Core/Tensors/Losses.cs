using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Tensors;

/// <summary>Loss functions returning a scalar tensor (mean reduction), each with its backward rule.</summary>
public static class Losses
{
    /// <summary>
    /// Cross-entropy of logits [..., C] against class indices (one per row), averaged over rows whose target is not
    /// <paramref name="ignoreIndex"/>, as torch.nn.functional.cross_entropy.
    /// </summary>
    /// <remarks>
    /// loss = −(1/|valid|) Σ_{r valid} [(1 − ε)·log p_r[target[r]] + (ε/C)·Σ_j log p_r[j]] with p_r = softmax(logits[r]) and
    /// ε = <paramref name="labelSmoothing"/> (0: the plain cross-entropy), which is torch's
    /// CrossEntropyLoss(label_smoothing=ε, ignore_index=…): the target distribution mixes the one-hot label with the uniform
    /// one over all C classes (Szegedy et al. 2016), ignored rows contribute nothing. When every row is ignored the result
    /// is NaN (0/0), as torch.
    /// </remarks>
    public static Tensor CrossEntropy(Tensor logits, int[] targets, int ignoreIndex = -100, float labelSmoothing = 0f)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "CrossEntropy: label smoothing must be in [0, 1] (torch's label_smoothing).");
        if (logits.Rank < 1) throw new ShapeMismatchException("CrossEntropy: logits must have a class dimension.");
        int C = logits.Dim(-1), rows = C == 0 ? 0 : logits.Size / C;
        if (targets.Length != rows)
            throw new ShapeMismatchException($"CrossEntropy: {targets.Length} targets for logits {Tensor.FormatShape(logits.Shape)} ({rows} rows of {C} classes).");
        var x = logits.Contiguous();
        // One logsumexp per row, not the rows×C log-probabilities: log p[r, j] = x[r, j] − lse[r] (the same bits as
        // log-softmax), and the backward recomputes p from the logits, which stay alive anyway — for a causal LM's 16k
        // head over 4k positions that is a 260 MB buffer neither written nor read.
        var lse = TensorScope.RentArray(rows);
        var xs = x.ContiguousSpan();
        Kernels.Softmax.CrossEntropyRows(xs, lse, rows, C, ExecutionScope.Threads);
        double sum = 0; int count = 0;
        float[]? logpRow = labelSmoothing > 0f ? new float[C] : null;
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t == ignoreIndex) continue;
            if ((uint)t >= (uint)C) throw new SharpformerException($"CrossEntropy: target {t} at row {r} is outside [0, {C}); use {ignoreIndex} to ignore a row.");
            double rowLoss = -(xs[r * C + t] - lse[r]);
            if (logpRow != null)
            {
                TP.Subtract(xs.Slice(r * C, C), lse[r], logpRow);
                rowLoss = (1 - labelSmoothing) * rowLoss - labelSmoothing / C * (double)TP.Sum(logpRow);
            }
            sum += rowLoss; count++;
        }
        var loss = Tensor.Scalar(count == 0 ? float.NaN : (float)(sum / count));
        if (!Tensor.NeedsGrad(x)) return loss;
        var tg = (int[])targets.Clone();
        var xd = x.Detach();
        return Tensor.Record(loss, "CrossEntropy", (g, s) =>
        {
            // d/dlogits = (softmax − q)/count on valid rows with q = (1 − ε)·onehot + ε/C, 0 on ignored rows
            float scale = count == 0 ? 0f : g.Item() / count;
            float uniform = labelSmoothing / C * scale, onTarget = (1f - labelSmoothing) * scale;
            var dx = s.Target(0, out float beta);
            Kernels.Softmax.CrossEntropyBackwardRows(xd.ContiguousSpan(), lse, tg, ignoreIndex, scale, uniform, onTarget, dx, beta != 0f, rows, C, ExecutionScope.Threads);
        }, x);
    }

    /// <summary>Mean binary cross-entropy on logits, computed stably as max(x,0) − x·t + log(1 + e^(−|x|)).</summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets)
    {
        if (!logits.Shape.SequenceEqual(targets.Shape)) throw ShapeMismatchException.For("BinaryCrossEntropyWithLogits", logits.Shape, targets.Shape, "logits and targets must have the same shape");
        var x = logits.Contiguous(); var t = targets.Detach().Contiguous();
        var xs = x.ContiguousSpan(); var ts = t.ContiguousSpan();
        double sum = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            float v = xs[i];
            sum += Math.Max(v, 0f) - v * ts[i] + Math.Log(1.0 + Math.Exp(-Math.Abs(v)));
        }
        int n = xs.Length;
        var loss = Tensor.Scalar(n == 0 ? float.NaN : (float)(sum / n));
        if (!Tensor.NeedsGrad(x)) return loss;
        var xd = x.Detach();
        return Tensor.Record(loss, "BinaryCrossEntropyWithLogits", (g, s) =>
        {
            float scale = g.Item() / n;
            var dx = s.Target(0, out float beta);
            var a = xd.ContiguousSpan(); var b = t.ContiguousSpan();
            for (int i = 0; i < a.Length; i++)
            {
                float v = (1f / (1f + MathF.Exp(-a[i])) - b[i]) * scale;
                dx[i] = beta == 0f ? v : dx[i] + v;
            }
        }, x);
    }

    /// <summary>Mean squared error: mean((pred − target)²). Both sides get gradients when they require them.</summary>
    public static Tensor Mse(Tensor prediction, Tensor target)
    {
        if (!prediction.Shape.SequenceEqual(target.Shape)) throw ShapeMismatchException.For("Mse", prediction.Shape, target.Shape, "prediction and target must have the same shape");
        var p = prediction.Contiguous(); var t = target.Contiguous();
        int n = p.Size;
        var diff = TensorScope.RentArray(n);
        TP.Subtract(p.ContiguousSpan(), t.ContiguousSpan(), diff);
        double sum = 0; foreach (var d in diff) sum += (double)d * d;
        var loss = Tensor.Scalar(n == 0 ? float.NaN : (float)(sum / n));
        return Tensor.Record(loss, "Mse", (g, s) =>
        {
            float scale = 2f * g.Item() / n;
            for (int side = 0; side < 2; side++)
            {
                if (!s.Needs(side)) continue;
                var dx = s.Target(side, out float beta);
                float sc = side == 0 ? scale : -scale;
                if (beta == 0f) TP.Multiply(diff, sc, dx); else TP.MultiplyAdd(diff, sc, dx, dx);
            }
        }, p, t);
    }
}
