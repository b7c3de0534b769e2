namespace Sharpformer;

/// <summary>
/// The library's one seeded random number generator (weight initialisation, dropout, shuffles and data splits): the same
/// seed gives the same sequence on every machine and .NET version, and its whole state can be read and restored, so a
/// resumed run draws exactly the numbers an uninterrupted one would.
/// </summary>
/// <remarks>
/// xoshiro256** (Blackman &amp; Vigna) seeded through SplitMix64. <see cref="System.Random"/> cannot be
/// checkpointed and its seeded algorithm is unspecified, which is why code that draws numbers takes this type.
/// NextSingle = (x &gt;&gt; 40)·2⁻²⁴ ∈ [0, 1); NextDouble = (x &gt;&gt; 11)·2⁻⁵³; bounded integers by Lemire's rejection.
/// </remarks>
public sealed class TrainingRandom : Random
{
    ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the generator; the same seed always gives the same sequence on every machine.</summary>
    public TrainingRandom(long seed)
    {
        ulong x = unchecked((ulong)seed);
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    TrainingRandom(ulong[] state) => SetState(state);

    /// <summary>
    /// Where the batch that the next dropout masks are drawn for sits in a larger batch: the index of its first example there
    /// and its number of examples (0 = not set, masks numbered from 0). Not part of the generator's state.
    /// </summary>
    /// <remarks>
    /// A dropout mask is a function of (seed, entry index) (<see cref="Kernels.DropoutMask"/>); a batch-major tensor of n entries
    /// numbers its entries from <c>First · n / Count</c>, attention probabilities from <c>First · heads · queries · keys</c>. So
    /// example i's mask is the same whether it is computed in one process's whole batch or in a data-parallel rank's slice
    /// (the trainer sets this before every step), provided the per-example shapes agree.
    /// </remarks>
    public (long First, int Count) ExampleSlice { get; set; }

    /// <summary>The four 64-bit state words (for checkpoints).</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3];

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    public void SetState(IReadOnlyList<ulong> state)
    {
        if (state.Count != 4) throw new ArgumentException($"A TrainingRandom state has 4 words; got {state.Count}.", nameof(state));
        if (state[0] == 0 && state[1] == 0 && state[2] == 0 && state[3] == 0)
            throw new ArgumentException("An all-zero xoshiro state is invalid (the generator would only return zeros).", nameof(state));
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
    }

    /// <summary>A generator in the given state.</summary>
    public static TrainingRandom FromState(IReadOnlyList<ulong> state) => new([.. state]);

    /// <summary>A new generator with a seed drawn from this one (independent streams for model init, dropout, shuffling).</summary>
    public TrainingRandom Fork() => new(unchecked((long)NextUInt64()));

    static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next raw 64-bit output.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    public override float NextSingle() => (NextUInt64() >> 40) * (1f / (1 << 24));
    public override double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
    protected override double Sample() => NextDouble();
    public override int Next() { while (true) { int r = (int)(NextUInt64() >> 33); if (r != int.MaxValue) return r; } }
    public override int Next(int maxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxValue);
        return (int)NextBounded((ulong)maxValue);
    }
    public override int Next(int minValue, int maxValue)
    {
        if (minValue > maxValue) throw new ArgumentOutOfRangeException(nameof(minValue), $"minValue {minValue} > maxValue {maxValue}.");
        return (int)(minValue + (long)NextBounded((ulong)((long)maxValue - minValue)));
    }
    public override long NextInt64() { while (true) { long r = (long)(NextUInt64() >> 1); if (r != long.MaxValue) return r; } }
    public override long NextInt64(long maxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxValue);
        return (long)NextBounded((ulong)maxValue);
    }
    public override long NextInt64(long minValue, long maxValue)
    {
        if (minValue > maxValue) throw new ArgumentOutOfRangeException(nameof(minValue), $"minValue {minValue} > maxValue {maxValue}.");
        return unchecked(minValue + (long)NextBounded((ulong)(maxValue - minValue)));
    }
    public override void NextBytes(byte[] buffer) => NextBytes(buffer.AsSpan());
    public override void NextBytes(Span<byte> buffer)
    {
        for (int i = 0; i < buffer.Length; i++) buffer[i] = (byte)(NextUInt64() >> 56);
    }

    /// <summary>In-place Fisher–Yates from the end: for i = n−1 … 1, swap item i with item j = Next(i + 1) (the order the trainer and the data sets document; <see cref="Random.Shuffle{T}(Span{T})"/> walks the other way).</summary>
    public void FisherYates<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    // Lemire's unbiased bounded integers by rejection.
    ulong NextBounded(ulong bound)
    {
        if (bound <= 1) return 0;
        ulong threshold = (0 - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            ulong hi = Math.BigMul(r, bound, out ulong lo);
            if (lo >= threshold) return hi;
        }
    }
}
