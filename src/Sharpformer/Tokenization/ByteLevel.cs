using System.Globalization;
using System.Text;

namespace Sharpformer.Tokenization;

/// <summary>
/// GPT-2's byte-level pre-tokenization, shared by <see cref="ByteLevelBpeTokenizer"/> and the BPE trainer:
/// the split regex (written out by hand, no regex engine) and the byte ↔ printable-character table.
/// </summary>
/// <remarks>
/// The split is GPT-2's <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>
/// (HF <c>ByteLevel(use_regex=true)</c>): at each position the first alternative that matches wins, each repeat is
/// greedy, and <c>\s+(?!\S)</c> backtracks one whitespace character when the run is followed by a non-space, so the
/// last space of a run joins the next word (<c>"a  b"</c> → <c>a</c>, <c>" "</c>, <c>" b"</c>). Every piece costs O(its
/// length): the only backtrack is that single character. \s is Unicode White_Space (= <see cref="char.IsWhiteSpace(char)"/>);
/// \p{L} and \p{N} are the letter and number categories of the whole code point (astral characters included).
/// </remarks>
internal static class ByteLevel
{
    /// <summary>GPT-2 <c>bytes_to_unicode</c>: printable Latin-1 bytes map to themselves, the other 68 to U+0100…U+0143 in byte order.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>The inverse of <see cref="ByteToChar"/>, indexed by char (length 0x144); −1 for chars that are no byte.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = (b is >= '!' and <= '~') || (b is >= 0xA1 and <= 0xAC) || (b is >= 0xAE and <= 0xFF) ? (char)b : (char)next++;
        return map;
    }

    static short[] BuildCharToByte()
    {
        var inv = new short[0x144];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    /// <summary>The byte-level form of <paramref name="text"/>: its UTF-8 bytes, each as its printable char (<c>" world"</c> → <c>"Ġworld"</c>).</summary>
    public static string Map(ReadOnlySpan<char> text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text.ToArray());
        return string.Create(bytes.Length, bytes, static (dst, src) => { for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]]; });
    }

    // Character classes of the split regex.
    internal const byte Letter = 1, Number = 2, Space = 3, Other = 4;

    static readonly byte[] AsciiClass = BuildAscii();

    static byte[] BuildAscii()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++)
            t[c] = char.IsAsciiLetter((char)c) ? Letter : char.IsAsciiDigit((char)c) ? Number : char.IsWhiteSpace((char)c) ? Space : Other;
        return t;
    }

    /// <summary>The class of the code point at <paramref name="i"/> and its length in UTF-16 units (2 for a surrogate pair).</summary>
    static byte Classify(ReadOnlySpan<char> s, int i, out int length)
    {
        char c = s[i];
        length = 1;
        if (c < 128) return AsciiClass[c];
        UnicodeCategory cat;
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            length = 2;
            cat = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, s[i + 1]));
        }
        else
        {
            if (char.IsWhiteSpace(c)) return Space;
            cat = CharUnicodeInfo.GetUnicodeCategory(c);
        }
        return cat switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
            _ => Other,
        };
    }

    /// <summary>
    /// The end (exclusive) of the split piece that starts at <paramref name="i"/> (&lt; <c>s.Length</c>); adds the
    /// characters examined to <paramref name="work"/> (at most the piece length + 2).
    /// </summary>
    public static int NextPiece(ReadOnlySpan<char> s, int i, ref long work)
    {
        int n = s.Length;
        char c = s[i];
        if (c == '\'' && i + 1 < n)
        {
            // 's 't 're 've 'm 'll 'd — lowercase only, as GPT-2's regex.
            char d = s[i + 1];
            if (d is 's' or 't' or 'm' or 'd') { work += 2; return i + 2; }
            if (i + 2 < n && ((d == 'r' && s[i + 2] == 'e') || (d == 'v' && s[i + 2] == 'e') || (d == 'l' && s[i + 2] == 'l'))) { work += 3; return i + 3; }
        }
        byte cls = Classify(s, i, out int len);
        int j = i + len;
        if (c == ' ' && j < n)
        {
            byte next = Classify(s, j, out int nlen);
            if (next != Space) { cls = next; j += nlen; } // " ?X+" with the optional space taken
        }
        if (cls != Space)
        {
            while (j < n)
            {
                byte k = Classify(s, j, out int klen);
                if (k != cls) break;
                j += klen;
            }
            work += j - i;
            return j;
        }
        while (j < n && char.IsWhiteSpace(s[j])) j++;
        work += j - i + 1;
        // \s+(?!\S): a run followed by a non-space gives back its last char (whitespace is always one UTF-16 unit);
        // a single space followed by a non-space falls through to \s+ and stays one piece.
        return j < n && j - i >= 2 ? j - 1 : j;
    }

    /// <summary>Appends the UTF-8 bytes of the code point at <paramref name="i"/> (lone surrogates as U+FFFD, as a UTF-8 encoder does).</summary>
    public static int EncodeUtf8(ReadOnlySpan<char> s, int i, Span<byte> dst, out int charLength)
    {
        charLength = 1;
        char c = s[i];
        if (c < 0x80) { dst[0] = (byte)c; return 1; }
        int cp;
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { cp = char.ConvertToUtf32(c, s[i + 1]); charLength = 2; }
        else cp = char.IsSurrogate(c) ? 0xFFFD : c;
        return new Rune(cp).EncodeToUtf8(dst);
    }
}
