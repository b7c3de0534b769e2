using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sharpformer.Kernels;

/// <summary>Which int8 micro-kernel <see cref="Int8Gemm"/> runs. All give bit-identical int32 sums.</summary>
public enum Int8Kernel
{
    /// <summary>Scalar C#, any CPU.</summary>
    Portable,
    /// <summary>AVX2 vpmaddubsw + vpmaddwd. vpmaddubsw saturates a pair sum at ±32767 (255·127·2 would not fit), so
    /// each u8 activation is split into its low 7 bits and its top bit and the two halves are summed in int32 — exact.</summary>
    Avx2,
    /// <summary>AVX-VNNI vpdpbusd (u8 × s8 → s32, 256-bit), the only VNNI form .NET 10 exposes as an intrinsic.</summary>
    AvxVnni,
    /// <summary>512-bit AVX512_VNNI vpdpbusd in machine code emitted at run time (<see cref="JitDotKernels"/>): 6 rows × 64 channels per call.</summary>
    Avx512Vnni,
    /// <summary>AMX tdpbusd on 16-row tiles, emitted at run time (<see cref="AmxKernels"/>); needs In padded to a multiple of
    /// 64. Chosen only when asked for: it had not run on AMX hardware when written.</summary>
    Amx,
}

/// <summary>
/// A linear layer's weight [Out, In] quantized symmetrically per output channel to int8 (w ≈ scale[n]·q[n, k], q in
/// [−127, 127]) and packed for the micro-kernels: blocks of <see cref="ColumnBlock"/> output channels, each stored as
/// [InPadded/4][16][4] bytes so one 32-byte load holds 4 consecutive k of 8 channels (vpdpbusd's operand layout).
/// </summary>
public sealed class Int8PackedWeights
{
    /// <summary>Output channels per packed block (two 8-lane int32 vectors).</summary>
    public const int ColumnBlock = 16;

    internal readonly sbyte[] Packed;
    /// <summary>Σ_k q[n, k], for the activation zero-point correction.</summary>
    internal readonly int[] ColumnSums;

    Int8PackedWeights(int outFeatures, int inFeatures, float[] scales)
    {
        Out = outFeatures; In = inFeatures; InPadded = (inFeatures + 3) & ~3;
        Scales = scales;
        Packed = new sbyte[(long)Blocks * ColumnBlock * InPadded > Array.MaxLength
            ? throw new NotSupportedException($"An int8 weight of {outFeatures}×{inFeatures} exceeds .NET's array limit.")
            : Blocks * ColumnBlock * InPadded];
        ColumnSums = new int[outFeatures];
    }

    public int Out { get; }
    public int In { get; }
    /// <summary>In rounded up to a multiple of 4 (the padding holds zero weights).</summary>
    public int InPadded { get; }
    /// <summary>Per-output-channel scale [Out]: w[n, k] ≈ Scales[n]·q[n, k].</summary>
    public float[] Scales { get; }
    internal int Blocks => (Out + ColumnBlock - 1) / ColumnBlock;

    /// <summary>Quantizes an fp32 weight [Out, In]: scale = max|w[n, ·]| / 127, q = round-half-even(w / scale) (an all-zero row gets scale 0).</summary>
    public static Int8PackedWeights Quantize(ReadOnlySpan<float> weight, int outFeatures, int inFeatures)
    {
        Check(weight.Length, outFeatures, inFeatures);
        var q = new sbyte[outFeatures * inFeatures];
        var scales = new float[outFeatures];
        for (int n = 0; n < outFeatures; n++)
        {
            var row = weight.Slice(n * inFeatures, inFeatures);
            float maxAbs = 0;
            foreach (var v in row) maxAbs = MathF.Max(maxAbs, MathF.Abs(v));
            if (!float.IsFinite(maxAbs)) throw new ArgumentException($"Weight row {n} has a non-finite value; it cannot be quantized.", nameof(weight));
            float scale = maxAbs / 127f;
            scales[n] = scale;
            if (scale == 0) continue;
            for (int k = 0; k < inFeatures; k++) q[n * inFeatures + k] = (sbyte)Math.Clamp(MathF.Round(row[k] / scale), -127f, 127f);
        }
        return FromQuantized(q, scales, outFeatures, inFeatures);
    }

