using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sharpformer.Kernels;

/// <summary>
/// Inverted-dropout masks regenerated from a seed: each entry is 0 with probability p (to 2⁻²⁴) and 1/(1−p) otherwise.
/// </summary>
/// <remarks>
/// Entry i of the mask of a seed is a pure function of (seed, i): SplitMix64 over fixed 16K-entry chunks, the state of the
/// k-th pair of chunk c being seed + c·0xD1B54A32D192ED03 + (k+1)·0x9E3779B97F4A7C15; one 64-bit output decides two
/// entries (bits 40-63 and 16-39). So a backward regenerates the mask instead of keeping it, any sub-range (one attention
/// head's block) can be generated on its own, and the mask is the same for every thread count.
/// </remarks>
public static class DropoutMask
{
    const int ChunkSize = 1 << 14;

    /// <summary>The one draw from <paramref name="rng"/> that determines a mask.</summary>
    public static ulong Seed(Random rng) =>
        ((ulong)(uint)rng.Next() << 32) ^ (ulong)(uint)rng.Next() ^ ((ulong)(uint)rng.Next() << 16);

    /// <summary>Entries [<paramref name="start"/>, start + mask.Length) of the mask of <paramref name="seed"/>, on the calling thread.</summary>
    public static void FillRange(Span<float> mask, float p, ulong seed, long start)
    {
        float scale = p >= 1f ? 0f : 1f / (1f - p);
        ulong threshold = (ulong)Math.Round(p * 16777216.0);
        long i = start, end = start + mask.Length;
        while (i < end)
        {
            long chunk = i / ChunkSize, local = i - chunk * ChunkSize;
            long chunkEnd = Math.Min(end, (chunk + 1) * ChunkSize);
            ulong state = seed + (ulong)chunk * 0xD1B54A32D192ED03UL + (ulong)(local / 2) * 0x9E3779B97F4A7C15UL;
            if ((local & 1) != 0)
            {
                // An odd start takes the second half of its pair's output.
                mask[(int)(i - start)] = ((Mix(state + 0x9E3779B97F4A7C15UL) >> 16) & 0xFFFFFF) >= threshold ? scale : 0f;
                state += 0x9E3779B97F4A7C15UL;
                i++;
            }
            if (Vector512.IsHardwareAccelerated)
            {
                // Eight pairs (sixteen entries) per step: the same states and mixing as the scalar loop, lane by lane.
                var vThreshold = Vector512.Create((uint)threshold);
                var vScale = Vector512.Create(scale);
                var steps = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8) * Golden;
                for (; i + 16 <= chunkEnd; i += 16)
                {
                    var z = Mix(Vector512.Create(state) + steps);
                    state += unchecked(8 * Golden);
                    // uint lanes 2j, 2j+1 = entries 2j (bits 40-63) and 2j+1 (bits 16-39) of pair j
                    var bits = ((z >> 40) | (((z >> 16) & Vector512.Create(0xFFFFFFUL)) << 32)).AsUInt32();
                    Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(bits, vThreshold).AsSingle(), vScale, Vector512<float>.Zero)
                        .StoreUnsafe(ref MemoryMarshal.GetReference(mask), (nuint)(i - start));
                }
            }
            for (; i < chunkEnd; i += 2)
            {
                state += 0x9E3779B97F4A7C15UL;
                ulong z = Mix(state);
                mask[(int)(i - start)] = (z >> 40) >= threshold ? scale : 0f;
                if (i + 1 < chunkEnd) mask[(int)(i + 1 - start)] = ((z >> 16) & 0xFFFFFF) >= threshold ? scale : 0f;
            }
        }
    }

    /// <summary>Entries [<paramref name="start"/>, start + mask.Length) of the mask of <paramref name="seed"/>, chunks generated in parallel.</summary>
    public static unsafe void Fill(Span<float> mask, float p, ulong seed, int threads = 0, long start = 0)
    {
        int n = mask.Length;
        fixed (float* pm = mask)
        {
            nint addr = (nint)pm;
            // entries depend only on (seed, index), so how chunks are shared among threads never changes the mask
            Parallelism.ForChunks(n, ChunkSize, threads, (_, lo, hi) => FillRange(new Span<float>((float*)addr + lo, hi - lo), p, seed, start + lo));
        }
    }

    const ulong Golden = 0x9E3779B97F4A7C15UL;

    static Vector512<ulong> Mix(Vector512<ulong> z)
    {
        z = (z ^ (z >> 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ (z >> 27)) * Vector512.Create(0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
