using System.Numerics.Tensors;

namespace Sharpformer.Kernels;

/// <summary>
/// Gate math of one GRU or LSTM time step over a batch, fused after the two projections the caller computes with GEMM
/// (gx = W_ih·x + b_ih for every step at once, gh = W_hh·h + b_hh per step). Gate blocks follow PyTorch's row order:
/// r, z, n (GRU) and i, f, g, o (LSTM), each <c>hidden</c> wide, so gx and gh rows are [B, G·H].
/// </summary>
/// <remarks>
/// Variable lengths follow PyTorch's packed sequences: row b is <em>active</em> at time t when <c>t &lt; lengths[b]</c>
/// (every row is active when <c>lengths</c> is empty). An inactive row keeps its state, produces nothing and receives
/// no gradient through this step; its saved activations are left unspecified. Reference twins (double precision,
/// one element at a time) live in the tests.
/// </remarks>
public static class Recurrent
{
    /// <summary>Floats saved per hidden unit by <see cref="GruForward"/> for the backward: r, z, n and W_hn·h + b_hn.</summary>
    public const int GruSaved = 4;

    /// <summary>Floats saved per hidden unit by <see cref="LstmForward"/> for the backward: i, f, g, o and tanh(c′).</summary>
    public const int LstmSaved = 5;

    /// <summary>Whether row <paramref name="b"/> takes part in time step <paramref name="time"/>.</summary>
    public static bool IsActive(ReadOnlySpan<int> lengths, int b, int time) => lengths.IsEmpty || time < lengths[b];

    /// <summary>
    /// One GRU step: r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r ⊙ gh_n), h′ = (1 − z) ⊙ n + z ⊙ h.
    /// gx, gh [B, 3H]; hPrev, hNext [B, H]; saved [B, 4H] (r, z, n, gh_n) or empty when no backward follows.
    /// Inactive rows copy hPrev to hNext.
    /// </summary>
    /// <remarks>b_hn stays inside r ⊙ (W_hn·h + b_hn), as in PyTorch (and cuDNN), which is why gh carries b_hh.</remarks>
    public static void GruForward(ReadOnlySpan<float> gx, ReadOnlySpan<float> gh, ReadOnlySpan<float> hPrev, Span<float> hNext,
        Span<float> saved, int batch, int hidden, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        int H = hidden, G = 3 * H;
        Check(batch, H, lengths, (gx.Length, batch * G, nameof(gx)), (gh.Length, batch * G, nameof(gh)),
            (hPrev.Length, batch * H, nameof(hPrev)), (hNext.Length, batch * H, nameof(hNext)));
        if (!saved.IsEmpty) CheckLength(saved.Length, batch * GruSaved * H, nameof(saved));
        Span<float> scratch = saved.IsEmpty ? (GruSaved * H <= 2048 ? stackalloc float[GruSaved * H] : new float[GruSaved * H]) : default;
        for (int b = 0; b < batch; b++)
        {
            var hp = hPrev.Slice(b * H, H); var hn = hNext.Slice(b * H, H);
            if (!IsActive(lengths, b, time)) { hp.CopyTo(hn); continue; }
            var x = gx.Slice(b * G, G); var h = gh.Slice(b * G, G);
            var s = saved.IsEmpty ? scratch : saved.Slice(b * GruSaved * H, GruSaved * H);
            Span<float> r = s[..H], z = s.Slice(H, H), n = s.Slice(2 * H, H), ghn = s.Slice(3 * H, H);
            TensorPrimitives.Add(x[..H], h[..H], r); TensorPrimitives.Sigmoid(r, r);
            TensorPrimitives.Add(x.Slice(H, H), h.Slice(H, H), z); TensorPrimitives.Sigmoid(z, z);
            h.Slice(2 * H, H).CopyTo(ghn);
            TensorPrimitives.MultiplyAdd(r, ghn, x.Slice(2 * H, H), n); Activations.Tanh(n, n);
            // h′ = n + z ⊙ (h − n)
            TensorPrimitives.Subtract(hp, n, hn); TensorPrimitives.MultiplyAdd(hn, z, n, hn);
        }
    }

