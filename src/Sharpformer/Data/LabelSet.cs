namespace Sharpformer.Data;

/// <summary>Order used when a <see cref="LabelSet"/> is built from the values seen in data.</summary>
public enum LabelOrder
{
    /// <summary>Ordinal (byte-wise) sort of the names, as scikit-learn's LabelEncoder does.</summary>
    Sorted,
    /// <summary>The order in which values first appear.</summary>
    FirstSeen,
}

/// <summary>An ordered vocabulary of class / tag names: id ↔ name, the id2label / label2id of a HF config.</summary>
public sealed class LabelSet
{
    readonly string[] _names;
    readonly Dictionary<string, int> _ids;

    public LabelSet(IEnumerable<string> names)
    {
        _names = names.ToArray();
        if (_names.Length == 0) throw new ArgumentException("A LabelSet needs at least one label.", nameof(names));
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _names.Length; i++)
        {
            if (_names[i] is null) throw new ArgumentException($"Label {i} is null.", nameof(names));
            if (!_ids.TryAdd(_names[i], i))
                throw new ArgumentException($"Label '{_names[i]}' appears twice (ids {_ids[_names[i]]} and {i}); label names must be unique.", nameof(names));
        }
    }

    /// <summary>Builds a set from the distinct values in <paramref name="values"/>.</summary>
    public static LabelSet FromValues(IEnumerable<string> values, LabelOrder order = LabelOrder.Sorted)
    {
        var distinct = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in values) if (seen.Add(v)) distinct.Add(v);
        if (order == LabelOrder.Sorted) distinct.Sort(StringComparer.Ordinal);
        return new LabelSet(distinct);
    }

    /// <summary>Hugging Face conll2003 <c>ner_tags</c> order: O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC.</summary>
    public static LabelSet Conll2003Ner { get; } = new(["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]);

    public int Count => _names.Length;
    public IReadOnlyList<string> Names => _names;

    public string this[int id] => Name(id);

    public string Name(int id)
    {
        if ((uint)id >= (uint)_names.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Label id {id} is outside 0..{_names.Length - 1} ({string.Join(", ", _names)}).");
        return _names[id];
    }

    public bool Contains(string name) => _ids.ContainsKey(name);
    public bool TryGetId(string name, out int id) => _ids.TryGetValue(name, out id);

    /// <summary>The id of <paramref name="name"/>; an unknown name throws and lists the known labels.</summary>
    public int Id(string name) => _ids.TryGetValue(name, out int id)
        ? id
        : throw new KeyNotFoundException($"Unknown label '{name}'; known labels are [{string.Join(", ", _names)}].");

    /// <summary>The id of <paramref name="name"/> read from <paramref name="file"/> at <paramref name="line"/>; unknown → <see cref="UnknownLabelException"/>.</summary>
    public int Id(string name, string file, int line) => _ids.TryGetValue(name, out int id)
        ? id
        : throw new UnknownLabelException(file, line, name, this);

    /// <summary>
    /// For a <c>B-X</c> label, the id of <c>I-X</c>; any other label maps to itself. Used when a word's label is
    /// copied onto its later word pieces (an entity continues, it does not begin again).
    /// </summary>
    public int InsideId(int id)
    {
        var name = Name(id);
        if (!name.StartsWith("B-", StringComparison.Ordinal)) return id;
        var inside = string.Concat("I-", name.AsSpan(2));
        return _ids.TryGetValue(inside, out int insideId)
            ? insideId
            : throw new KeyNotFoundException($"Label '{name}' has no matching '{inside}' in the label set [{string.Join(", ", _names)}]; add it, or label only first pieces.");
    }

    /// <summary>id2label as in a Hugging Face config.json.</summary>
    public IReadOnlyDictionary<int, string> IdToLabel() => _names.Select((n, i) => (n, i)).ToDictionary(p => p.i, p => p.n);

    /// <summary>label2id as in a Hugging Face config.json.</summary>
    public IReadOnlyDictionary<string, int> LabelToId() => new Dictionary<string, int>(_ids, StringComparer.Ordinal);

    public override string ToString() => $"LabelSet[{Count}]({string.Join(", ", _names)})";
}