    /// <summary>Packs already-quantized weights q [Out, In] with their scales [Out] (as a quantized checkpoint stores them).</summary>
    public static Int8PackedWeights FromQuantized(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> scales, int outFeatures, int inFeatures)
    {
        Check(q.Length, outFeatures, inFeatures);
        if (scales.Length != outFeatures) throw new ArgumentException($"Expected {outFeatures} scales, got {scales.Length}.", nameof(scales));
        var p = new Int8PackedWeights(outFeatures, inFeatures, scales.ToArray());
        for (int n = 0; n < outFeatures; n++)
        {
            int block = n / ColumnBlock, lane = n % ColumnBlock, sum = 0;
            long baseIndex = (long)block * ColumnBlock * p.InPadded;
            for (int k = 0; k < inFeatures; k++)
            {
                sbyte v = q[n * inFeatures + k];
                p.Packed[baseIndex + ((long)(k / 4) * ColumnBlock + lane) * 4 + k % 4] = v;
                sum += v;
            }
            p.ColumnSums[n] = sum;
        }
        return p;
    }

    /// <summary>The quantized values back as [Out, In] (for writing a checkpoint).</summary>
    public sbyte[] Unpack()
    {
        var q = new sbyte[Out * In];
        for (int n = 0; n < Out; n++)
        {
            long baseIndex = (long)(n / ColumnBlock) * ColumnBlock * InPadded;
            for (int k = 0; k < In; k++) q[n * In + k] = Packed[baseIndex + ((long)(k / 4) * ColumnBlock + n % ColumnBlock) * 4 + k % 4];
        }
        return q;
    }

    /// <summary>scale[n]·q[n, k] as fp32 [Out, In]: the weights the int8 layer actually multiplies by.</summary>
    public float[] Dequantize()
    {
        var q = Unpack();
        var w = new float[q.Length];
        for (int i = 0; i < q.Length; i++) w[i] = Scales[i / In] * q[i];
        return w;
    }

    static void Check(int length, int outFeatures, int inFeatures)
    {
        if (outFeatures <= 0 || inFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), $"Weight shape [{outFeatures}, {inFeatures}] must be positive.");
        if (length != (long)outFeatures * inFeatures) throw new ArgumentException($"A weight [{outFeatures}, {inFeatures}] needs {(long)outFeatures * inFeatures} values, got {length}.");
    }
}

/// <summary>What <see cref="Int8Gemm.Linear(Int8Activations, Int8PackedWeights, ReadOnlySpan{float}, Span{float}, Int8Epilogue, int, Int8Kernel?)"/>
/// applies to each output after the bias, while it is still in registers.</summary>
public enum Int8Epilogue
{
    /// <summary>y = x·Wᵀ + b.</summary>
    None,
    /// <summary>y = GELU(x·Wᵀ + b), the exact (erf) form of <see cref="Activations.GeluErf"/>, same bits: BERT's feed-forward input
    /// layer, whose [rows, 3072] output otherwise takes one more pass through memory for the activation alone.</summary>
    GeluErf,
}

/// <summary>
/// Activations x [Rows, Cols] quantized per row to u8 (see <see cref="Int8Gemm"/>), rows <see cref="Stride"/> bytes apart
/// (Cols rounded up to 4, the padding zero). Quantize once, multiply by several weights: a BERT layer's query, key and value
/// all read the same hidden state. The buffers are rented from the shared pools; <see cref="Dispose"/> returns them.
/// </summary>
public sealed class Int8Activations : IDisposable
{
    internal byte[] Q;
    internal float[] Scales;
    internal int[] ZeroPoints;

    Int8Activations(int rows, int cols)
    {
        Rows = rows; Cols = cols; Stride = (cols + 3) & ~3;
        Q = ArrayPool<byte>.Shared.Rent(Math.Max(1, rows * Stride));
        Scales = ArrayPool<float>.Shared.Rent(Math.Max(1, rows));
        ZeroPoints = ArrayPool<int>.Shared.Rent(Math.Max(1, rows));
    }

