using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>Which bf16 micro-kernel <see cref="Bf16Gemm"/> runs.</summary>
public enum Bf16Kernel
{
    /// <summary>Managed 256-bit vectors: bf16 widened to fp32 by a shift, fp32 multiply-adds.</summary>
    Portable,
    /// <summary>AVX512_BF16 vdpbf16ps in machine code emitted at run time (<see cref="JitDotKernels"/>).</summary>
    Avx512Bf16,
}

/// <summary>
/// A linear layer's weight [Out, In] rounded to bfloat16 (round to nearest even; the top 16 bits of the fp32 value) and
/// packed like <see cref="Int8PackedWeights"/>: blocks of 16 output channels stored as [InPadded/2][16][2], so one 64-byte
/// row holds 2 consecutive k of 16 channels — vdpbf16ps's operand layout.
/// </summary>
public sealed class Bf16PackedWeights
{
    /// <summary>Output channels per packed block.</summary>
    public const int ColumnBlock = 16;

    internal ushort[] Packed { get; private set; }
    readonly bool _pooled;

    Bf16PackedWeights(int outFeatures, int inFeatures, bool pooled = false)
    {
        Out = outFeatures; In = inFeatures; InPadded = (inFeatures + 1) & ~1;
        long length = (long)Blocks * ColumnBlock * InPadded;
        if (length > Array.MaxLength) throw new NotSupportedException($"A bf16 weight of {outFeatures}×{inFeatures} exceeds .NET's array limit.");
        _pooled = pooled;
        Packed = pooled ? ArrayPool<ushort>.Shared.Rent((int)length) : new ushort[length];
    }

    public int Out { get; }
    public int In { get; }
    /// <summary>In rounded up to even (the padding holds zero weights).</summary>
    public int InPadded { get; }
    internal int Blocks => (Out + ColumnBlock - 1) / ColumnBlock;