    /// <summary>
    /// Backward of <see cref="GruForward"/> for one step. dh [B, H] is the whole gradient reaching h′ (carried state plus
    /// output); writes dgx [B, 3H] (gradient of gx), dgh [B, 3H] (gradient of gh = W_hh·h + b_hh) and dhPrev [B, H], the
    /// part of dL/dh that bypasses W_hh (z ⊙ dh). The caller adds dgh·W_hh to dhPrev. Inactive rows: dgx = dgh = 0, dhPrev = dh.
    /// </summary>
    public static void GruBackward(ReadOnlySpan<float> saved, ReadOnlySpan<float> hPrev, ReadOnlySpan<float> dh,
        Span<float> dgx, Span<float> dgh, Span<float> dhPrev, int batch, int hidden, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        int H = hidden, G = 3 * H;
        Check(batch, H, lengths, (saved.Length, batch * GruSaved * H, nameof(saved)), (hPrev.Length, batch * H, nameof(hPrev)),
            (dh.Length, batch * H, nameof(dh)), (dgx.Length, batch * G, nameof(dgx)), (dgh.Length, batch * G, nameof(dgh)), (dhPrev.Length, batch * H, nameof(dhPrev)));
        for (int b = 0; b < batch; b++)
        {
            var gxr = dgx.Slice(b * G, G); var ghr = dgh.Slice(b * G, G);
            var dhr = dh.Slice(b * H, H); var dpr = dhPrev.Slice(b * H, H);
            if (!IsActive(lengths, b, time)) { gxr.Clear(); ghr.Clear(); dhr.CopyTo(dpr); continue; }
            var s = saved.Slice(b * GruSaved * H, GruSaved * H); var hp = hPrev.Slice(b * H, H);
            for (int j = 0; j < H; j++)
            {
                float r = s[j], z = s[H + j], n = s[2 * H + j], ghn = s[3 * H + j], d = dhr[j];
                float dnPre = d * (1f - z) * (1f - n * n);
                float dzPre = d * (hp[j] - n) * z * (1f - z);
                float drPre = dnPre * ghn * r * (1f - r);
                gxr[j] = drPre; gxr[H + j] = dzPre; gxr[2 * H + j] = dnPre;
                ghr[j] = drPre; ghr[H + j] = dzPre; ghr[2 * H + j] = dnPre * r;
                dpr[j] = d * z;
            }
        }
    }

    /// <summary>
    /// One LSTM step: i, f, o = σ(gx + gh), g = tanh(gx + gh) per block, c′ = f ⊙ c + i ⊙ g, m = o ⊙ tanh(c′).
    /// gx, gh [B, 4H]; cPrev, cNext, m [B, H]; saved [B, 5H] (i, f, g, o, tanh c′) or empty. m is h′ without a projection
    /// (with proj_size the caller forms h′ = W_hr·m). Inactive rows: cNext = cPrev and m = 0.
    /// </summary>
    public static void LstmForward(ReadOnlySpan<float> gx, ReadOnlySpan<float> gh, ReadOnlySpan<float> cPrev, Span<float> cNext,
        Span<float> m, Span<float> saved, int batch, int hidden, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        int H = hidden, G = 4 * H;
        Check(batch, H, lengths, (gx.Length, batch * G, nameof(gx)), (gh.Length, batch * G, nameof(gh)),
            (cPrev.Length, batch * H, nameof(cPrev)), (cNext.Length, batch * H, nameof(cNext)), (m.Length, batch * H, nameof(m)));
        if (!saved.IsEmpty) CheckLength(saved.Length, batch * LstmSaved * H, nameof(saved));
        Span<float> scratch = saved.IsEmpty ? (LstmSaved * H <= 2048 ? stackalloc float[LstmSaved * H] : new float[LstmSaved * H]) : default;
        for (int b = 0; b < batch; b++)
        {
            var cp = cPrev.Slice(b * H, H); var cn = cNext.Slice(b * H, H); var mr = m.Slice(b * H, H);
            if (!IsActive(lengths, b, time)) { cp.CopyTo(cn); mr.Clear(); continue; }
            var s = saved.IsEmpty ? scratch : saved.Slice(b * LstmSaved * H, LstmSaved * H);
            var pre = s[..G];   // i, f, g, o pre-activations, turned into activations in place
            TensorPrimitives.Add(gx.Slice(b * G, G), gh.Slice(b * G, G), pre);
            TensorPrimitives.Sigmoid(pre[..(2 * H)], pre[..(2 * H)]);
            Activations.Tanh(pre.Slice(2 * H, H), pre.Slice(2 * H, H));
            TensorPrimitives.Sigmoid(pre.Slice(3 * H, H), pre.Slice(3 * H, H));
            Span<float> i = s[..H], f = s.Slice(H, H), g = s.Slice(2 * H, H), o = s.Slice(3 * H, H), tc = s.Slice(4 * H, H);
            TensorPrimitives.Multiply(i, g, cn); TensorPrimitives.MultiplyAdd(f, cp, cn, cn);
            Activations.Tanh(cn, tc);
            TensorPrimitives.Multiply(o, tc, mr);
        }
    }

