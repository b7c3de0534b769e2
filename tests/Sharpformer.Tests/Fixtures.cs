using System.Text.Json;

namespace Sharpformer.Tests;

/// <summary>Cached access to the fixtures' expected.json documents.</summary>
public static class Fixtures
{
    static readonly Dictionary<string, JsonDocument> Cache = new();

    public static JsonElement Expected(string dir)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(dir, out var doc))
            {
                doc = JsonDocument.Parse(File.ReadAllBytes(SharedData.Fixture(dir, "expected.json")));
                Cache[dir] = doc;
            }
            return doc.RootElement;
        }
    }

    public static JsonElement Case(string dir, string name) =>
        Expected(dir).GetProperty("cases").EnumerateArray().First(c => c.GetProperty("name").GetString() == name);

    /// <summary>Converts a Python code-point offset into a .NET UTF-16 index of <paramref name="text"/>.</summary>
    public static int Utf16Index(string text, int codePoint)
    {
        int cp = 0, i = 0;
        while (cp < codePoint && i < text.Length)
        {
            i += char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            cp++;
        }
        if (cp != codePoint) throw new ArgumentOutOfRangeException(nameof(codePoint), $"code-point offset {codePoint} is beyond the text.");
        return i;
    }
}
