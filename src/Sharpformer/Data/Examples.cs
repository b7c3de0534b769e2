namespace Sharpformer.Data;

/// <summary>A text with a class id (0-based).</summary>
public sealed record TextExample(string Text, int Label);

/// <summary>A sentence as words with one tag per word (e.g. CoNLL NER tags).</summary>
public sealed record TokenExample(IReadOnlyList<string> Words, IReadOnlyList<string> Tags);