    /// <summary>Rounds and packs an fp32 weight [Out, In].</summary>
    public static Bf16PackedWeights FromFloat(ReadOnlySpan<float> weight, int outFeatures, int inFeatures)
    {
        if (outFeatures <= 0 || inFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), $"Weight shape [{outFeatures}, {inFeatures}] must be positive.");
        if (weight.Length != (long)outFeatures * inFeatures) throw new ArgumentException($"A weight [{outFeatures}, {inFeatures}] needs {(long)outFeatures * inFeatures} values, got {weight.Length}.", nameof(weight));
        return FromFloat(weight, outFeatures, inFeatures, pooled: false);
    }

    /// <summary>Rounds and packs an fp32 weight [Out, In]; with <c>pooled</c> the storage comes from <see cref="ArrayPool{T}.Shared"/>
    /// (give it back with <see cref="Return"/>): a training step packs every weight anew because the optimizer changed it.</summary>
    public static Bf16PackedWeights FromFloat(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, bool pooled)
    {
        if (outFeatures <= 0 || inFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), $"Weight shape [{outFeatures}, {inFeatures}] must be positive.");
        if (weight.Length < (long)outFeatures * inFeatures) throw new ArgumentException($"A weight [{outFeatures}, {inFeatures}] needs {(long)outFeatures * inFeatures} values, got {weight.Length}.", nameof(weight));
        var p = new Bf16PackedWeights(outFeatures, inFeatures, pooled);
        int pairs = p.InPadded / 2, blockPairs = ColumnBlock * pairs;
        var dst = MemoryMarshal.Cast<ushort, uint>(p.Packed.AsSpan(0, p.Blocks * ColumnBlock * p.InPadded));
        // channels past Out in the last block multiply as zero
        if (p.Blocks * ColumnBlock != outFeatures) dst.Slice((p.Blocks - 1) * blockPairs).Clear();
        for (int n = 0; n < outFeatures; n++)
        {
            var row = weight.Slice(n * inFeatures, inFeatures);
            var d = dst.Slice(n / ColumnBlock * blockPairs + n % ColumnBlock);
            int kp = 0;
            for (; 2 * kp + 1 < inFeatures; kp++)
                d[kp * ColumnBlock] = Bf16Gemm.ToBf16(row[2 * kp]) | ((uint)Bf16Gemm.ToBf16(row[2 * kp + 1]) << 16);
            if (kp < pairs) d[kp * ColumnBlock] = Bf16Gemm.ToBf16(row[2 * kp]);   // odd In: the padding k is zero
        }
        return p;
    }

    /// <summary>
    /// Rounds and packs the transpose of <paramref name="kn"/> [K, N] (row-major, K rows of N values): the result multiplies
    /// like a weight [Out = N, In = K]. It is the operand layout a training step needs from an fp32 matrix whose reduction
    /// index is its row: Wᵀ for dX = dY·W (W [out, in] read as [K = out, N = in]) and the activations for dW = dYᵀ·X
    /// (X [rows, in] read as [K = rows, N = in]). Two consecutive rows of 16 columns become one 64-byte step, so both
    /// reads and writes are contiguous. With <c>pooled</c> the storage comes from <see cref="ArrayPool{T}.Shared"/> and the
    /// caller hands it back with <see cref="Return"/> (per-step operands that would otherwise allocate their size every step).
    /// </summary>
    public static Bf16PackedWeights FromFloatTransposed(ReadOnlySpan<float> kn, int k, int n, bool pooled = false) =>
        FromFloatTransposed(kn, k, n, pooled, threads: 1);

    /// <summary><see cref="FromFloatTransposed(ReadOnlySpan{float}, int, int, bool)"/> with the 16-column blocks shared out over
    /// <paramref name="threads"/> (each block is written by one worker, so the result does not depend on the count).</summary>
    public static unsafe Bf16PackedWeights FromFloatTransposed(ReadOnlySpan<float> kn, int k, int n, bool pooled, int threads)
    {
        if (k <= 0 || n <= 0) throw new ArgumentOutOfRangeException(nameof(k), $"Matrix shape [{k}, {n}] must be positive.");
        if (kn.Length < (long)k * n) throw new ArgumentException($"A matrix [{k}, {n}] needs {(long)k * n} values, got {kn.Length}.", nameof(kn));
        var p = new Bf16PackedWeights(n, k, pooled);
        fixed (float* src = kn)
        {
            nint s = (nint)src;
            int blocksPerChunk = Math.Max(1, (1 << 16) / Math.Max(1, k));   // ≈ 1 M values per chunk
            if (Parallelism.WorkersFor((long)k * n, 1 << 20, threads) <= 1) PackTransposed(s, k, n, p, 0, p.Blocks);
            else Parallelism.ForChunks(p.Blocks, blocksPerChunk, threads, (_, b0, b1) => PackTransposed(s, k, n, p, b0, b1));
        }
        return p;
    }

    /// <summary>Blocks [b0, b1) of <see cref="FromFloatTransposed(ReadOnlySpan{float}, int, int, bool)"/>.</summary>
    static unsafe void PackTransposed(nint source, int k, int n, Bf16PackedWeights p, int b0, int b1)
    {
        var kn = new ReadOnlySpan<float>((float*)source, k * n);
        var dst = MemoryMarshal.Cast<ushort, uint>(p.Packed.AsSpan(0, p.Blocks * ColumnBlock * p.InPadded));
        var bias = Vector512.Create(0x7FFFu);
        for (int b = b0; b < b1; b++)
        {
            int c0 = b * ColumnBlock, width = Math.Min(ColumnBlock, n - c0);
            var block = dst.Slice(b * ColumnBlock * p.InPadded / 2, ColumnBlock * p.InPadded / 2);
            for (int kp = 0; kp < p.InPadded / 2; kp++)
            {
                int r0 = 2 * kp;
                var d = block.Slice(kp * ColumnBlock, ColumnBlock);
                if (width == ColumnBlock && r0 + 1 < k)
                {
                    // low half = row r0 (the even k), high half = row r0 + 1: vdpbf16ps's pair order
                    var lo = Bf16Gemm.Round(Vector512.Create(kn.Slice(r0 * n + c0, ColumnBlock)), bias);
                    var hi = Bf16Gemm.Round(Vector512.Create(kn.Slice((r0 + 1) * n + c0, ColumnBlock)), bias);
                    (lo | (hi << 16)).CopyTo(d);
                    continue;
                }
                for (int c = 0; c < ColumnBlock; c++)
                {
                    uint lo = c < width ? Bf16Gemm.ToBf16(kn[r0 * n + c0 + c]) : 0u;
                    uint hi = c < width && r0 + 1 < k ? Bf16Gemm.ToBf16(kn[(r0 + 1) * n + c0 + c]) : 0u;
                    d[c] = lo | (hi << 16);
                }
            }
        }
    }

    /// <summary>Gives pooled storage back (<see cref="FromFloatTransposed(ReadOnlySpan{float}, int, int, bool)"/> with pooled); the weights are unusable afterwards.</summary>
    public void Return()
    {
        if (!_pooled || Packed.Length == 0) return;
        ArrayPool<ushort>.Shared.Return(Packed);
        Packed = [];
    }

    /// <summary>The bf16 weights back as fp32 [Out, In]: the values the bf16 layer actually multiplies by.</summary>
    public float[] ToFloat()
    {
        var w = new float[Out * In];
        for (int n = 0; n < Out; n++)
        {
            long baseIndex = (long)(n / ColumnBlock) * ColumnBlock * InPadded;
            for (int k = 0; k < In; k++)
                w[n * In + k] = Bf16Gemm.ToFloat(Packed[baseIndex + ((long)(k / 2) * ColumnBlock + n % ColumnBlock) * 2 + k % 2]);
        }
        return w;
    }
}