    public int Rows { get; }
    public int Cols { get; }
    /// <summary>Bytes between rows: Cols rounded up to a multiple of 4, as <see cref="Int8PackedWeights.InPadded"/>.</summary>
    public int Stride { get; }

    /// <summary>Quantizes x [rows, cols] row by row (<see cref="Int8Gemm.QuantizeRows"/>), the rows split across up to
    /// <paramref name="threads"/> workers (≤ 0: every core): done serially it was a single-threaded phase before every GEMM.</summary>
    /// <exception cref="ArgumentException">x is too short, or a row holds a NaN or an infinity.</exception>
    public static unsafe Int8Activations Quantize(ReadOnlySpan<float> x, int rows, int cols, int threads = 0)
    {
        if (rows < 0 || cols <= 0) throw new ArgumentOutOfRangeException(nameof(cols), $"Activations [{rows}, {cols}]: rows must be ≥ 0 and cols > 0.");
        if (x.Length < (long)rows * cols) throw new ArgumentException($"x holds {x.Length} values, {rows}×{cols} needed.", nameof(x));
        var a = new Int8Activations(rows, cols);
        try
        {
            int stride = a.Stride, pad = stride - cols;
            // ≥ 16 K values per chunk: smaller pieces cost more to hand out than to quantize.
            int chunk = Math.Max(1, (1 << 14) / cols);
            fixed (float* px = x)
            {
                nint ax = (nint)px;
                Parallelism.ForChunks(rows, chunk, threads, (_, r0, r1) =>
                {
                    var xs = new ReadOnlySpan<float>((float*)ax + (long)r0 * cols, (r1 - r0) * cols);
                    var q = a.Q.AsSpan(r0 * stride, (r1 - r0) * stride);
                    if (pad > 0) for (int r = 0; r < r1 - r0; r++) q.Slice(r * stride + cols, pad).Clear();
                    Int8Gemm.QuantizeRows(xs, r1 - r0, cols, q, stride, a.Scales.AsSpan(r0, r1 - r0), a.ZeroPoints.AsSpan(r0, r1 - r0));
                });
            }
            return a;
        }
        catch (AggregateException e)
        {
            // Several chunks can each reject a non-finite row; report the first as the serial quantizer would.
            a.Dispose();
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
        catch { a.Dispose(); throw; }
    }

    public void Dispose()
    {
        if (Q.Length == 0) return;
        ArrayPool<byte>.Shared.Return(Q); ArrayPool<float>.Shared.Return(Scales); ArrayPool<int>.Shared.Return(ZeroPoints);
        Q = []; Scales = []; ZeroPoints = [];
    }
}

/// <summary>
/// Dynamically quantized linear layer: y[r, n] += sx[r]·sw[n]·(Σ_k xq[r, k]·q[n, k] − zp[r]·Σ_k q[n, k]), the activations
/// quantized per row at run time to asymmetric u8 (ONNX DynamicQuantizeLinear: range widened to include 0,
/// scale = (max − min)/255, zero point round(−min/scale)), the products accumulated in int32.
/// u8 × s8 is the operand pair vpdpbusd and vpmaddubsw take, which is why activations are unsigned and weights signed.
/// </summary>
public static unsafe class Int8Gemm
{
    /// <summary>Rows per micro-tile.</summary>
    const int TileRows = 4;
    /// <summary>Column blocks per parallel work item: 64 output channels.</summary>
    const int BlocksPerItem = 4;
    /// <summary>Rows per parallel work item.</summary>
    const int RowsPerItem = 32;
    /// <summary>Rows per parallel work item of the emitted kernel: four of its 6-row tiles.</summary>
    const int JitRowsPerItem = 4 * JitDotKernels.MaxRows;

    /// <summary>The fastest kernel this CPU runs.</summary>
    /// <remarks>The emitted 512-bit kernel first (unless <c>SHARPFORMER_JIT=0</c>), then the managed ones.</remarks>
    public static Int8Kernel Best { get; } = IsSupported(Int8Kernel.Avx512Vnni) ? Int8Kernel.Avx512Vnni
        : AvxVnni.IsSupported ? Int8Kernel.AvxVnni : Avx2.IsSupported ? Int8Kernel.Avx2 : Int8Kernel.Portable;