    /// <summary>
    /// Backward of <see cref="LstmForward"/> for one step. dm [B, H] = dL/dm (dL/dh′ without a projection); dc [B, H] holds
    /// dL/dc′ on entry and dL/dc on return (for inactive rows it passes unchanged); dg [B, 4H] receives the gradient of the
    /// gate pre-activations (= of gx and of gh, which enter as a sum). Inactive rows: dg = 0.
    /// </summary>
    public static void LstmBackward(ReadOnlySpan<float> saved, ReadOnlySpan<float> cPrev, ReadOnlySpan<float> dm, Span<float> dc,
        Span<float> dg, int batch, int hidden, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        int H = hidden, G = 4 * H;
        Check(batch, H, lengths, (saved.Length, batch * LstmSaved * H, nameof(saved)), (cPrev.Length, batch * H, nameof(cPrev)),
            (dm.Length, batch * H, nameof(dm)), (dc.Length, batch * H, nameof(dc)), (dg.Length, batch * G, nameof(dg)));
        for (int b = 0; b < batch; b++)
        {
            var dgr = dg.Slice(b * G, G);
            if (!IsActive(lengths, b, time)) { dgr.Clear(); continue; }
            var s = saved.Slice(b * LstmSaved * H, LstmSaved * H);
            var cp = cPrev.Slice(b * H, H); var dmr = dm.Slice(b * H, H); var dcr = dc.Slice(b * H, H);
            for (int j = 0; j < H; j++)
            {
                float i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j], tc = s[4 * H + j], d = dmr[j];
                float dct = dcr[j] + d * o * (1f - tc * tc);
                dgr[j] = dct * g * i * (1f - i);
                dgr[H + j] = dct * cp[j] * f * (1f - f);
                dgr[2 * H + j] = dct * i * (1f - g * g);
                dgr[3 * H + j] = d * tc * o * (1f - o);
                dcr[j] = dct * f;
            }
        }
    }

    /// <summary>dst[b, :] = src[b, :] for active rows, 0 for inactive ones ([B, width]): a step's output, zero past each length.</summary>
    public static void CopyActive(ReadOnlySpan<float> src, Span<float> dst, int batch, int width, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        Check(batch, width, lengths, (src.Length, batch * width, nameof(src)), (dst.Length, batch * width, nameof(dst)));
        for (int b = 0; b < batch; b++)
        {
            if (IsActive(lengths, b, time)) src.Slice(b * width, width).CopyTo(dst.Slice(b * width, width));
            else dst.Slice(b * width, width).Clear();
        }
    }

    /// <summary>dst[b, :] = src[b, :] for inactive rows, 0 for active ones: the part of a gradient (or state) that skips the step.</summary>
    public static void CopyInactive(ReadOnlySpan<float> src, Span<float> dst, int batch, int width, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        Check(batch, width, lengths, (src.Length, batch * width, nameof(src)), (dst.Length, batch * width, nameof(dst)));
        for (int b = 0; b < batch; b++)
        {
            if (IsActive(lengths, b, time)) dst.Slice(b * width, width).Clear();
            else src.Slice(b * width, width).CopyTo(dst.Slice(b * width, width));
        }
    }

    /// <summary>acc[b, :] += x[b, :] for active rows only ([B, width]): the output gradient of a step joins the carried one.</summary>
    public static void AddActive(ReadOnlySpan<float> x, Span<float> acc, int batch, int width, ReadOnlySpan<int> lengths = default, int time = 0)
    {
        Check(batch, width, lengths, (x.Length, batch * width, nameof(x)), (acc.Length, batch * width, nameof(acc)));
        for (int b = 0; b < batch; b++)
        {
            if (!IsActive(lengths, b, time)) continue;
            var a = acc.Slice(b * width, width);
            TensorPrimitives.Add(a, x.Slice(b * width, width), a);
        }
    }

    static void Check(int batch, int width, ReadOnlySpan<int> lengths, params ReadOnlySpan<(int Length, int Needed, string Name)> buffers)
    {
        if (batch < 0 || width < 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch={batch}, width={width} must be non-negative.");
        if (!lengths.IsEmpty && lengths.Length < batch) throw new ArgumentException($"lengths has {lengths.Length} entries; {batch} needed.", nameof(lengths));
        foreach (var (length, needed, name) in buffers) CheckLength(length, needed, name);
    }

    static void CheckLength(int length, int needed, string name)
    {
        if (length < needed) throw new ArgumentException($"{name} holds {length} floats; {needed} needed.", name);
    }
}