/// <summary>
/// bf16 linear layer: y[r, n] += Σ_k bf16(x[r, k])·w[n, k] with the products and sums in fp32 — each activation row is
/// rounded to bf16 per call, the weights were rounded once (<see cref="Bf16PackedWeights"/>). Halves the weight bytes
/// and, on CPUs with AVX512_BF16, doubles the multiply-adds per instruction over fp32 FMA.
/// </summary>
public static unsafe class Bf16Gemm
{
    const int BlocksPerItem = JitDotKernels.MaxBlocks, TileRows = JitDotKernels.MaxRows, RowsPerItem = 4 * TileRows;

    /// <summary>The fastest kernel this CPU runs (the emitted one unless <c>SHARPFORMER_JIT=0</c>).</summary>
    public static Bf16Kernel Best { get; } = IsSupported(Bf16Kernel.Avx512Bf16) ? Bf16Kernel.Avx512Bf16 : Bf16Kernel.Portable;

    /// <summary>True when <paramref name="kernel"/> can run on this CPU.</summary>
    public static bool IsSupported(Bf16Kernel kernel) => kernel switch
    {
        Bf16Kernel.Portable => true,
        Bf16Kernel.Avx512Bf16 => JitDotKernels.IsAvailable(DotInstruction.Vdpbf16ps),
        _ => false,
    };

    /// <summary>fp32 → bf16, round to nearest even (NaN stays a quiet NaN), as torch's <c>.to(torch.bfloat16)</c>.</summary>
    public static ushort ToBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>bf16 → fp32 (exact).</summary>
    public static float ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>Rounds x [rows, cols] to bf16 rows of stride ld (columns past cols are left as they are).</summary>
    public static void RoundRows(ReadOnlySpan<float> x, int rows, int cols, Span<ushort> dst, int ld)
    {
        for (int r = 0; r < rows; r++)
        {
            var src = x.Slice(r * cols, cols);
            var d = dst.Slice(r * ld, cols);
            int k = 0;
            var bias = Vector256.Create(0x7FFFu);
            for (; k + 16 <= cols; k += 16)
            {
                var v0 = Vector256.Create(src.Slice(k, 8)); var v1 = Vector256.Create(src.Slice(k + 8, 8));
                Vector256.Narrow(Round(v0, bias), Round(v1, bias)).CopyTo(d.Slice(k, 16));
            }
            for (; k < cols; k++) d[k] = ToBf16(src[k]);
        }
    }

    /// <summary>
    /// Rounds the transpose of x [rows, cols] to bf16: dst[c, r] = bf16(x[r, c]) with rows of stride ld ≥ rows, the columns
    /// rows..ld of each dst row set to zero (the padding of an odd reduction length). The A operand of dW = dYᵀ·X.
    /// </summary>
    public static void RoundColumns(ReadOnlySpan<float> x, int rows, int cols, Span<ushort> dst, int ld)
    {
        CheckColumns(x.Length, rows, cols, dst.Length, ld);
        RoundColumnRange(x, rows, cols, 0, cols, dst, ld);
    }

    static void CheckColumns(int xLength, int rows, int cols, int dstLength, int ld)
    {
        if (ld < rows) throw new ArgumentOutOfRangeException(nameof(ld), $"ld {ld} must be at least rows {rows}.");
        if (xLength < (long)rows * cols) throw new ArgumentException($"x holds {xLength} values, {rows}×{cols} needed.", "x");
        if (dstLength < (long)cols * ld) throw new ArgumentException($"dst holds {dstLength} values, {cols}×{ld} needed.", "dst");
    }

