using Sharpformer.Data;

namespace Sharpformer.Training.Workflows;

/// <summary>File formats a text-classification dataset can come in.</summary>
public enum TextFileFormat
{
    /// <summary>Decide from the file name and first line.</summary>
    Auto,
    /// <summary>AG News official CSV: no header, "class","title","description", class 1–4.</summary>
    AgNewsOfficial,
    /// <summary>AG News train subset: header label,text, label 0–3.</summary>
    AgNewsSubset,
    /// <summary>Emotion: one <c>text;label</c> per line.</summary>
    Emotion,
    /// <summary>CSV with a header; text and label columns by name.</summary>
    Csv,
    /// <summary>JSON lines with text and label fields.</summary>
    JsonLines,
}

/// <summary>Reads labelled texts for classification, recognising the format from the file when asked.</summary>
public static class TextClassificationFiles
{
    /// <summary>
    /// Detects the format: .jsonl/.json → JSON lines; AG News by its first lines; "text;label" lines → Emotion; other .csv → CSV.
    /// </summary>
    /// <remarks>
    /// A <c>label,text</c> header alone does not make a file AG News: many CSVs have it. The train subset is
    /// recognised by its exact layout (SOURCE.md): that header, then rows of an unquoted class id 0–3 and a quoted text.
    /// </remarks>
    public static TextFileFormat Detect(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Data file not found: '{path}'.", path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".jsonl" or ".json" or ".ndjson") return TextFileFormat.JsonLines;
        string first, second;
        using (var r = new StreamReader(path)) { first = r.ReadLine() ?? ""; second = r.ReadLine() ?? ""; }
        if (first.Trim() == "label,text")
            return System.Text.RegularExpressions.Regex.IsMatch(second, "^[0-3],\"") ? TextFileFormat.AgNewsSubset : TextFileFormat.Csv;
        if (System.Text.RegularExpressions.Regex.IsMatch(first, "^\"[1-4]\",\"")) return TextFileFormat.AgNewsOfficial;
        if (ext == ".csv") return TextFileFormat.Csv;
        if (first.Contains(';')) return TextFileFormat.Emotion;
        throw new DataFormatException(path, 1, "cannot tell the format from the file (not JSON lines, AG News, 'text;label' or .csv); pass --format.");
    }

    /// <summary>Reads the file. <paramref name="labels"/> fixes the label set (e.g. the training file's, for an evaluation file).</summary>
    public static ReadResult<TextExample> Read(string path, TextFileFormat format = TextFileFormat.Auto, LabelSet? labels = null,
        string textColumn = "text", string labelColumn = "label")
    {
        if (format == TextFileFormat.Auto) format = Detect(path);
        var result = format switch
        {
            TextFileFormat.AgNewsOfficial => AgNews.ReadTest(path),
            TextFileFormat.AgNewsSubset => AgNews.ReadTrainSubset(path),
            TextFileFormat.Emotion => Data.Emotion.Read(path, labels),
            TextFileFormat.JsonLines => Data.JsonLines.ReadText(path, new JsonLinesTextOptions { TextFields = [textColumn], LabelField = labelColumn, Labels = labels }),
            TextFileFormat.Csv => DelimitedText.Read(path, new DelimitedTextOptions { TextColumns = [textColumn], LabelColumn = labelColumn, Labels = labels }),
            _ => throw new NotSupportedException($"Format {format} is not supported."),
        };
        if (result.Count == 0) throw new DataFormatException(path, 1, "no examples were read.");
        if (labels != null && result.Labels != null && !result.Labels.Names.SequenceEqual(labels.Names))
            throw new DataFormatException(path, 1, $"its labels ({string.Join(", ", result.Labels.Names)}) differ from the training labels ({string.Join(", ", labels.Names)}).");
        return result;
    }
}
