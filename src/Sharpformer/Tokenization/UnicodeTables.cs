using System.Globalization;
using System.Text;

namespace Sharpformer.Tokenization;

/// <summary>
/// The character predicates of Hugging Face's BertNormalizer / BertPreTokenizer (tokenizers/src/normalizers/bert.rs,
/// pre_tokenizers/bert.rs), with table lookups for ASCII and .NET's Unicode data for the rest.
/// </summary>
internal static partial class UnicodeTables
{
    /// <summary>ASCII character classes for the fast path.</summary>
    internal const byte AsciiDrop = 1, AsciiSpace = 2, AsciiPunct = 4, AsciiUpper = 8;

    internal static readonly byte[] AsciiClass = BuildAsciiClass();

    static byte[] BuildAsciiClass()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++)
        {
            if (c == '\t' || c == '\n' || c == '\r' || c == ' ') t[c] = AsciiSpace;
            else if (c == '\v' || c == '\f') t[c] = AsciiDrop | AsciiSpace; // Cc (clean_text drops them) yet White_Space (the pre-tokenizer splits)
            else if (c < 32 || c == 127) t[c] = AsciiDrop;       // Cc (incl. NUL, VT, FF) is removed by clean_text
            else if (char.IsAsciiLetterUpper((char)c)) t[c] = AsciiUpper;
            else if (!char.IsAsciiLetterOrDigit((char)c)) t[c] = AsciiPunct; // Rust char::is_ascii_punctuation
        }
        return t;
    }

    /// <summary>Rust <c>char::is_whitespace</c> (Unicode White_Space) = .NET <see cref="Rune.IsWhiteSpace"/>.</summary>
    internal static bool IsWhitespace(int cp) => Rune.IsWhiteSpace(new Rune(cp));

    /// <summary>BertNormalizer's "control": Unicode C* (Cc, Cf, Cn, Co, Cs) except \t \n \r.</summary>
    internal static bool IsOther(int cp)
    {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
    }

    /// <summary>BertPreTokenizer's punctuation: ASCII punctuation/symbols or any Unicode P* character.</summary>
    internal static bool IsPunctuation(int cp)
    {
        if (cp < 128) return (AsciiClass[cp] & AsciiPunct) != 0;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    internal static bool IsNonSpacingMark(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp) == UnicodeCategory.NonSpacingMark;

    /// <summary>The CJK ideograph blocks BERT isolates (bert.rs <c>is_chinese_char</c>); kana and Hangul are not among them.</summary>
    internal static bool IsChinese(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
        || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF)
        || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);

    // A nested holder so the table is built after the generated partial's static fields exist (partial-file initializer order is unspecified).
    static class Decompositions
    {
        internal static readonly string[] Table = BuildDecompositionValues();
    }

    static string[] BuildDecompositionValues()
    {
        var parts = DecompositionValues.Split('\0');
        if (parts.Length != DecompositionKeys.Length)
            throw new InvalidOperationException("UnicodeTables: decomposition table is corrupt (key/value count mismatch).");
        return parts;
    }

    /// <summary>
    /// Canonical (NFD) decomposition of one code point, or null if it has none.
    /// Hangul syllables decompose algorithmically into 2–3 conjoining jamo (Unicode §3.12).
    /// </summary>
    internal static string? Decompose(int cp)
    {
        if (cp >= 0xAC00 && cp <= 0xD7A3)
        {
            int s = cp - 0xAC00, l = 0x1100 + s / 588, v = 0x1161 + s % 588 / 28, t = 0x11A7 + s % 28;
            return t == 0x11A7 ? new string([(char)l, (char)v]) : new string([(char)l, (char)v, (char)t]);
        }
        if (cp < 0xC0) return null;
        int i = Array.BinarySearch(DecompositionKeys, cp);
        return i >= 0 ? Decompositions.Table[i] : null;
    }

    /// <summary>
    /// Rust <c>char::to_lowercase</c>: the Unicode lowercase mapping including the one unconditional
    /// SpecialCasing expansion, U+0130 → "i̇" (.NET's invariant casing leaves U+0130 unchanged).
    /// Writes 1–2 code points to <paramref name="dst"/> and returns how many UTF-16 units were written.
    /// </summary>
    internal static int ToLower(int cp, Span<char> dst)
    {
        if (cp == 0x130) { dst[0] = 'i'; dst[1] = '\u0307'; return 2; }
        var lower = Rune.ToLowerInvariant(new Rune(cp));
        return lower.EncodeToUtf16(dst);
    }
}
