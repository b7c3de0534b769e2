namespace Sharpformer.Tests;

/// <summary>
/// The data recipe the scikit-learn reference scripts share with these tests (sklearn_reference.py): SplitMix64 (Steele,
/// Lea &amp; Flood 2014; Vigna's constants), so both sides generate identical numbers. A test fixture, not the library's
/// generator (that is <see cref="TrainingRandom"/>).
/// </summary>
public sealed class SplitMix64(ulong seed)
{
    ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
