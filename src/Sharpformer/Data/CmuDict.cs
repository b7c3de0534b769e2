using System.Text.Json;

namespace Sharpformer.Data;

/// <summary>One pronunciation: the lower-case word and its ARPAbet phonemes (stress digits removed unless kept on reading).</summary>
public sealed record G2PEntry(string Word, string[] Phonemes);

/// <summary>A word with every reference pronunciation it has in its split (scoring accepts any of them).</summary>
public sealed record G2PWord(string Word, IReadOnlyList<string[]> References);

/// <summary>The fixed train / dev / test split of ../shared/data/cmudict (SOURCE.md there).</summary>
public sealed record CmuDictSplits(IReadOnlyList<G2PEntry> Train, IReadOnlyList<G2PEntry> Dev, IReadOnlyList<G2PEntry> Test);

/// <summary>
/// Reader of the CMUdict G2P split: <c>word&lt;TAB&gt;PH1 PH2 …</c> per line, several lines for a word with several
/// pronunciations. Stress digits are stripped by default because the standard scoring (SOURCE.md) compares the
/// 39 stress-free phonemes.
/// </summary>
public static class CmuDict
{
    /// <summary>Reads train.tsv, dev.tsv and test.tsv of <paramref name="directory"/>.</summary>
    public static CmuDictSplits Load(string directory, bool keepStress = false)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"CMUdict folder '{directory}' does not exist (expected train.tsv, dev.tsv, test.tsv).");
        return new(Read(Path.Combine(directory, "train.tsv"), keepStress), Read(Path.Combine(directory, "dev.tsv"), keepStress), Read(Path.Combine(directory, "test.tsv"), keepStress));
    }

    /// <summary>Reads one split file; a malformed line raises <see cref="DataFormatException"/> naming file and line.</summary>
    public static IReadOnlyList<G2PEntry> Read(string path, bool keepStress = false)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CMUdict split '{path}' does not exist.", path);
        var entries = new List<G2PEntry>();
        int line = 0;
        foreach (var raw in File.ReadLines(path))
        {
            line++;
            if (raw.Length == 0) continue;
            int tab = raw.IndexOf('\t');
            if (tab <= 0) throw new DataFormatException(path, line, "expected 'word<TAB>PHONEMES'; there is no tab after a word.");
            var word = raw[..tab];
            var phonemes = raw[(tab + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (phonemes.Length == 0) throw new DataFormatException(path, line, $"word '{word}' has no phonemes.");
            foreach (var p in phonemes)
                if (!p.All(c => c is >= 'A' and <= 'Z' or >= '0' and <= '2'))
                    throw new DataFormatException(path, line, $"'{p}' is not an ARPAbet phoneme (upper-case letters and an optional stress digit 0-2).");
            entries.Add(new G2PEntry(word, keepStress ? phonemes : phonemes.Select(StripStress).ToArray()));
        }
        return entries;
    }

    /// <summary>The phoneme without its stress digit (AH0 → AH).</summary>
    public static string StripStress(string phoneme) => phoneme.TrimEnd('0', '1', '2');

    /// <summary>Groups pronunciations by word (first appearance order).</summary>
    public static IReadOnlyList<G2PWord> ByWord(IEnumerable<G2PEntry> entries) =>
        entries.GroupBy(e => e.Word, StringComparer.Ordinal).Select(g => new G2PWord(g.Key, g.Select(e => e.Phonemes).ToList())).ToList();
}

/// <summary>
/// The symbols of a G2P model: PAD 0, BOS 1, EOS 2, UNK 3, then the letters of the words, then the phonemes (one table,
/// because the encoder–decoder has one vocabulary size; letters and phonemes never share an id). Saved as vocab.json.
/// </summary>
public sealed class G2PVocabulary
{
    public const int Pad = 0, Bos = 1, Eos = 2, Unk = 3;
    public const string FileName = "vocab.json";
    static readonly string[] Specials = ["<pad>", "<s>", "</s>", "<unk>"];
    readonly Dictionary<string, int> _letters = new(StringComparer.Ordinal), _phonemes = new(StringComparer.Ordinal);
    readonly List<string> _symbols;

    public G2PVocabulary(IEnumerable<string> letters, IEnumerable<string> phonemes)
    {
        _symbols = [.. Specials];
        foreach (var l in letters.Distinct().Order(StringComparer.Ordinal)) { _letters[l] = _symbols.Count; _symbols.Add(l); }
        foreach (var p in phonemes.Distinct().Order(StringComparer.Ordinal)) { _phonemes[p] = _symbols.Count; _symbols.Add(p); }
    }

    /// <summary>Letters and phonemes seen in <paramref name="entries"/>.</summary>
    public static G2PVocabulary Build(IEnumerable<G2PEntry> entries)
    {
        var list = entries as IReadOnlyCollection<G2PEntry> ?? entries.ToList();
        return new(list.SelectMany(e => e.Word.Select(c => c.ToString())), list.SelectMany(e => e.Phonemes));
    }

    public int Count => _symbols.Count;
    public IReadOnlyList<string> Letters => [.. _letters.Keys];
    public IReadOnlyList<string> Phonemes => [.. _phonemes.Keys];

    /// <summary>Letter ids of a word (lower-cased; unseen letters → UNK).</summary>
    public int[] EncodeWord(string word) => word.ToLowerInvariant().Select(c => _letters.TryGetValue(c.ToString(), out var id) ? id : Unk).ToArray();

    /// <summary>BOS + phoneme ids + EOS (unseen phonemes → UNK).</summary>
    public int[] EncodePhonemes(IReadOnlyList<string> phonemes) =>
        [Bos, .. phonemes.Select(p => _phonemes.TryGetValue(p, out var id) ? id : Unk), Eos];

    /// <summary>Phonemes of generated ids, stopping at EOS; specials and letters are dropped.</summary>
    public string[] DecodePhonemes(IEnumerable<int> ids)
    {
        var result = new List<string>();
        foreach (var id in ids)
        {
            if (id == Eos) break;
            if (id >= 0 && id < _symbols.Count && _phonemes.ContainsKey(_symbols[id])) result.Add(_symbols[id]);
        }
        return [.. result];
    }

    public string Symbol(int id) => _symbols[id];

    public void Save(string directory) => Checkpoints.AtomicFile.WriteAllText(Path.Combine(directory, FileName),
        JsonSerializer.Serialize(new { letters = _letters.Keys, phonemes = _phonemes.Keys }) + "\n");

    public static G2PVocabulary Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"G2P model folder '{directory}' has no {FileName}.", path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        string[] Field(string key) => doc.RootElement.TryGetProperty(key, out var e) && e.ValueKind == JsonValueKind.Array
            ? e.EnumerateArray().Select(x => x.GetString() ?? throw new DataFormatException(path, 1, $"'{key}' holds a non-string.")).ToArray()
            : throw new DataFormatException(path, 1, $"missing array '{key}'.");
        return new G2PVocabulary(Field("letters"), Field("phonemes"));
    }
}
