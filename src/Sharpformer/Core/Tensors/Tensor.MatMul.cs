using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

public sealed partial class Tensor
{
    /// <summary>
    /// Matrix product over the last two dimensions, broadcasting leading (batch) dimensions as numpy/torch.
    /// 1-D operands are treated as a row (left) or column (right) vector and that dimension is removed from the result.
    /// </summary>
    /// <remarks>
    /// C[..., m, n] = Σₖ A[..., m, k]·B[..., k, n]. Views that are plain transposes of row-major data (e.g. <c>k.T</c>, or the
    /// [B,H,S,D] permutation of a [B,S,H·D] projection) go to GEMM with transpose flags and leading dimensions, without copying.
    /// </remarks>
    public Tensor MatMul(Tensor other)
    {
        if (Rank == 0 || other.Rank == 0) throw ShapeMismatchException.For("MatMul", _shape, other._shape, "scalars cannot be multiplied as matrices");
        if (Rank == 1) return Unsqueeze(0).MatMul(other).Squeeze(-2);
        if (other.Rank == 1) return MatMul(other.Unsqueeze(-1)).Squeeze(-1);
        int m = _shape[^2], k = _shape[^1], k2 = other._shape[^2], n = other._shape[^1];
        if (k != k2) throw ShapeMismatchException.For("MatMul", _shape, other._shape, $"inner dimensions {k} and {k2} differ");
        var batch = BroadcastShapes(_shape.AsSpan(0, Rank - 2), other._shape.AsSpan(0, other.Rank - 2), "MatMul");
        int[] outShape = [.. batch, m, n];
        var r = Empty(outShape);
        MatMulInto(this, other, batch, r.Data, 0, 0f);
        if (!NeedsGrad(this, other)) return r;
        Tensor a = Detach(), b = other.Detach();
        int[] sa = ShapeArray, sb = other.ShapeArray;
        return Record(r, "MatMul", (g, s) =>
        {
            if (s.Needs(0)) AccumulateProduct(s, 0, g, b.Transpose(-1, -2), sa);   // dA = dC·Bᵀ
            if (s.Needs(1)) AccumulateProduct(s, 1, a.Transpose(-1, -2), g, sb);   // dB = Aᵀ·dC
        }, this, other);
    }

    static void AccumulateProduct(GradSink s, int input, Tensor x, Tensor y, int[] targetShape)
    {
        var batch = BroadcastShapes(x._shape.AsSpan(0, x.Rank - 2), y._shape.AsSpan(0, y.Rank - 2), "MatMul.backward");
        int[] prodShape = [.. batch, x._shape[^2], y._shape[^1]];
        if (prodShape.AsSpan().SequenceEqual(targetShape))
        {
            var dst = s.Target(input, out float beta);
            MatMulInto(x, y, batch, dst, 0, beta);
            return;
        }
        var p = Empty(prodShape);
        MatMulInto(x, y, batch, p.Data, 0, 0f);
        s.Add(input, SumToShape(p, targetShape), owned: true);
    }

    /// <summary>How a strided matrix maps onto GEMM: transposed or not, and its leading dimension; null if it needs a copy.</summary>
    static (bool Trans, int Ld)? GemmLayout(int rows, int cols, int rowStride, int colStride)
    {
        if ((colStride == 1 || cols == 1) && (rows == 1 || rowStride >= Math.Max(cols, 1)))
            return (false, rows == 1 ? Math.Max(cols, 1) : rowStride);
        if ((rowStride == 1 || rows == 1) && (cols == 1 || colStride >= Math.Max(rows, 1)))
            return (true, cols == 1 ? Math.Max(rows, 1) : colStride);
        return null;
    }

    /// <summary>C = A·B (+ beta·C) into a contiguous [batch..., m, n] buffer; no recording.</summary>
    internal static void MatMulInto(Tensor a, Tensor b, int[] batch, Span<float> c, int cOffset, float beta)
    {
        int m = a._shape[^2], k = a._shape[^1], n = b._shape[^1];
        var la = GemmLayout(m, k, a._strides[^2], a._strides[^1]);
        if (la == null) { a = a.Detach().Contiguous(); la = (false, Math.Max(k, 1)); }
        var lb = GemmLayout(k, n, b._strides[^2], b._strides[^1]);
        if (lb == null) { b = b.Detach().Contiguous(); lb = (false, Math.Max(n, 1)); }

        int br = batch.Length;
        // batch strides of A, B (broadcast → 0) and C (contiguous)
        var sa = new int[br]; var sb = new int[br]; var sc = new int[br];
        {
            int acc = m * n;
            for (int i = br - 1; i >= 0; i--) { sc[i] = acc; acc *= batch[i]; }
            int offA = br - (a.Rank - 2), offB = br - (b.Rank - 2);
            for (int i = 0; i < br; i++)
            {
                int ia = i - offA, ib = i - offB;
                sa[i] = ia < 0 || a._shape[ia] == 1 ? 0 : a._strides[ia];
                sb[i] = ib < 0 || b._shape[ib] == 1 ? 0 : b._strides[ib];
            }
        }
        // merge batch dims whose strides chain for all three operands
        var dims = new List<int>(); var la_ = new List<int>(); var lb_ = new List<int>(); var lc_ = new List<int>();
        for (int i = 0; i < br; i++)
        {
            if (batch[i] == 1) continue;
            if (dims.Count > 0)
            {
                int t = dims.Count - 1;
                if (la_[t] == sa[i] * batch[i] && lb_[t] == sb[i] * batch[i] && lc_[t] == sc[i] * batch[i])
                { dims[t] *= batch[i]; la_[t] = sa[i]; lb_[t] = sb[i]; lc_[t] = sc[i]; continue; }
            }
            dims.Add(batch[i]); la_.Add(sa[i]); lb_.Add(sb[i]); lc_.Add(sc[i]);
        }
        var (ta, lda) = la.Value; var (tb, ldb) = lb.Value;
        float[] ad = a.Data, bd = b.Data;
        if (dims.Count == 0)
        {
            Gemm.Sgemm(ta, tb, m, n, k, 1f, ad.AsSpan(a.Offset), lda, bd.AsSpan(b.Offset), ldb, beta, c.Slice(cOffset), Math.Max(n, 1), ExecutionScope.Threads);
            return;
        }
        int last = dims.Count - 1, count = dims[last];
        int outer = 1; for (int i = 0; i < last; i++) outer *= dims[i];
        Span<int> idx = stackalloc int[Math.Max(last, 1)];
        idx.Clear();
        for (int o = 0; o < outer; o++)
        {
            int oa = a.Offset, ob = b.Offset, oc = cOffset;
            for (int i = 0; i < last; i++) { oa += idx[i] * la_[i]; ob += idx[i] * lb_[i]; oc += idx[i] * lc_[i]; }
            Gemm.SgemmBatched(ta, tb, m, n, k, 1f, ad.AsSpan(oa), lda, la_[last], bd.AsSpan(ob), ldb, lb_[last],
                beta, c.Slice(oc), Math.Max(n, 1), lc_[last], count, ExecutionScope.Threads);
            for (int i = last - 1; i >= 0; i--) { if (++idx[i] < dims[i]) break; idx[i] = 0; }
        }
    }
}
