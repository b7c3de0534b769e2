namespace Sharpformer.Data;

/// <summary>
/// dair-ai "emotion" (CARER, Saravia et al. 2018): one example per line, <c>text;label</c> with the label as a name.
/// </summary>
public static class Emotion
{
    /// <summary>Hugging Face's label order: sadness, joy, love, anger, fear, surprise (ids 0..5).</summary>
    public static LabelSet Labels { get; } = new(["sadness", "joy", "love", "anger", "fear", "surprise"]);

    /// <summary>
    /// Reads <c>text;label</c> lines (split at the last <c>;</c>). Labels map through <paramref name="labels"/>
    /// (default: <see cref="Labels"/>); an unknown name throws <see cref="UnknownLabelException"/> with file and line.
    /// </summary>
    public static ReadResult<TextExample> Read(string path, LabelSet? labels = null, ReadOptions? options = null)
    {
        using var reader = CsvReader.OpenText(path);
        return Read(reader, path, labels, options);
    }

    public static ReadResult<TextExample> Read(TextReader reader, string fileName, LabelSet? labels = null, ReadOptions? options = null)
    {
        labels ??= Labels;
        var collect = new ReadCollector<TextExample>(fileName, options);
        int lineNo = 0;
        string? line;
        while ((line = Conll.ReadLine(reader, fileName, lineNo + 1)) is not null)
        {
            lineNo++;
            int semi = line.LastIndexOf(';');
            if (semi < 0) { collect.Malformed(lineNo, $"no ';' separating text and label: '{Conll.Shorten(line)}'"); continue; }
            var text = line[..semi];
            var name = line[(semi + 1)..];
            if (text.Length == 0) { collect.Malformed(lineNo, "empty text before ';'"); continue; }
            if (!labels.TryGetId(name, out int id)) { collect.Malformed(new UnknownLabelException(fileName, lineNo, name, labels)); continue; }
            collect.Add(new TextExample(text, id));
        }
        return collect.Result(labels);
    }
}
