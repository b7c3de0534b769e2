namespace Sharpformer.Data;

/// <summary>
/// AG News (Zhang, Zhao &amp; LeCun 2015). Labels are Hugging Face's: id = class − 1,
/// 0 World, 1 Sports, 2 Business, 3 Sci/Tech, in both files.
/// </summary>
/// <remarks>
/// Text is kept exactly as in the files, including the original escapes (<c>#39;</c>, <c>\$</c>, literal
/// backslash + n), because Hugging Face's <c>ag_news</c> loader keeps them too.
/// </remarks>
public static class AgNews
{
    public static LabelSet Labels { get; } = new(["World", "Sports", "Business", "Sci/Tech"]);

    // What to do when a file is not in the layout this reader expects (the CLI's --format option).
    const string NotAgNews = "If this is not AG News but a CSV with a header row, read it with --format csv (DelimitedText).";

    /// <summary>
    /// Reads the official <c>test.csv</c>: no header, <c>"class","title","description"</c>, class 1–4.
    /// Text = title + " " + description (Hugging Face's <c>text</c> field), label = class − 1.
    /// </summary>
    public static ReadResult<TextExample> ReadTest(string path, ReadOptions? options = null)
    {
        var collect = new ReadCollector<TextExample>(path, options);
        using var reader = CsvReader.OpenText(path);
        bool firstRow = true;
        foreach (var row in CsvReader.Parse(reader, path))
        {
            bool isFirst = firstRow;
            firstRow = false;
            if (row.Error is not null) { collect.Malformed(row.Line, row.Error); continue; }
            // The official file has no header; some re-exports add the column names, which are safe to skip.
            if (isFirst && row.Fields.Count == 3 && row.Fields[0] is "class" or "Class Index" && !int.TryParse(row.Fields[1], out _)) continue;
            if (isFirst && !int.TryParse(row.Fields[0], out _))
                throw new DataFormatException(path, row.Line,
                    $"'{Conll.Shorten(string.Join(",", row.Fields))}' is a header row, but the official AG News test.csv has none " +
                    $"(\"class\",\"title\",\"description\" rows, class 1..4). {NotAgNews}");
            if (row.Fields.Count != 3)
            {
                collect.Malformed(row.Line, $"expected 3 fields (\"class\",\"title\",\"description\") but found {row.Fields.Count}");
                continue;
            }
            if (!int.TryParse(row.Fields[0], out int cls) || cls < 1 || cls > 4)
            {
                collect.Malformed(row.Line, $"class '{row.Fields[0]}' is not an integer 1..4");
                continue;
            }
            collect.Add(new TextExample(row.Fields[1] + " " + row.Fields[2], cls - 1));
        }
        return collect.Result(Labels);
    }

    /// <summary>
    /// Reads <c>train_subset.csv</c>: header <c>label,text</c>, label 0–3 (already class − 1), text already
    /// title + " " + description. It is a 14,551-row sample of the train split assembled from two public copies
    /// with test overlap and duplicates removed (see the data's SOURCE.md) — not the official train split.
    /// </summary>
    public static ReadResult<TextExample> ReadTrainSubset(string path, ReadOptions? options = null)
    {
        var collect = new ReadCollector<TextExample>(path, options);
        using var reader = CsvReader.OpenText(path);
        bool header = true;
        foreach (var row in CsvReader.Parse(reader, path))
        {
            if (header)
            {
                header = false;
                if (row.Error is not null || row.Fields.Count != 2 || row.Fields[0] != "label" || row.Fields[1] != "text")
                    throw new DataFormatException(path, row.Line, $"expected the AG News train subset's header 'label,text'. {NotAgNews}");
                continue;
            }
            if (row.Error is not null) { collect.Malformed(row.Line, row.Error); continue; }
            if (row.Fields.Count != 2)
            {
                collect.Malformed(row.Line, $"expected 2 fields (label,text) but found {row.Fields.Count}");
                continue;
            }
            if (!int.TryParse(row.Fields[0], out int label) || label < 0 || label > 3)
            {
                collect.Malformed(row.Line, $"label '{row.Fields[0]}' is not an AG News class id 0..3. {NotAgNews}");
                continue;
            }
            collect.Add(new TextExample(row.Fields[1], label));
        }
        return collect.Result(Labels);
    }
}
