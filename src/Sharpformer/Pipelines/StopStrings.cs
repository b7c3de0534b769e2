using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>
/// Stop strings for <see cref="Generator"/>: generation of a row ends once its decoded new text contains one of them
/// (the token completing it is kept, as transformers' <c>StopStringCriteria</c>). Lives in the pipelines layer because it needs both the tokenizer (decoding) and the generator.
/// </summary>
public static class StopStrings
{
    /// <summary>A criterion for prompts of <paramref name="promptLength"/> tokens (padding included) decoded with <paramref name="tokenizer"/>.</summary>
    public static StoppingCriterion For(ITokenizer tokenizer, IReadOnlyList<string> stops, int promptLength)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (stops.Any(string.IsNullOrEmpty)) throw new ArgumentException("Stop strings must not be empty.", nameof(stops));
        var list = stops.ToArray();
        return (_, tokens) =>
        {
            if (list.Length == 0 || tokens.Count <= promptLength) return false;
            var text = tokenizer.Decode(tokens.Skip(promptLength), skipSpecialTokens: false, cleanUpTokenizationSpaces: false);
            return list.Any(s => text.Contains(s, StringComparison.Ordinal));
        };
    }
}
