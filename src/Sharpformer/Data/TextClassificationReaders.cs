using System.Globalization;
using System.Text.Json;

namespace Sharpformer.Data;

/// <summary>A column given by header name or by 0-based index; converts implicitly from string and int.</summary>
public readonly record struct Column
{
    public string? Name { get; }
    public int Index { get; }

    Column(string? name, int index) { Name = name; Index = index; }

    public static implicit operator Column(string name) => new(name ?? throw new ArgumentNullException(nameof(name)), -1);
    public static implicit operator Column(int index) => index >= 0 ? new(null, index) : throw new ArgumentOutOfRangeException(nameof(index), "Column index must be >= 0.");

    public override string ToString() => Name is null ? $"#{Index}" : $"'{Name}'";

    internal int Resolve(IReadOnlyList<string>? header, string file)
    {
        if (Name is null) return Index;
        if (header is null)
            throw new ArgumentException($"Column {this} is given by name but HasHeader is false; name columns by index or set HasHeader = true.");
        for (int i = 0; i < header.Count; i++) if (header[i] == Name) return i;
        throw new DataFormatException(file, 1, $"header has no column {this}; columns are [{string.Join(", ", header)}]");
    }
}

/// <summary>How label values are turned into ids.</summary>
public enum LabelValues
{
    /// <summary>Values are names looked up in <see cref="DelimitedTextOptions.Labels"/>, or, if that is null, in a
    /// label set built from the file (sorted names, like sklearn's LabelEncoder).</summary>
    Names,
    /// <summary>Values are integer ids (minus <see cref="DelimitedTextOptions.LabelOffset"/>).</summary>
    Ids,
}

/// <summary>Options for <c>DelimitedText.Read</c>.</summary>
public sealed record DelimitedTextOptions
{
    /// <summary>Text columns; several are joined with <see cref="TextJoiner"/> (e.g. title + " " + description).</summary>
    public required IReadOnlyList<Column> TextColumns { get; init; }
    public required Column LabelColumn { get; init; }
    public bool HasHeader { get; init; } = true;
    public char Delimiter { get; init; } = ',';
    public string TextJoiner { get; init; } = " ";
    public LabelValues LabelValues { get; init; } = LabelValues.Names;
    /// <summary>Known labels; with <see cref="LabelValues.Ids"/> it only bounds the ids and names the classes.</summary>
    public LabelSet? Labels { get; init; }
    /// <summary>Subtracted from integer labels (1 for files whose classes start at 1).</summary>
    public int LabelOffset { get; init; }
}

/// <summary>Generic delimited-text (CSV/TSV) reader for text classification.</summary>
public static class DelimitedText
{
    public static ReadResult<TextExample> Read(string path, DelimitedTextOptions columns, ReadOptions? options = null)
    {
        using var reader = CsvReader.OpenText(path);
        return Read(reader, path, columns, options);
    }

    public static ReadResult<TextExample> Read(TextReader reader, string fileName, DelimitedTextOptions columns, ReadOptions? options = null)
    {
        if (columns.TextColumns.Count == 0) throw new ArgumentException("TextColumns is empty; name at least one text column.");
        var rows = new List<(int Line, string Text, string Label)>();
        var collect = new ReadCollector<TextExample>(fileName, options);
        IReadOnlyList<string>? header = null;
        int[]? textIdx = null;
        int labelIdx = -1, width = 0;
        foreach (var row in CsvReader.Parse(reader, fileName, columns.Delimiter))
        {
            if (row.Error is not null)
            {
                if (columns.HasHeader && header is null) throw new DataFormatException(fileName, row.Line, "header: " + row.Error);
                collect.Malformed(row.Line, row.Error);
                continue;
            }
            if (columns.HasHeader && header is null) { header = row.Fields; width = header.Count; continue; }
            if (textIdx is null)
            {
                textIdx = columns.TextColumns.Select(c => c.Resolve(header, fileName)).ToArray();
                labelIdx = columns.LabelColumn.Resolve(header, fileName);
                if (width == 0) width = row.Fields.Count;
            }
            if (row.Fields.Count != width)
            {
                collect.Malformed(row.Line, $"expected {width} fields but found {row.Fields.Count}");
                continue;
            }
            int max = Math.Max(labelIdx, textIdx.Max());
            if (max >= row.Fields.Count)
            {
                collect.Malformed(row.Line, $"column #{max} does not exist in a row of {row.Fields.Count} fields");
                continue;
            }
            var text = textIdx.Length == 1 ? row.Fields[textIdx[0]] : string.Join(columns.TextJoiner, textIdx.Select(i => row.Fields[i]));
            rows.Add((row.Line, text, row.Fields[labelIdx]));
        }
        return Finish(rows, collect, columns.LabelValues, columns.Labels, columns.LabelOffset);
    }