    /// <summary>Columns [c0, c1) of <see cref="RoundColumns"/> (disjoint destination rows, so ranges can run in parallel).</summary>
    static void RoundColumnRange(ReadOnlySpan<float> x, int rows, int cols, int c0, int c1, Span<ushort> dst, int ld)
    {
        // Tiles of 16 columns × 16 row pairs: two rows of 16 columns are rounded by vector and joined into 16 (even, odd) pairs
        // (the layout of a bf16 row), parked in a 1 KiB tile, then written out as 16 contiguous pair runs, one per column.
        const int C = 16, P = 16;
        int c = c0;
        if ((ld & 1) == 0)
        {
            var bias = Vector512.Create(0x7FFFu);
            Span<uint> tile = stackalloc uint[P * C];
            var d32 = MemoryMarshal.Cast<ushort, uint>(dst);
            for (; c + C <= c1; c += C)
                for (int r0 = 0; r0 < rows; r0 += 2 * P)
                {
                    int pairs = Math.Min(P, (rows - r0 + 1) / 2);
                    for (int q = 0; q < pairs; q++)
                    {
                        int r = r0 + 2 * q;
                        var lo = Round(Vector512.Create(x.Slice(r * cols + c, C)), bias);
                        var hi = r + 1 < rows ? Round(Vector512.Create(x.Slice((r + 1) * cols + c, C)), bias) : Vector512<uint>.Zero;
                        (lo | (hi << 16)).CopyTo(tile.Slice(q * C, C));
                    }
                    for (int j = 0; j < C; j++)
                    {
                        var d = d32.Slice(((c + j) * ld + r0) / 2, pairs);
                        for (int q = 0; q < pairs; q++) d[q] = tile[q * C + j];
                    }
                }
        }
        // the last columns (and an odd ld): element by element in 32×32 tiles, which keep source and destination rows in L1
        const int T = 32;
        for (int r0 = 0; r0 < rows; r0 += T)
        {
            int r1 = Math.Min(rows, r0 + T);
            for (int t0 = c; t0 < c1; t0 += T)
            {
                int t1 = Math.Min(c1, t0 + T);
                for (int r = r0; r < r1; r++)
                {
                    var src = x.Slice(r * cols, cols);
                    for (int j = t0; j < t1; j++) dst[j * ld + r] = ToBf16(src[j]);
                }
            }
        }
        if (ld > rows) for (int j = c0; j < c1; j++) dst.Slice(j * ld + rows, ld - rows).Clear();
    }

    /// <summary>The rounded bf16 in the low 16 bits of each lane (see the 256-bit form).</summary>
    internal static Vector512<uint> Round(Vector512<float> v, Vector512<uint> bias)
    {
        var bits = v.AsUInt32();
        var rounded = (bits + bias + ((bits >> 16) & Vector512<uint>.One)) >> 16;
        return Vector512.ConditionalSelect(Vector512.Equals(v, v).AsUInt32(), rounded, (bits >> 16) | Vector512.Create(0x40u));
    }