    /// <summary>True when <paramref name="kernel"/> can run on this CPU.</summary>
    public static bool IsSupported(Int8Kernel kernel) => kernel switch
    {
        Int8Kernel.Portable => true,
        Int8Kernel.Avx2 => Avx2.IsSupported,
        Int8Kernel.AvxVnni => AvxVnni.IsSupported,
        Int8Kernel.Avx512Vnni => JitDotKernels.IsAvailable(DotInstruction.Vpdpbusd),
        Int8Kernel.Amx => AmxKernels.IsAvailable,
        _ => false,
    };

    /// <summary>
    /// Quantizes each row of x [rows, cols] to u8 into q [rows, ldq] (columns past cols are left as they are; the
    /// matching weights are 0), with its scale and zero point.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeRows(ReadOnlySpan<float> x, int rows, int cols, Span<byte> q, int ldq, Span<float> scales, Span<int> zeroPoints)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            // A NaN anywhere makes min (and so scale) NaN, an infinity makes scale infinite: both rejected below.
            var (min, max) = RangeWithZero(row);
            float scale = (max - min) / 255f;
            if (scale == 0 || !float.IsFinite(scale))
            {
                if (!float.IsFinite(scale)) throw new ArgumentException($"Activation row {r} has a non-finite value; it cannot be quantized.", nameof(x));
                scales[r] = 0; zeroPoints[r] = 0; q.Slice(r * ldq, cols).Clear();
                continue;
            }
            int zp = (int)Math.Clamp(MathF.Round(-min / scale), 0f, 255f);
            var dst = q.Slice(r * ldq, cols);
            int k = 0;
            // 32 at a time: round-half-even(x / scale) + zp clamped to [0, 255], exactly as the scalar tail.
            var vs = Vector256.Create(scale);
            var vzp = Vector256.Create(zp);
            var hi = Vector256.Create(255);
            for (; k + 32 <= cols; k += 32)
            {
                var i0 = Quantize(row.Slice(k, 8), vs, vzp, hi); var i1 = Quantize(row.Slice(k + 8, 8), vs, vzp, hi);
                var i2 = Quantize(row.Slice(k + 16, 8), vs, vzp, hi); var i3 = Quantize(row.Slice(k + 24, 8), vs, vzp, hi);
                Vector256.Narrow(Vector256.Narrow(i0, i1).AsUInt16(), Vector256.Narrow(i2, i3).AsUInt16()).CopyTo(dst.Slice(k, 32));
            }
            for (; k < cols; k++) dst[k] = (byte)Math.Clamp((int)MathF.Round(row[k] / scale) + zp, 0, 255);
            scales[r] = scale; zeroPoints[r] = zp;
        }
    }

    /// <summary>(min(0, min x), max(0, max x)) in one pass (two TensorPrimitives passes cost as much as the quantization
    /// itself at BERT's 768 columns); NaN propagates as MathF.Min/Max do.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static (float Min, float Max) RangeWithZero(ReadOnlySpan<float> row)
    {
        var vmin = Vector512<float>.Zero; var vmax = Vector512<float>.Zero;
        int k = 0;
        for (; k + 16 <= row.Length; k += 16)
        {
            var v = Vector512.Create(row.Slice(k, 16));
            vmin = Vector512.Min(vmin, v); vmax = Vector512.Max(vmax, v);
        }
        float min = 0, max = 0;
        for (int i = 0; i < 16; i++) { min = MathF.Min(min, vmin[i]); max = MathF.Max(max, vmax[i]); }
        for (; k < row.Length; k++) { min = MathF.Min(min, row[k]); max = MathF.Max(max, row[k]); }
        return (min, max);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Quantize(ReadOnlySpan<float> x, Vector256<float> scale, Vector256<int> zp, Vector256<int> hi) =>
        Vector256.Clamp(Vector256.ConvertToInt32(Vector256.Round(Vector256.Create(x) / scale)) + zp, Vector256<int>.Zero, hi);

    /// <summary>
    /// y[rows, w.Out] += dequantized(quantize(x[rows, w.In]) · qᵀ): the caller pre-fills y with the bias (and residual),
    /// as <see cref="Gemm.Sgemm"/> with beta = 1 is used in the fp32 path.
    /// </summary>
    public static void LinearAccumulate(ReadOnlySpan<float> x, int rows, Int8PackedWeights w, Span<float> y, int threads = 0, Int8Kernel? kernel = null)
    {
        using var xq = Int8Activations.Quantize(x, rows, w.In, threads);
        LinearAccumulate(xq, w, y, threads, kernel);
    }

    /// <summary>y[x.Rows, w.Out] += dequantized(x · qᵀ) over activations quantized beforehand (<see cref="Int8Activations.Quantize"/>).</summary>
    public static void LinearAccumulate(Int8Activations x, Int8PackedWeights w, Span<float> y, int threads = 0, Int8Kernel? kernel = null)
    {
        CheckColumns(x, w);
        Run(x, w, default, y, accumulate: true, Int8Epilogue.None, threads, kernel);
    }

    /// <summary>
    /// y[rows, w.Out] = dequantized(quantize(x[rows, w.In]) · qᵀ) + bias[w.Out] (empty bias: none). y is only written, so the
    /// caller need not pre-fill it: for a layer whose output does not fit in L2 (BERT's 128×3072 feed-forward) the
    /// pre-fill pass and the read it forces cost a sizeable share of the int8 layer. Same bits as pre-filling y with the
    /// bias and calling <see cref="LinearAccumulate(ReadOnlySpan{float}, int, Int8PackedWeights, Span{float}, int, Int8Kernel?)"/>.
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int rows, Int8PackedWeights w, ReadOnlySpan<float> bias, Span<float> y, int threads = 0, Int8Kernel? kernel = null)
    {
        using var xq = Int8Activations.Quantize(x, rows, w.In, threads);
        Linear(xq, w, bias, y, Int8Epilogue.None, threads, kernel);
    }

    /// <summary>
    /// y[x.Rows, w.Out] = epilogue(dequantized(x · qᵀ) + bias) over activations quantized beforehand (<see cref="Int8Activations.Quantize"/>),
    /// so several layers reading the same input quantize it once. Same bits as <see cref="Linear(ReadOnlySpan{float}, int, Int8PackedWeights, ReadOnlySpan{float}, Span{float}, int, Int8Kernel?)"/>
    /// followed by the epilogue's activation.
    /// </summary>
    public static void Linear(Int8Activations x, Int8PackedWeights w, ReadOnlySpan<float> bias, Span<float> y, Int8Epilogue epilogue = Int8Epilogue.None,
        int threads = 0, Int8Kernel? kernel = null)
    {
        CheckColumns(x, w);
        if (!bias.IsEmpty && bias.Length != w.Out) throw new ArgumentException($"bias holds {bias.Length} values, {w.Out} (the weight's out-features) needed.", nameof(bias));
        Run(x, w, bias, y, accumulate: false, epilogue, threads, kernel);
    }

    static void CheckColumns(Int8Activations x, Int8PackedWeights w)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        if (x.Cols != w.In) throw new ArgumentException($"The activations have {x.Cols} columns; the weight's in-features are {w.In}.", nameof(x));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run(Int8Activations xq, Int8PackedWeights w, ReadOnlySpan<float> bias, Span<float> y, bool accumulate, Int8Epilogue epilogue, int threads, Int8Kernel? kernel)
    {
        var k = kernel ?? Best;
        int rows = xq.Rows;
        if (!IsSupported(k)) throw new PlatformNotSupportedException($"The {k} int8 kernel needs a CPU feature this machine lacks.");
        if (y.Length < (long)rows * w.Out) throw new ArgumentException($"y holds {y.Length} values, {rows}×{w.Out} needed.", nameof(y));
        if (k == Int8Kernel.Amx && w.InPadded % AmxKernels.StepBytes != 0)
            throw new ArgumentException($"The AMX kernel needs in-features padded to a multiple of {AmxKernels.StepBytes}, got {w.InPadded}.", nameof(w));
        if (rows == 0) return;
        bool jit = k is Int8Kernel.Avx512Vnni or Int8Kernel.Amx;
        int rowsPerItem = k == Int8Kernel.Amx ? 2 * AmxKernels.MaxRows : jit ? JitRowsPerItem : RowsPerItem;
        int rowItems = (rows + rowsPerItem - 1) / rowsPerItem, colItems = (w.Blocks + BlocksPerItem - 1) / BlocksPerItem;
        int workers = Parallelism.WorkersFor((long)rows * w.Out * w.In, 1 << 20, threads);
        fixed (float* py = y) fixed (float* pb = bias)
        {
            var args = new Args(xq, w, (nint)py, (nint)pb, accumulate, epilogue == Int8Epilogue.GeluErf, rows, k);
            if (jit) Parallelism.ForDynamic(rowItems * colItems, workers, item => ItemJit(args, item / colItems, item % colItems, rowsPerItem));
            else Parallelism.ForDynamic(rowItems * colItems, workers, item => Item(args, item / colItems, item % colItems));
        }
    }

    /// <summary>What output channel n's result (stored at y) is added onto: y itself (accumulate), else bias[n], else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Onto(Args a, float* y, int n) => a.Accumulate ? *y : a.Bias != 0 ? ((float*)a.Bias)[n] : 0f;

    /// <summary>Bias is a pinned float* (0: none); Accumulate adds onto y instead of overwriting it; Gelu applies GELU last.</summary>
    sealed record Args(Int8Activations X, Int8PackedWeights W, nint Y, nint Bias, bool Accumulate, bool Gelu, int Rows, Int8Kernel Kernel);

    static void Item(Args a, int rowItem, int colItem)
    {
        var w = a.W;
        int r0 = rowItem * RowsPerItem, r1 = Math.Min(a.Rows, r0 + RowsPerItem);
        int b0 = colItem * BlocksPerItem, b1 = Math.Min(w.Blocks, b0 + BlocksPerItem);
        int* acc = stackalloc int[TileRows * Int8PackedWeights.ColumnBlock];
        float* y = (float*)a.Y;
        fixed (byte* qa = a.X.Q) fixed (sbyte* packed = w.Packed)
        {
            for (int b = b0; b < b1; b++)
            {
                sbyte* pb = packed + (long)b * Int8PackedWeights.ColumnBlock * w.InPadded;
                int n0 = b * Int8PackedWeights.ColumnBlock, nc = Math.Min(Int8PackedWeights.ColumnBlock, w.Out - n0);
                for (int r = r0; r < r1; r += TileRows)
                {
                    int mr = Math.Min(TileRows, r1 - r);
                    Tile(a.Kernel, qa + (long)r * w.InPadded, w.InPadded, mr, pb, acc);
                    for (int i = 0; i < mr; i++)
                    {
                        float sx = a.X.Scales[r + i];
                        int zp = a.X.ZeroPoints[r + i];
                        float* dst = y + (long)(r + i) * w.Out + n0;
                        int* ai = acc + i * Int8PackedWeights.ColumnBlock;
                        for (int j = 0; j < nc; j++) dst[j] = Onto(a, dst + j, n0 + j) + sx * w.Scales[n0 + j] * (ai[j] - zp * w.ColumnSums[n0 + j]);
                        if (a.Gelu) Activations.GeluErf(new ReadOnlySpan<float>(dst, nc), new Span<float>(dst, nc), threads: 1);
                    }
                }
            }
        }
    }

    /// <summary>One work item on an emitted kernel: tiles of 6 (AVX-512) or 16 (AMX) rows × up to 4 blocks (64 channels), then the vectorised dequantization.</summary>
    static void ItemJit(Args a, int rowItem, int colItem, int rowsPerItem)
    {
        const int nbMax = JitDotKernels.MaxBlocks, cb = Int8PackedWeights.ColumnBlock;
        var w = a.W;
        bool amx = a.Kernel == Int8Kernel.Amx;
        int tileRows = amx ? AmxKernels.MaxRows : JitDotKernels.MaxRows;
        int r0 = rowItem * rowsPerItem, r1 = Math.Min(a.Rows, r0 + rowsPerItem);
        int b0 = colItem * nbMax, nb = Math.Min(nbMax, w.Blocks - b0);
        int* acc = stackalloc int[AmxKernels.MaxRows * JitDotKernels.AccStride];
        byte* cfg = stackalloc byte[64];
        float* y = (float*)a.Y, bias = (float*)a.Bias;
        float[] sxs = a.X.Scales;
        int[] zps = a.X.ZeroPoints;
        fixed (byte* qa = a.X.Q) fixed (sbyte* packed = w.Packed) fixed (int* colSums = w.ColumnSums) fixed (float* scales = w.Scales)
        {
            sbyte* pb = packed + (long)b0 * cb * w.InPadded;
            for (int r = r0; r < r1; r += tileRows)
            {
                int mr = Math.Min(tileRows, r1 - r);
                if (amx)
                {
                    AmxKernels.Configure(cfg, mr);
                    AmxKernels.Get(nb)(qa + (long)r * w.InPadded, w.InPadded, pb, cb * w.InPadded, acc, w.InPadded / AmxKernels.StepBytes, cfg);
                }
                else JitDotKernels.Get(DotInstruction.Vpdpbusd, mr, nb)(qa + (long)r * w.InPadded, w.InPadded, pb, cb * w.InPadded, acc, w.InPadded / 4);
                for (int i = 0; i < mr; i++)
                {
                    var vsx = Vector512.Create(sxs[r + i]);
                    var vzp = Vector512.Create(zps[r + i]);
                    float* dst = y + (long)(r + i) * w.Out;
                    int* ai = acc + i * JitDotKernels.AccStride;
                    for (int j = 0; j < nb; j++)
                    {
                        int n0 = (b0 + j) * cb;
                        if (n0 + cb <= w.Out)
                        {
                            var s = Vector512.ConvertToSingle(Vector512.Load(ai + j * cb) - vzp * Vector512.Load(colSums + n0));
                            var onto = a.Accumulate ? Vector512.Load(dst + n0) : bias != null ? Vector512.Load(bias + n0) : Vector512<float>.Zero;
                            var v = onto + s * (vsx * Vector512.Load(scales + n0));
                            Vector512.Store(a.Gelu ? Activations.GeluVector(v) : v, dst + n0);
                        }
                        else
                        {
                            int nc = w.Out - n0;
                            for (int c = 0; c < nc; c++) dst[n0 + c] = Onto(a, dst + n0 + c, n0 + c) + sxs[r + i] * scales[n0 + c] * (ai[j * cb + c] - zps[r + i] * colSums[n0 + c]);
                            if (a.Gelu) Activations.GeluErf(new ReadOnlySpan<float>(dst + n0, nc), new Span<float>(dst + n0, nc), threads: 1);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// acc[i, j] = Σ_k a[i, k]·b[j, k] for i &lt; mr (≤ 4) rows of u8 activations (row stride lda = InPadded) and one packed
    /// block of 16 channels. Rows past mr read row 0 again and are not stored.
    /// </summary>
    internal static void Tile(Int8Kernel kernel, byte* a, int lda, int mr, sbyte* b, int* acc)
    {
        byte* a1 = mr > 1 ? a + lda : a, a2 = mr > 2 ? a + 2 * lda : a, a3 = mr > 3 ? a + 3 * lda : a;
        switch (kernel)
        {
            case Int8Kernel.AvxVnni: TileVnni(a, a1, a2, a3, lda / 4, b, acc); break;
            case Int8Kernel.Avx2: TileAvx2(a, a1, a2, a3, lda / 4, b, acc); break;
            case Int8Kernel.Avx512Vnni:
                // The emitted kernel writes rows AccStride apart; LinearAccumulate calls it directly, this is for single-block callers.
                int* wide = stackalloc int[TileRows * JitDotKernels.AccStride];
                JitDotKernels.Get(DotInstruction.Vpdpbusd, mr, 1)(a, lda, b, 0, wide, lda / 4);
                for (int i = 0; i < mr; i++) new ReadOnlySpan<int>(wide + i * JitDotKernels.AccStride, 16).CopyTo(new Span<int>(acc + i * 16, 16));
                break;
            default: TilePortable(a, lda, mr, b, acc); break;
        }
    }

    static void TilePortable(byte* a, int lda, int mr, sbyte* b, int* acc)
    {
        const int nb = Int8PackedWeights.ColumnBlock;
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nb; j++)
            {
                int s = 0;
                for (int k4 = 0; k4 < lda / 4; k4++)
                {
                    sbyte* w = b + (k4 * nb + j) * 4;
                    byte* x = a + i * lda + k4 * 4;
                    s += x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
                }
                acc[i * nb + j] = s;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TileVnni(byte* a0, byte* a1, byte* a2, byte* a3, int kq, sbyte* b, int* acc)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int k = 0; k < kq; k++, b += 64)
        {
            var w0 = Avx.LoadVector256(b);
            var w1 = Avx.LoadVector256(b + 32);
            var x = Vector256.Create(*(int*)(a0 + 4 * k)).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, x, w0); c01 = AvxVnni.MultiplyWideningAndAdd(c01, x, w1);
            x = Vector256.Create(*(int*)(a1 + 4 * k)).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, x, w0); c11 = AvxVnni.MultiplyWideningAndAdd(c11, x, w1);
            x = Vector256.Create(*(int*)(a2 + 4 * k)).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, x, w0); c21 = AvxVnni.MultiplyWideningAndAdd(c21, x, w1);
            x = Vector256.Create(*(int*)(a3 + 4 * k)).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, x, w0); c31 = AvxVnni.MultiplyWideningAndAdd(c31, x, w1);
        }
        Store(acc, c00, c01, c10, c11, c20, c21, c30, c31);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TileAvx2(byte* a0, byte* a1, byte* a2, byte* a3, int kq, sbyte* b, int* acc)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        var low7 = Vector256.Create((byte)0x7F);
        var top = Vector256.Create((byte)0x80);
        var ones = Vector256.Create((short)1);
        for (int k = 0; k < kq; k++, b += 64)
        {
            var w0 = Avx.LoadVector256(b);
            var w1 = Avx.LoadVector256(b + 32);
            Step(Vector256.Create(*(int*)(a0 + 4 * k)).AsByte(), w0, w1, ref c00, ref c01, low7, top, ones);
            Step(Vector256.Create(*(int*)(a1 + 4 * k)).AsByte(), w0, w1, ref c10, ref c11, low7, top, ones);
            Step(Vector256.Create(*(int*)(a2 + 4 * k)).AsByte(), w0, w1, ref c20, ref c21, low7, top, ones);
            Step(Vector256.Create(*(int*)(a3 + 4 * k)).AsByte(), w0, w1, ref c30, ref c31, low7, top, ones);
        }
        Store(acc, c00, c01, c10, c11, c20, c21, c30, c31);
    }

    /// <summary>c += Σ over 4 k of x·w, exact: x = (x &amp; 0x7F) + (x &amp; 0x80), each part's pair sums fit in int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Step(Vector256<byte> x, Vector256<sbyte> w0, Vector256<sbyte> w1, ref Vector256<int> c0, ref Vector256<int> c1,
        Vector256<byte> low7, Vector256<byte> top, Vector256<short> ones)
    {
        var lo = x & low7;
        var hi = x & top;
        c0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, w0), ones) + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, w0), ones);
        c1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, w1), ones) + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, w1), ones);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(int* acc, Vector256<int> c00, Vector256<int> c01, Vector256<int> c10, Vector256<int> c11,
        Vector256<int> c20, Vector256<int> c21, Vector256<int> c30, Vector256<int> c31)
    {
        c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + 16); c11.Store(acc + 24);
        c20.Store(acc + 32); c21.Store(acc + 40); c30.Store(acc + 48); c31.Store(acc + 56);
    }
}