    internal static ReadResult<TextExample> Finish(List<(int Line, string Text, string Label)> rows, ReadCollector<TextExample> collect,
        LabelValues mode, LabelSet? labels, int offset)
    {
        if (mode == LabelValues.Names)
        {
            labels ??= rows.Count > 0 ? LabelSet.FromValues(rows.Select(r => r.Label)) : null;
            foreach (var (line, text, label) in rows)
            {
                if (labels!.TryGetId(label, out int id)) collect.Add(new TextExample(text, id));
                else collect.Malformed(new UnknownLabelException(collect.File, line, label, labels));
            }
            return collect.Result(labels);
        }
        foreach (var (line, text, label) in rows)
        {
            if (!int.TryParse(label, NumberStyles.Integer, CultureInfo.InvariantCulture, out int raw))
            {
                collect.Malformed(line, $"label '{label}' is not an integer (LabelValues = Ids)");
                continue;
            }
            int id = raw - offset;
            if (id < 0 || (labels is not null && id >= labels.Count))
            {
                collect.Malformed(line, $"label {raw} gives id {id}, outside 0..{(labels is null ? "∞" : (labels.Count - 1).ToString(CultureInfo.InvariantCulture))}" +
                                        (offset != 0 ? $" (LabelOffset {offset})" : ""));
                continue;
            }
            collect.Add(new TextExample(text, id));
        }
        return collect.Result(labels);
    }
}

/// <summary>Options for <c>JsonLines.ReadText</c>: field names in each JSON object.</summary>
public sealed record JsonLinesTextOptions
{
    /// <summary>Text fields; several are joined with <see cref="TextJoiner"/>.</summary>
    public IReadOnlyList<string> TextFields { get; init; } = ["text"];
    public string LabelField { get; init; } = "label";
    public string TextJoiner { get; init; } = " ";
    /// <summary>Label names (string labels are looked up here; integer labels are bounded by its count). Null: string
    /// labels build a sorted label set from the file; integer labels are taken as ids.</summary>
    public LabelSet? Labels { get; init; }
}

/// <summary>Options for <c>JsonLines.ReadTokens</c>.</summary>
public sealed record JsonLinesTokenOptions
{
    public string WordsField { get; init; } = "tokens";
    public string TagsField { get; init; } = "ner_tags";
    /// <summary>Needed when tags are integer ids (turned into names through it); string tags are checked against it if given.</summary>
    public LabelSet? Labels { get; init; }
}

/// <summary>JSON-lines readers: one JSON object per line, blank lines ignored.</summary>
public static class JsonLines
{
    public static ReadResult<TextExample> ReadText(string path, JsonLinesTextOptions? fields = null, ReadOptions? options = null)
    {
        using var reader = CsvReader.OpenText(path);
        return ReadText(reader, path, fields, options);
    }

