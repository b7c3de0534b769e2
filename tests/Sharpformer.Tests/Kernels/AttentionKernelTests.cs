using Sharpformer.Kernels;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Kernels;

/// <summary>The fused attention kernel and op against a naive double-precision twin (tolerance 2e-6 absolute on O(1) values).</summary>
public class AttentionKernelTests
{
    // Naive attention in double: s = scale·(q·k) (or (q·k)/divisor) + mask, causal keys j ≤ i + Sk − Sq, softmax, ·(mask ⊙ V).
    static (double[] Context, double[] Probs) Reference(float[] q, float[] k, float[] v, AttentionLayout L, AttentionOptions o, float[]? keyMask, float[]? dropMask)
    {
        int B = L.Batch, H = L.Heads, Sq = L.QueryLength, Sk = L.KeyLength, D = L.HeadDim, Dv = L.ValueDim;
        var ctx = new double[B * Sq * H * Dv]; var probs = new double[B * H * Sq * Sk];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < Sq; i++)
                {
                    var s = new double[Sk];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < Sk; j++)
                    {
                        if (o.Causal && j > i + Sk - Sq) { s[j] = double.NegativeInfinity; continue; }
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += (double)q[b * Sq * L.QueryStride + i * L.QueryStride + h * D + d] * k[b * Sk * L.KeyStride + j * L.KeyStride + h * D + d];
                        s[j] = (o.Divisor > 0 ? dot / o.Divisor : dot * o.Scale) + (keyMask?[b * Sk + j] ?? 0f);
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < Sk; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                    for (int j = 0; j < Sk; j++)
                    {
                        int pi = ((b * H + h) * Sq + i) * Sk + j;
                        probs[pi] = s[j] / sum;
                        double pd = probs[pi] * (dropMask?[pi] ?? 1f);
                        for (int d = 0; d < Dv; d++) ctx[(b * Sq + i) * H * Dv + h * Dv + d] += pd * v[b * Sk * L.ValueStride + j * L.ValueStride + h * Dv + d];
                    }
                }
        return (ctx, probs);
    }

    static float[] Rand(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale).ToArray();
    }

    [Theory]
    [InlineData(2, 2, 5, 5, 4, 4, false, false, 0f)]
    [InlineData(2, 3, 7, 7, 8, 5, true, false, 0f)]
    [InlineData(3, 2, 4, 9, 3, 6, false, true, 0f)]       // cross-attention with key padding
    [InlineData(2, 2, 6, 6, 3, 3, true, true, 1.7320508f)] // causal + padding, (q·k)/√3 order
    [InlineData(1, 4, 33, 40, 16, 16, true, true, 0f)]     // vector tails and a longer cached prefix
    public void ForwardMatchesDoubleReference(int B, int H, int Sq, int Sk, int D, int Dv, bool causal, bool masked, float divisor)
    {
        var L = AttentionLayout.Dense(B, H, Sq, Sk, D, Dv);
        var o = new AttentionOptions(1f / MathF.Sqrt(D), divisor, causal);
        var q = Rand(B * Sq * H * D, 1, 2f); var k = Rand(B * Sk * H * D, 2, 2f); var v = Rand(B * Sk * H * Dv, 3);
        float[]? mask = null;
        if (masked)
        {
            // sample 0 pads its last two keys, sample 1 an interior key, the rest keep all keys
            mask = new float[B * Sk];
            mask[Sk - 1] = mask[Sk - 2] = Functional.MaskedValue;
            if (B > 1) mask[Sk + 1] = -1e9f;
        }
        var ctx = new float[B * Sq * H * Dv]; var probs = new float[B * H * Sq * Sk];
        var max = new float[B * H * Sq]; var inv = new float[B * H * Sq];
        Attention.Forward(q, k, v, ctx, L, o, mask, max, inv, probs, threads: 2);
        var (rc, rp) = Reference(q, k, v, L, o, mask, null);
        for (int i = 0; i < ctx.Length; i++) Assert.True(Math.Abs(ctx[i] - rc[i]) <= 2e-6, $"context[{i}]: {ctx[i]} vs {rc[i]}");
        for (int i = 0; i < probs.Length; i++) Assert.True(Math.Abs(probs[i] - rp[i]) <= 2e-6, $"probs[{i}]: {probs[i]} vs {rp[i]}");
        // Padded and future keys get exactly zero.
        if (masked) Assert.Equal(0f, probs[Sk - 1]);
        if (causal) Assert.Equal(0f, probs[Sk - Sq + 1]);   // query 0 never sees the key after its own position
    }

    [Fact]
    public void FusedLayoutWithDropoutMatchesReference()
    {
        // Q, K, V as column blocks of one [B, S, 3·H·D] buffer (the seed model's layout); dropout mask regenerated per head.
        int B = 2, H = 2, S = 6, D = 4, HD = H * D;
        var qkv = Rand(B * S * 3 * HD, 4, 2f);
        var L = new AttentionLayout(B, H, S, S, D, D, 3 * HD, 3 * HD, 3 * HD, HD);
        var o = new AttentionOptions(0.5f, 0f, false, 0.3f, 12345);
        var ctx = new float[B * S * HD];
        Attention.Forward(qkv, qkv.AsSpan(HD), qkv.AsSpan(2 * HD), ctx, L, o, default, default, default, default);
        var drop = new float[B * H * S * S];
        DropoutMask.Fill(drop, 0.3f, 12345);
        Assert.Contains(0f, drop);
        var (rc, _) = Reference(qkv, qkv[HD..], qkv[(2 * HD)..], L, o, null, drop);
        for (int i = 0; i < ctx.Length; i++) Assert.True(Math.Abs(ctx[i] - rc[i]) <= 4e-6, $"context[{i}]: {ctx[i]} vs {rc[i]}");
    }

    [Fact]
    public void TrailingPaddingIsSkippedWithoutChangingABit()
    {
        // Skipping trailing padding keys must give exactly what computing them gives (their exp underflows to 0): compare
        // against the same sample with the padding moved inside the key range, where it cannot be skipped.
        int H = 2, S = 8, D = 4;
        var L = AttentionLayout.Dense(1, H, S, S, D, D);
        var o = new AttentionOptions(0.5f);
        var q = Rand(S * H * D, 5); var k = Rand(S * H * D, 6); var v = Rand(S * H * D, 7);
        var tail = new float[S]; tail[6] = tail[7] = -1e9f;       // padding: skipped
        var computed = new float[S]; computed[6] = computed[7] = -1e8f;   // above PaddingMask: computed, exp underflows
        var a = new float[S * H * D]; var b = new float[S * H * D];
        Attention.Forward(q, k, v, a, L, o, tail, default, default, default);
        Attention.Forward(q, k, v, b, L, o, computed, default, default, default);
        Assert.Equal(b, a);
    }

    [Fact]
    public void AllKeysMaskedSpreadsAttentionEvenly()
    {
        var L = AttentionLayout.Dense(1, 1, 2, 3, 2, 1);
        var probs = new float[6]; var ctx = new float[2];
        Attention.Forward(Rand(4, 8), Rand(6, 9), [1f, 2f, 6f], ctx, L, new AttentionOptions(1f), [float.MinValue, float.MinValue, float.MinValue], default, default, probs);
        Assert.All(probs, p => Assert.Equal(1f / 3, p, 6));
        Assert.Equal(3f, ctx[0], 5);
    }

    [Theory]
    [InlineData(0, 100)]
    [InlineData(1, 37)]
    [InlineData(16383, 5)]        // straddles a chunk boundary from an odd index
    [InlineData(20000, 16400)]
    public void DropoutMaskRangeEqualsTheSliceOfTheWholeMask(int start, int length)
    {
        var whole = new float[start + length + 3];
        DropoutMask.Fill(whole, 0.4f, 99);
        var part = new float[length];
        DropoutMask.FillRange(part, 0.4f, 99, start);
        Assert.Equal(whole.AsSpan(start, length).ToArray(), part);
    }

    // Slow twin of the (vectorised) mask: entry i from the documented formula, one SplitMix64 output per pair of entries.
    [Theory]
    [InlineData(0, 40000, 0.1f)]
    [InlineData(3, 101, 0.5f)]
    [InlineData(16380, 70, 0.25f)]
    public void DropoutMaskEqualsTheScalarDefinition(int start, int length, float p)
    {
        const ulong seed = 0xC0FFEE;
        static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        var mask = new float[length];
        DropoutMask.FillRange(mask, p, seed, start);
        ulong threshold = (ulong)Math.Round(p * 16777216.0);
        for (int j = 0; j < length; j++)
        {
            long i = start + j, chunk = i / 16384, local = i % 16384;
            ulong z = Mix(seed + (ulong)chunk * 0xD1B54A32D192ED03UL + (ulong)(local / 2 + 1) * 0x9E3779B97F4A7C15UL);
            ulong bits = local % 2 == 0 ? z >> 40 : (z >> 16) & 0xFFFFFF;
            Assert.Equal(bits >= threshold ? 1f / (1f - p) : 0f, mask[j]);
        }
    }

    [Fact]
    public void OpUnderNoGradRecordsNothingAndMatchesTheGradPath()
    {
        var q = Tensor.FromArray(Rand(2 * 4 * 6, 10), 2, 4, 6); var k = Tensor.FromArray(Rand(2 * 4 * 6, 11), 2, 4, 6); var v = Tensor.FromArray(Rand(2 * 4 * 6, 12), 2, 4, 6);
        foreach (var t in new[] { q, k, v }) t.RequiresGrad = true;
        var mask = Functional.AdditiveMask([1, 1, 1, 0, 1, 1, 1, 1], 2, 4);
        var withGrad = Functional.Attention(q, k, v, 3, mask, causal: true);
        Assert.False(withGrad.Context.IsLeaf);
        Tensor plain;
        using (Autograd.NoGrad()) plain = Functional.Attention(q, k, v, 3, mask, causal: true).Context;
        Assert.True(plain.IsLeaf);
        Assert.Equal(withGrad.Context.ToArray(), plain.ToArray());
    }

    [Fact]
    public void OpRejectsAMaskThatIsNotAKeyPaddingMask()
    {
        var x = Tensor.Zeros(1, 3, 4);
        var e = Assert.Throws<ShapeMismatchException>(() => Functional.Attention(x, x, x, 2, Tensor.Zeros(1, 1, 3, 3)));
        Assert.Contains("key-padding mask", e.Message);
    }
}