    /// <summary>The rounded bf16 in the low 16 bits of each lane: (bits + 0x7FFF + lsb) &gt;&gt; 16, NaN lanes made quiet.</summary>
    static Vector256<uint> Round(Vector256<float> v, Vector256<uint> bias)
    {
        var bits = v.AsUInt32();
        var rounded = (bits + bias + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        return Vector256.ConditionalSelect(Vector256.Equals(v, v).AsUInt32(), rounded, (bits >> 16) | Vector256.Create(0x40u));
    }

    /// <summary>
    /// y[rows, w.Out] += bf16(x[rows, w.In]) · wᵀ in fp32: the caller pre-fills y with the bias (and residual), as
    /// <see cref="Int8Gemm.LinearAccumulate(ReadOnlySpan{float}, int, Int8PackedWeights, Span{float}, int, Int8Kernel?)"/>.
    /// </summary>
    public static void LinearAccumulate(ReadOnlySpan<float> x, int rows, Bf16PackedWeights w, Span<float> y, int threads = 0, Bf16Kernel? kernel = null)
    {
        var k = kernel ?? Best;
        if (!IsSupported(k)) throw new PlatformNotSupportedException($"The {k} bf16 kernel needs a CPU feature this machine lacks (or SHARPFORMER_JIT=0).");
        if (x.Length < (long)rows * w.In) throw new ArgumentException($"x holds {x.Length} values, {rows}×{w.In} needed.", nameof(x));
        if (y.Length < (long)rows * w.Out) throw new ArgumentException($"y holds {y.Length} values, {rows}×{w.Out} needed.", nameof(y));
        if (rows == 0) return;
        int ld = w.InPadded;
        var xa = ArrayPool<ushort>.Shared.Rent(rows * ld);
        try
        {
            if (ld != w.In) for (int r = 0; r < rows; r++) xa[r * ld + w.In] = 0;
            RoundRows(x, rows, w.In, xa, ld);
            Run(xa, rows, w, y, threads, k);
        }
        finally
        {
            ArrayPool<ushort>.Shared.Return(xa);
        }
    }

    /// <summary>
    /// A linear layer's weight gradient in bf16: dw[outF, inF] += dyᵀ·x for dy [rows, outF] and x [rows, inF], both rounded to
    /// bf16 here (dyᵀ by <see cref="RoundColumns"/>, x packed by <see cref="Bf16PackedWeights.FromFloatTransposed(ReadOnlySpan{float}, int, int, bool)"/>), the
    /// sum over rows in fp32 — the third GEMM of a mixed-precision training step.
    /// </summary>
    public static void WeightGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int rows, int outF, int inF, Span<float> dw, int threads = 0, Bf16Kernel? kernel = null)
    {
        var k = kernel ?? Best;
        if (!IsSupported(k)) throw new PlatformNotSupportedException($"The {k} bf16 kernel needs a CPU feature this machine lacks (or SHARPFORMER_JIT=0).");
        if (dw.Length < (long)outF * inF) throw new ArgumentException($"dw holds {dw.Length} values, {outF}×{inF} needed.", nameof(dw));
        if (rows == 0 || outF == 0 || inF == 0) return;
        var xp = Bf16PackedWeights.FromFloatTransposed(x, rows, inF, pooled: true, threads);
        int ld = xp.InPadded;
        var dyt = ArrayPool<ushort>.Shared.Rent(outF * ld);
        try
        {
            CheckColumns(dy.Length, rows, outF, dyt.Length, ld);
            fixed (float* pdy = dy)
            {
                nint src = (nint)pdy;
                int chunk = Math.Max(16, (1 << 16) / Math.Max(1, rows) / 16 * 16);   // ≈ 1 M values, whole 16-column tiles
                Parallelism.ForChunks(outF, chunk, Parallelism.WorkersFor((long)rows * outF, 1 << 20, threads),
                    (_, c0, c1) => RoundColumnRange(new ReadOnlySpan<float>((float*)src, rows * outF), rows, outF, c0, c1, dyt, ld));
            }
            Run(dyt, outF, xp, dw, threads, k);
        }
        finally
        {
            ArrayPool<ushort>.Shared.Return(dyt);
            xp.Return();
        }
    }

    /// <summary>y[rows, w.Out] += a[rows, w.InPadded]·wᵀ for bf16 rows a (padding columns zero), work items handed out dynamically.</summary>
    static void Run(ushort[] a, int rows, Bf16PackedWeights w, Span<float> y, int threads, Bf16Kernel k)
    {
        int rowItems = (rows + RowsPerItem - 1) / RowsPerItem, colItems = (w.Blocks + BlocksPerItem - 1) / BlocksPerItem;
        int workers = Parallelism.WorkersFor((long)rows * w.Out * w.In, 1 << 20, threads);
        fixed (float* py = y)
        {
            nint yp = (nint)py;
            Parallelism.ForDynamic(rowItems * colItems, workers, item => Item(a, w, yp, rows, k, item / colItems, item % colItems));
        }
    }