    public static ReadResult<TextExample> ReadText(TextReader reader, string fileName, JsonLinesTextOptions? fields = null, ReadOptions? options = null)
    {
        fields ??= new JsonLinesTextOptions();
        var collect = new ReadCollector<TextExample>(fileName, options);
        var named = new List<(int, string, string)>();
        var ids = new List<(int, string, string)>();
        foreach (var (lineNo, root, error) in Objects(reader, fileName))
        {
            if (error is not null) { collect.Malformed(lineNo, error); continue; }
            using var doc = root!;
            var obj = doc.RootElement;
            var parts = new List<string>();
            string? problem = null;
            foreach (var f in fields.TextFields)
            {
                if (!obj.TryGetProperty(f, out var v) || v.ValueKind != JsonValueKind.String) { problem = $"field '{f}' is missing or not a string"; break; }
                parts.Add(v.GetString()!);
            }
            if (problem is null && !obj.TryGetProperty(fields.LabelField, out _)) problem = $"field '{fields.LabelField}' is missing";
            if (problem is not null) { collect.Malformed(lineNo, problem); continue; }
            var label = obj.GetProperty(fields.LabelField);
            var text = string.Join(fields.TextJoiner, parts);
            if (label.ValueKind == JsonValueKind.String) named.Add((lineNo, text, label.GetString()!));
            else if (label.ValueKind == JsonValueKind.Number && label.TryGetInt32(out int id)) ids.Add((lineNo, text, id.ToString(CultureInfo.InvariantCulture)));
            else collect.Malformed(lineNo, $"field '{fields.LabelField}' must be a string name or an integer id, not {label.ValueKind}");
        }
        if (named.Count > 0 && ids.Count > 0)
            throw new DataFormatException(fileName, ids[0].Item1, $"labels mix names and integer ids (a name on line {named[0].Item1}); use one kind.");
        return named.Count > 0 || ids.Count == 0
            ? DelimitedText.Finish(named, collect, LabelValues.Names, fields.Labels, 0)
            : DelimitedText.Finish(ids, collect, LabelValues.Ids, fields.Labels, 0);
    }

    public static ReadResult<TokenExample> ReadTokens(string path, JsonLinesTokenOptions? fields = null, ReadOptions? options = null)
    {
        using var reader = CsvReader.OpenText(path);
        return ReadTokens(reader, path, fields, options);
    }

    public static ReadResult<TokenExample> ReadTokens(TextReader reader, string fileName, JsonLinesTokenOptions? fields = null, ReadOptions? options = null)
    {
        fields ??= new JsonLinesTokenOptions();
        var collect = new ReadCollector<TokenExample>(fileName, options);
        foreach (var (lineNo, root, error) in Objects(reader, fileName))
        {
            if (error is not null) { collect.Malformed(lineNo, error); continue; }
            using var doc = root!;
            var obj = doc.RootElement;
            if (!obj.TryGetProperty(fields.WordsField, out var w) || w.ValueKind != JsonValueKind.Array) { collect.Malformed(lineNo, $"field '{fields.WordsField}' is missing or not an array"); continue; }
            if (!obj.TryGetProperty(fields.TagsField, out var t) || t.ValueKind != JsonValueKind.Array) { collect.Malformed(lineNo, $"field '{fields.TagsField}' is missing or not an array"); continue; }
            var words = new List<string>();
            var tags = new List<string>();
            string? problem = null;
            foreach (var e in w.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) { problem = $"'{fields.WordsField}' holds a {e.ValueKind}, expected strings"; break; }
                words.Add(e.GetString()!);
            }
            foreach (var e in t.EnumerateArray())
            {
                if (problem is not null) break;
                if (e.ValueKind == JsonValueKind.String)
                {
                    var tag = e.GetString()!;
                    if (fields.Labels is not null && !fields.Labels.Contains(tag)) { collect.Malformed(new UnknownLabelException(fileName, lineNo, tag, fields.Labels)); problem = ""; break; }
                    tags.Add(tag);
                }
                else if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id))
                {
                    if (fields.Labels is null) problem = $"'{fields.TagsField}' holds integer ids; pass Labels to name them";
                    else if (id < 0 || id >= fields.Labels.Count) problem = $"tag id {id} is outside 0..{fields.Labels.Count - 1}";
                    else tags.Add(fields.Labels[id]);
                }
                else problem = $"'{fields.TagsField}' holds a {e.ValueKind}, expected strings or integer ids";
            }
            if (problem == "") continue;
            if (problem is null && words.Count != tags.Count) problem = $"{words.Count} words but {tags.Count} tags";
            if (problem is not null) { collect.Malformed(lineNo, problem); continue; }
            collect.Add(new TokenExample(words, tags));
        }
        return collect.Result(fields.Labels);
    }

    static IEnumerable<(int Line, JsonDocument? Doc, string? Error)> Objects(TextReader reader, string fileName)
    {
        int lineNo = 0;
        string? line;
        while ((line = Conll.ReadLine(reader, fileName, lineNo + 1)) is not null)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument? doc = null;
            string? error = null;
            try
            {
                doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) { error = $"expected a JSON object, found {doc.RootElement.ValueKind}"; doc.Dispose(); doc = null; }
            }
            catch (JsonException e) { error = "invalid JSON: " + e.Message; }
            yield return (lineNo, doc, error);
        }
    }
}
