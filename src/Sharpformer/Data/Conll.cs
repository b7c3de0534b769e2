namespace Sharpformer.Data;

/// <summary>Tag scheme of a CoNLL file and what the reader returns.</summary>
public enum ConllTags
{
    /// <summary>Return tags exactly as in the file.</summary>
    AsIs,
    /// <summary>Convert IOB1 to IOB2 (<see cref="TagScheme.Iob1ToIob2"/>); a no-op for files already in IOB2.</summary>
    ToIob2,
}

/// <summary>Options for <c>Conll.Read</c>.</summary>
/// <param name="TagColumn">Column holding the tag (0-based; −1 = last column, the NER tag in CoNLL-2003).</param>
/// <param name="Tags">Whether to convert the tags to IOB2.</param>
/// <param name="ValidateTags">Reject tags that are not O or B-/I-/E-/S-TYPE (malformed line).</param>
/// <param name="Labels">
/// The tag set the data will be trained or scored with; a tag outside it (after any IOB2 conversion) is a malformed line
/// (<see cref="UnknownTagException"/> naming its file and line). Null: any well-formed tag is accepted.
/// </param>
public sealed record ConllOptions(int TagColumn = -1, ConllTags Tags = ConllTags.AsIs, bool ValidateTags = true, LabelSet? Labels = null)
{
    public static ConllOptions Default { get; } = new();
}

/// <summary>
/// CoNLL column files (CoNLL-2003: <c>WORD POS CHUNK NER</c>, one token per line, single spaces).
/// A blank line ends a sentence; a <c>-DOCSTART-</c> line marks a document boundary and is dropped, as Hugging Face does.
/// </summary>
public static class Conll
{
    /// <summary>Reads every sentence; every token line must have as many columns as the first one.</summary>
    public static ReadResult<TokenExample> Read(string path, ConllOptions? conll = null, ReadOptions? options = null)
    {
        using var reader = CsvReader.OpenText(path);
        return Read(reader, path, conll, options);
    }

    /// <summary>Reads CoNLL text from a reader; <paramref name="fileName"/> is used in error messages.</summary>
    public static ReadResult<TokenExample> Read(TextReader reader, string fileName, ConllOptions? conll = null, ReadOptions? options = null)
    {
        conll ??= ConllOptions.Default;
        var collect = new ReadCollector<TokenExample>(fileName, options);
        var words = new List<string>();
        var tags = new List<string>();
        var tagLines = new List<int>();
        int columns = 0, lineNo = 0;
        bool sentenceBad = false;
        int sentenceStart = 0;
        string? line;

        void Flush()
        {
            if (words.Count > 0 && !sentenceBad)
            {
                var finalTags = conll.Tags == ConllTags.ToIob2 ? TagScheme.Iob1ToIob2(tags) : tags.ToArray();
                int unknown = conll.Labels is null ? -1 : Array.FindIndex(finalTags, t => !conll.Labels.Contains(t));
                if (unknown < 0) collect.Add(new TokenExample(words.ToArray(), finalTags));
                else
                {
                    // Name the tag as written in the file; IOB1 conversion may have turned I-X into B-X.
                    collect.Malformed(new UnknownTagException(fileName, tagLines[unknown], tags[unknown], conll.Labels!,
                        finalTags[unknown] == tags[unknown] ? null : finalTags[unknown]));
                }
            }
            words.Clear();
            tags.Clear();
            tagLines.Clear();
            sentenceBad = false;
        }

        while ((line = ReadLine(reader, fileName, lineNo + 1)) is not null)
        {
            lineNo++;
            if (line.Length == 0 || IsWhiteSpace(line)) { Flush(); continue; }
            if (line.StartsWith("-DOCSTART-", StringComparison.Ordinal)) { Flush(); continue; }
            if (words.Count == 0 && !sentenceBad) sentenceStart = lineNo;
            // Columns are separated by runs of spaces; only the word and the tag are materialised.
            int count = CountColumns(line);
            if (columns == 0) columns = count;
            string? error = null;
            int tagCol = conll.TagColumn < 0 ? count + conll.TagColumn : conll.TagColumn;
            string tag = "";
            if (count != columns)
                error = $"expected {columns} space-separated columns (as on the first token line) but found {count}: '{Shorten(line)}'";
            else if (count < 2 || tagCol <= 0 || tagCol >= count)
                error = $"tag column {conll.TagColumn} does not exist in a line with {count} columns (the word is column 0)";
            else if (conll.ValidateTags && !TagScheme.IsValidTag(tag = Intern(Column(line, tagCol))))
                error = $"'{tag}' is not a chunk tag (expected O or B-/I-/E-/S-TYPE)";
            if (error is not null)
            {
                // Skipping drops the whole sentence: a sentence with a hole would have wrong context.
                collect.Malformed(new DataFormatException(fileName, lineNo, error + $" (sentence starting on line {sentenceStart})"));
                sentenceBad = true;
                continue;
            }
            if (!conll.ValidateTags) tag = Intern(Column(line, tagCol));
            words.Add(Column(line, 0).ToString());
            tags.Add(tag);
            tagLines.Add(lineNo);
        }
        Flush();
        return collect.Result(conll.Labels);
    }

    static int CountColumns(string line)
    {
        int n = 0;
        bool inside = false;
        foreach (var c in line)
        {
            if (c == ' ') inside = false;
            else if (!inside) { inside = true; n++; }
        }
        return n;
    }

    static ReadOnlySpan<char> Column(string line, int index)
    {
        int n = -1, start = 0;
        bool inside = false;
        for (int i = 0; i < line.Length; i++)
        {
            if (line[i] == ' ')
            {
                if (inside && n == index) return line.AsSpan(start, i - start);
                inside = false;
            }
            else if (!inside) { inside = true; n++; start = i; }
        }
        return inside && n == index ? line.AsSpan(start) : [];
    }

    // Tags repeat endlessly; share one string per distinct tag.
    [ThreadStatic] static Dictionary<string, string>? _tags;

    static string Intern(ReadOnlySpan<char> tag)
    {
        var map = _tags ??= new Dictionary<string, string>(StringComparer.Ordinal);
        var lookup = map.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(tag, out var s)) return s;
        if (map.Count > 10_000) map.Clear(); // not a tag column after all; don't grow without bound
        s = tag.ToString();
        map[s] = s;
        return s;
    }

    static bool IsWhiteSpace(string s)
    {
        foreach (var c in s) if (!char.IsWhiteSpace(c)) return false;
        return true;
    }

    internal static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";

    internal static string? ReadLine(TextReader reader, string fileName, int lineNo)
    {
        try { return reader.ReadLine(); }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new DataFormatException(fileName, lineNo, $"invalid UTF-8 ({e.Message}); re-save the file as UTF-8.");
        }
    }
}
