using System.Text;

namespace Sharpformer.Data;

/// <summary>One CSV record: the 1-based line it starts on and its fields, or the reason it is malformed.</summary>
public sealed record CsvRow(int Line, IReadOnlyList<string> Fields, string? Error = null)
{
    public bool IsMalformed => Error is not null;
}

/// <summary>
/// RFC 4180 reader: fields separated by a delimiter, optionally enclosed in double quotes; inside quotes a
/// doubled quote is one quote and delimiters / line breaks are data. Records end at LF, CRLF or a lone CR.
/// </summary>
/// <remarks>
/// Strict where RFC 4180 is strict, so a broken file is reported instead of read wrongly:
/// a quote inside an unquoted field, text after a closing quote and an unterminated quoted field are errors
/// naming the line. Backslashes are ordinary characters (RFC 4180 has no escapes; AG News keeps its
/// <c>\n</c>, <c>\$</c> sequences literally and Hugging Face's loader does too).
/// An empty line is a record with one empty field, as in RFC 4180; readers decide what it means.
/// </remarks>
public static class CsvReader
{
    /// <summary>Largest file the readers load (they hold the whole text in memory as UTF-16).</summary>
    public const long MaxFileBytes = 1L << 30;

    /// <summary>Reads all rows of a file; the first malformed row throws <see cref="DataFormatException"/>.</summary>
    public static IReadOnlyList<CsvRow> ReadFile(string path, char delimiter = ',')
    {
        using var reader = OpenText(path);
        var rows = new List<CsvRow>();
        foreach (var row in Parse(reader, path, delimiter))
        {
            if (row.Error is not null) throw new DataFormatException(path, row.Line, row.Error);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>
    /// Reads a UTF-8 text file (BOM optional). Invalid UTF-8 is reported with the line it is on, which a buffered
    /// decoder cannot tell, so the bytes are validated first.
    /// </summary>
    internal static TextReader OpenText(string path)
    {
        if (!File.Exists(path))
            throw new SharpformerException($"Data file not found: '{path}'. Check the path (or the SHARPFORMER_DATA folder).");
        long size = new FileInfo(path).Length;
        if (size > MaxFileBytes)
            throw new SharpformerException($"Data file '{path}' is {size:N0} bytes; the in-memory readers take at most {MaxFileBytes:N0}. Split the file.");
        ReadOnlySpan<byte> bytes = File.ReadAllBytes(path);
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        var chars = new char[bytes.Length];
        var status = System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out int read, out int written, replaceInvalidSequences: false);
        if (status != System.Buffers.OperationStatus.Done)
        {
            int line = bytes[..read].Count((byte)'\n') + 1;
            throw new DataFormatException(path, line, $"invalid UTF-8 byte 0x{bytes[read]:X2} at byte offset {read}; re-save the file as UTF-8.");
        }
        return new StringReader(new string(chars, 0, written));
    }

    /// <summary>
    /// Parses rows lazily. Malformed rows are yielded with <see cref="CsvRow.Error"/> set (and parsing resumes at
    /// the next line) so the caller chooses between throwing and skipping.
    /// </summary>
    public static IEnumerable<CsvRow> Parse(TextReader reader, string fileName, char delimiter = ',')
    {
        if (delimiter is '"' or '\r' or '\n')
            throw new ArgumentException($"'{delimiter}' cannot be a CSV delimiter.", nameof(delimiter));
        int line = 1;
        var field = new StringBuilder();
        var fields = new List<string>();
        while (true)
        {
            int c = Read(reader, fileName, line);
            if (c < 0) yield break;
            int start = line;
            fields.Clear();
            string? error = null;
            // One record: a sequence of fields until an unquoted line break or end of input.
            while (true)
            {
                field.Clear();
                bool endRecord = false;
                if (c == '"')
                {
                    int quoteLine = line;
                    while (true)
                    {
                        c = Read(reader, fileName, line);
                        if (c < 0) { error = $"quoted field opened on line {quoteLine} is never closed (missing '\"')"; break; }
                        if (c == '"')
                        {
                            if (reader.Peek() == '"') { reader.Read(); field.Append('"'); continue; }
                            break;
                        }
                        if (c == '\n' || (c == '\r' && reader.Peek() != '\n')) line++;
                        field.Append((char)c);
                    }
                    if (error is not null) { yield return new CsvRow(start, [], error); yield break; }
                    c = Read(reader, fileName, line);
                    if (c >= 0 && c != delimiter && c != '\n' && c != '\r')
                        error = $"unexpected character '{(char)c}' after the closing quote of field {fields.Count + 1} (a quote inside a quoted field must be doubled)";
                }
                else
                {
                    while (c >= 0 && c != delimiter && c != '\n' && c != '\r')
                    {
                        if (c == '"') { error = $"quote inside unquoted field {fields.Count + 1} (quote the whole field and double the inner quote)"; break; }
                        field.Append((char)c);
                        c = Read(reader, fileName, line);
                    }
                }
                if (error is not null)
                {
                    SkipRestOfLine(reader, c);
                    line++;
                    yield return new CsvRow(start, [], error);
                    break;
                }
                fields.Add(field.ToString());
                if (c < 0) endRecord = true;
                else if (c == '\r') { if (reader.Peek() == '\n') reader.Read(); endRecord = true; line++; }
                else if (c == '\n') { endRecord = true; line++; }
                if (endRecord) { yield return new CsvRow(start, fields.ToArray()); break; }
                c = Read(reader, fileName, line); // first char of the next field (after the delimiter)
                if (c < 0 || c == '\n' || c == '\r')
                {
                    // trailing delimiter: one more empty field, then the record ends
                    fields.Add("");
                    if (c == '\r' && reader.Peek() == '\n') reader.Read();
                    if (c >= 0) line++;
                    yield return new CsvRow(start, fields.ToArray());
                    break;
                }
            }
        }
    }

    static int Read(TextReader reader, string fileName, int line)
    {
        try { return reader.Read(); }
        catch (DecoderFallbackException e)
        {
            throw new DataFormatException(fileName, line, $"invalid UTF-8 ({e.Message}); re-save the file as UTF-8.");
        }
    }

    static void SkipRestOfLine(TextReader reader, int c)
    {
        while (c >= 0 && c != '\n' && c != '\r') c = reader.Read();
        if (c == '\r' && reader.Peek() == '\n') reader.Read();
    }
}
