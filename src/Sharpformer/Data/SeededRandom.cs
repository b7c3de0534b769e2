namespace Sharpformer.Data;

/// <summary>
/// Small deterministic generator used for every shuffle and split in Sharpformer.Data, so results depend only on
/// the seed (not on the .NET version, unlike <see cref="System.Random"/>'s unspecified algorithm).
/// </summary>
/// <remarks>
/// SplitMix64 (Steele, Lea &amp; Flood 2014; Vigna's constants): state += 0x9E3779B97F4A7C15, then
/// z = (z ^ z≫30)·0xBF58476D1CE4E5B9, z = (z ^ z≫27)·0x94D049BB133111EB, z ^ z≫31.
/// Bounded integers use Lemire's multiply-shift with rejection (unbiased).
/// </remarks>
public sealed class SeededRandom(ulong seed)
{
    ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [0, <paramref name="n"/>).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Bound must be positive.");
        uint bound = (uint)n;
        ulong m = (ulong)(uint)(NextUInt64() >> 32) * bound;
        uint low = (uint)m;
        if (low < bound)
        {
            uint threshold = (uint)(-(int)bound) % bound;
            while (low < threshold)
            {
                m = (ulong)(uint)(NextUInt64() >> 32) * bound;
                low = (uint)m;
            }
        }
        return (int)(m >> 32);
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>In-place Fisher–Yates: for i = n−1 … 1, swap item i with item j, j uniform in [0, i].</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
