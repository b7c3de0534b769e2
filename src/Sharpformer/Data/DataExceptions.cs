namespace Sharpformer.Data;

/// <summary>A data file holds a line that cannot be read: the message names the file, the 1-based line and what is wrong.</summary>
public class DataFormatException : SharpformerException
{
    public DataFormatException(string file, int line, string message)
        : base($"{file}:{line}: {message}")
    {
        File = file;
        Line = line;
        Reason = message;
    }

    /// <summary>File name (or the name given for an in-memory source).</summary>
    public string File { get; }

    /// <summary>1-based line number where the bad record starts.</summary>
    public int Line { get; }

    /// <summary>The message without the file:line prefix.</summary>
    public string Reason { get; }
}

/// <summary>A label value that is not in the <see cref="LabelSet"/> in use.</summary>
public sealed class UnknownLabelException : DataFormatException
{
    public UnknownLabelException(string file, int line, string value, LabelSet labels)
        : base(file, line, $"unknown label '{value}'; known labels are [{string.Join(", ", labels.Names)}]. " +
                           "Fix the line, pass a LabelSet that contains it, or set SkipMalformed = true to skip such lines.")
    {
        Value = value;
    }

    /// <summary>The label text that was not found.</summary>
    public string Value { get; }
}

/// <summary>A CoNLL tag that is not in the tag set the model is trained or scored with.</summary>
public sealed class UnknownTagException : DataFormatException
{
    /// <param name="file">File name.</param>
    /// <param name="line">1-based line of the token.</param>
    /// <param name="tag">The tag as written in the file.</param>
    /// <param name="labels">The tag set in use (listed in the message).</param>
    /// <param name="converted">The tag after IOB1 → IOB2 conversion, when it differs from the file's.</param>
    public UnknownTagException(string file, int line, string tag, LabelSet labels, string? converted = null)
        : base(file, line, $"unknown tag '{tag}'{(converted is null ? "" : $" ('{converted}' in IOB2)")} (known: {string.Join(", ", labels.Names)}). " +
                           "Fix the tag, or train with a label set that contains it.")
    {
        Tag = tag;
    }

    /// <summary>The tag as written in the file.</summary>
    public string Tag { get; }
}