    static void Item(ushort[] xa, Bf16PackedWeights w, nint yp, int rows, Bf16Kernel kernel, int rowItem, int colItem)
    {
        const int cb = Bf16PackedWeights.ColumnBlock;
        int r0 = rowItem * RowsPerItem, r1 = Math.Min(rows, r0 + RowsPerItem);
        int b0 = colItem * BlocksPerItem, nb = Math.Min(BlocksPerItem, w.Blocks - b0);
        float* acc = stackalloc float[TileRows * JitDotKernels.AccStride];
        float* y = (float*)yp;
        fixed (ushort* pa = xa) fixed (ushort* packed = w.Packed)
        {
            ushort* pb = packed + (long)b0 * cb * w.InPadded;
            for (int r = r0; r < r1; r += TileRows)
            {
                int mr = Math.Min(TileRows, r1 - r);
                Tile(kernel, pa + (long)r * w.InPadded, w.InPadded, mr, pb, cb * w.InPadded, nb, acc);
                for (int i = 0; i < mr; i++)
                {
                    float* dst = y + (long)(r + i) * w.Out + b0 * cb;
                    float* ai = acc + i * JitDotKernels.AccStride;
                    int n = Math.Min(nb * cb, w.Out - b0 * cb), c = 0;
                    for (; c + 16 <= n; c += 16) Vector512.Store(Vector512.Load(dst + c) + Vector512.Load(ai + c), dst + c);
                    for (; c < n; c++) dst[c] += ai[c];
                }
            }
        }
    }

    /// <summary>s += a.odd·w.odd, then + a.even·w.even (vdpbf16ps's order), for one bf16 pair of an activation row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Step(Vector256<float> s, uint pair, Vector256<float> odd, Vector256<float> even)
    {
        s = Vector256.FusedMultiplyAdd(Vector256.Create(BitConverter.UInt32BitsToSingle(pair & 0xFFFF0000u)), odd, s);
        return Vector256.FusedMultiplyAdd(Vector256.Create(BitConverter.UInt32BitsToSingle(pair << 16)), even, s);
    }

    /// <summary>
    /// acc[i, 16·j + c] = Σ_k a[i, k]·b_j[k][c] in fp32 for i &lt; mr (≤ 6) rows of bf16 activations (stride lda = InPadded
    /// elements) and nb (≤ 4) packed blocks of stride blockStride elements; acc rows are <see cref="JitDotKernels.AccStride"/> apart.
    /// </summary>
    internal static void Tile(Bf16Kernel kernel, ushort* a, int lda, int mr, ushort* b, int blockStride, int nb, float* acc)
    {
        if (kernel == Bf16Kernel.Avx512Bf16)
        {
            JitDotKernels.Get(DotInstruction.Vdpbf16ps, mr, nb)(a, lda * 2, b, blockStride * 2, acc, lda / 2);
            return;
        }
        var high = Vector256.Create(0xFFFF0000u);
        // Rows past mr read row 0 again and are not stored (no branches in the loop).
        uint* p0 = (uint*)a, p1 = (uint*)(a + (mr > 1 ? lda : 0)), p2 = (uint*)(a + (mr > 2 ? 2 * lda : 0));
        uint* p3 = (uint*)(a + (mr > 3 ? 3 * lda : 0)), p4 = (uint*)(a + (mr > 4 ? 4 * lda : 0)), p5 = (uint*)(a + (mr > 5 ? 5 * lda : 0));
        // One block half (8 channels) at a time against all rows, so each weight load and widening serves six rows.
        for (int j = 0; j < nb; j++)
            for (int h = 0; h < 2; h++)
            {
                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default;
                uint* pw = (uint*)(b + (long)j * blockStride) + 8 * h;
                for (int k = 0; k < lda / 2; k++, pw += 16)
                {
                    var wv = Vector256.Load(pw);
                    var odd = (wv & high).AsSingle();
                    var even = (wv << 16).AsSingle();
                    s0 = Step(s0, p0[k], odd, even); s1 = Step(s1, p1[k], odd, even); s2 = Step(s2, p2[k], odd, even);
                    s3 = Step(s3, p3[k], odd, even); s4 = Step(s4, p4[k], odd, even); s5 = Step(s5, p5[k], odd, even);
                }
                float* dst = acc + j * 16 + 8 * h;
                s0.Store(dst);
                if (mr > 1) s1.Store(dst + JitDotKernels.AccStride);
                if (mr > 2) s2.Store(dst + 2 * JitDotKernels.AccStride);
                if (mr > 3) s3.Store(dst + 3 * JitDotKernels.AccStride);
                if (mr > 4) s4.Store(dst + 4 * JitDotKernels.AccStride);
                if (mr > 5) s5.Store(dst + 5 * JitDotKernels.AccStride);
            }
    }
}
