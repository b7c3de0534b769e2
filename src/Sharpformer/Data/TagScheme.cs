namespace Sharpformer.Data;

/// <summary>Chunk tag schemes and conversions between them.</summary>
public static class TagScheme
{
    /// <summary>
    /// IOB1 → IOB2: an <c>I-X</c> that does not continue an entity of type X (it follows <c>O</c>, the sentence
    /// start, or a tag of another type) becomes <c>B-X</c>. <c>B-X</c> (used in IOB1 only between two adjacent
    /// entities of the same type) and <c>O</c> are kept.
    /// </summary>
    /// <remarks>Applying it to IOB2 input changes nothing, so it is safe to call on either.</remarks>
    public static string[] Iob1ToIob2(IReadOnlyList<string> tags)
    {
        var result = new string[tags.Count];
        string? prevType = null; // type of the entity the previous tag belongs to, null after O
        for (int i = 0; i < tags.Count; i++)
        {
            var tag = tags[i];
            var (prefix, type) = Split(tag);
            if (prefix == 'O') { result[i] = tag; prevType = null; continue; }
            if (prefix == 'I' && prevType != type) result[i] = "B-" + type;
            else result[i] = tag;
            prevType = type;
        }
        return result;
    }

    /// <summary>True for <c>O</c> or a tag <c>P-TYPE</c> with prefix B, I, E or S and a non-empty type.</summary>
    public static bool IsValidTag(string tag) =>
        tag == "O" || (tag.Length > 2 && tag[1] == '-' && tag[0] is 'B' or 'I' or 'E' or 'S');

    /// <summary>Splits <c>B-PER</c> into ('B', "PER"); <c>O</c> into ('O', "").</summary>
    public static (char Prefix, string Type) Split(string tag)
    {
        if (tag == "O") return ('O', "");
        if (!IsValidTag(tag))
            throw new FormatException($"'{tag}' is not a chunk tag (expected O or B-/I-/E-/S- followed by a type).");
        return (tag[0], tag[2..]);
    }
}
