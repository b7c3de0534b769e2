using Sharpformer.Models;
using Sharpformer.Tokenization;

namespace Sharpformer.Pipelines;

/// <summary>Why a generated text ended (OpenAI's <c>finish_reason</c>).</summary>
public enum FinishReason
{
    /// <summary>The token limit (max new tokens, or the model's context) was reached.</summary>
    Length,
    /// <summary>The model chose an EOS token, or the text reached a stop string.</summary>
    Stop,
}

/// <summary>
/// One streamed step: the token chosen and the text it releases ("" while a character or a possible stop string is still open).
/// A closing piece without a token (<c>Id</c> null) carries text released only at the end: held-back text that did not become a
/// stop string, or an incomplete character (as U+FFFD).
/// </summary>
public readonly record struct GeneratedPiece(int? Id, string Text);

/// <summary>A finished generation: the new text (cut before a stop string), the new token ids, the prompt's token count and why it ended.</summary>
public sealed record TextGeneration(string Text, IReadOnlyList<int> Tokens, int PromptTokens, FinishReason FinishReason);

/// <summary>
/// Text in, text out over a causal LM and its byte-level BPE tokenizer: encode the prompt, run <see cref="Generator"/> (greedy or
/// sampling), decode incrementally. Stop strings end generation at the token completing one (<see cref="StopStrings"/>) and, as
/// OpenAI's <c>stop</c>, the returned text ends before it; while streaming, text that could still become a stop string is held
/// back, so the pieces always concatenate to the final text. Not thread-safe (one model); callers serialize.
/// </summary>
public sealed class TextGenerationPipeline
{
    public TextGenerationPipeline(ByteLevelBpeTokenizer tokenizer, ICausalLM model, GenerationConfig defaults)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Defaults = defaults ?? throw new ArgumentNullException(nameof(defaults));
    }

    /// <summary>Loads a GPT-2 directory or Hub id: the model, its tokenizer and generation_config.json (the defaults).</summary>
    public static TextGenerationPipeline FromPretrained(string dirOrModelId)
    {
        string dir = AutoModel.ResolveDirectory(dirOrModelId);
        return new TextGenerationPipeline(ByteLevelBpeTokenizer.FromDirectory(dir), AutoModel.FromPretrainedCausalLM(dir), GenerationConfig.Load(dir));
    }

    public ByteLevelBpeTokenizer Tokenizer { get; }
    public ICausalLM Model { get; }
    /// <summary>The model's generation_config.json (bos / eos / pad ids and default search settings).</summary>
    public GenerationConfig Defaults { get; }

    /// <summary>The prompt's token ids; an empty prompt becomes the BOS token (GPT-2 needs at least one token to condition on).</summary>
    public int[] EncodePrompt(string prompt)
    {
        var ids = Tokenizer.Encode(prompt).Ids.ToArray();
        if (ids.Length == 0 && (Defaults.BosTokenId ?? Tokenizer.BosTokenId) is int bos) ids = [bos];
        if (ids.Length == 0) throw new PipelineInputException("the prompt is empty and the tokenizer has no BOS token to start from.");
        return ids;
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> (token ids from <see cref="EncodePrompt"/>), calling <paramref name="onPiece"/> for every
    /// new token as soon as it is chosen. <paramref name="config"/> bounds the new tokens (capped by the model's context).
    /// </summary>
    /// <exception cref="PipelineInputException">The prompt leaves no room in the model's context.</exception>
    public TextGeneration Generate(int[] prompt, GenerationConfig config, Random? rng = null, IReadOnlyList<string>? stop = null,
        Action<GeneratedPiece>? onPiece = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        stop ??= [];
        int room = Model.MaxPositions - prompt.Length;
        if (room <= 0) throw new PipelineInputException($"the prompt has {prompt.Length} tokens; the model's context is {Model.MaxPositions} tokens. Shorten it.");
        config = config with { NumBeams = 1, MaxNewTokens = Math.Min(config.MaxNewTokens ?? config.MaxTotalLength(prompt.Length) - prompt.Length, room) };
        // Text that could be the start of a stop string stays unreleased until it is known not to be one.
        int holdBack = stop.Count == 0 ? 0 : stop.Max(s => s.Length) - 1;
        var decoder = Tokenizer.CreateDecodeStream(skipSpecialTokens: true);
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        int released = 0, stopAt = -1;
        var criterion = stop.Count == 0 ? null : StopStrings.For(Tokenizer, stop, prompt.Length);
        foreach (var id in Generator.Stream(Model, prompt, config, rng, criterion, cancellationToken))
        {
            ids.Add(id);
            text.Append(decoder.Step(id));
            stopAt = FirstStop(text, stop, Math.Max(0, released - holdBack));
            int releasable = stopAt >= 0 ? stopAt : Math.Max(released, text.Length - holdBack);
            onPiece?.Invoke(new GeneratedPiece(id, text.ToString(released, releasable - released)));
            released = releasable;
            if (stopAt >= 0) break;
        }
        if (stopAt < 0)
        {
            text.Append(decoder.Flush());
            stopAt = FirstStop(text, stop, Math.Max(0, released - holdBack));
        }
        int end = stopAt >= 0 ? stopAt : text.Length;
        if (end > released && ids.Count > 0) onPiece?.Invoke(new GeneratedPiece(null, text.ToString(released, end - released)));
        bool eos = ids.Count > 0 && config.EosTokenIds.Contains(ids[^1]);
        var reason = stopAt >= 0 || eos ? FinishReason.Stop : FinishReason.Length;
        return new TextGeneration(text.ToString(0, end), ids, prompt.Length, reason);
    }

    // Earliest occurrence of any stop string at or after `from`, or −1.
    static int FirstStop(System.Text.StringBuilder text, IReadOnlyList<string> stops, int from)
    {
        if (stops.Count == 0) return -1;
        var s = text.ToString();
        int best = -1;
        foreach (var stop in stops)
        {
            int i = s.IndexOf(stop, from, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }
}
