using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tensors;

namespace Sharpformer.Serving;

/// <summary>Sampling settings of one completion choice (OpenAI's fields after validation).</summary>
/// <param name="MaxTokens">New tokens at most.</param>
/// <param name="Temperature">0 = greedy search; otherwise sampling with this temperature (no top-k, as OpenAI).</param>
/// <param name="TopP">Nucleus sampling threshold (1 = off).</param>
/// <param name="Stop">Stop strings: generation ends at one and the text ends before it.</param>
/// <param name="Seed">Seed of this choice's sampler (TrainingRandom), so a request with a seed is reproducible.</param>
public sealed record CompletionSettings(int MaxTokens, double Temperature, double TopP, IReadOnlyList<string> Stop, long Seed);

/// <summary>
/// The server's backend for a causal LM: <see cref="TextGenerationPipeline"/> behind <c>POST /v1/completions</c>. The encoder-task
/// members of <see cref="IPipeline"/> answer "not supported" (the server routes those requests away first).
/// </summary>
/// <remarks><see cref="Complete"/> runs on the batching thread; <see cref="CountTokens"/> / <see cref="EncodePrompt"/> on request threads (the tokenizer is thread-safe).</remarks>
public class GenerationBackend : IPipeline
{
    /// <param name="modelName">Name reported in responses.</param>
    /// <param name="pipeline">The model, its tokenizer and generation defaults.</param>
    /// <param name="execution">Kernel threads of the generation (null: the caller's scope, else every logical processor).</param>
    public GenerationBackend(string modelName, TextGenerationPipeline pipeline, ExecutionOptions? execution = null)
    {
        ModelName = modelName ?? throw new ArgumentNullException(nameof(modelName));
        Pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        _execution = execution;
    }

    readonly ExecutionOptions? _execution;

    /// <summary>Loads a GPT-2 directory or Hub id with its tokenizer and generation_config.json.</summary>
    public static GenerationBackend Load(string modelDirOrId, ExecutionOptions? execution = null)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDirOrId));
        return new GenerationBackend(string.IsNullOrEmpty(name) ? modelDirOrId : name, TextGenerationPipeline.FromPretrained(modelDirOrId), execution);
    }

    public ServingTask Task => ServingTask.Generate;
    public string ModelName { get; }
    public TextGenerationPipeline Pipeline { get; }
    /// <summary>Prompt plus new tokens at most (n_positions).</summary>
    public int ContextLength => Pipeline.Model.MaxPositions;

    /// <summary>The prompt's token ids (BOS for an empty prompt).</summary>
    public int[] EncodePrompt(string prompt) => Pipeline.EncodePrompt(prompt);

    /// <summary>
    /// Generates one choice: greedy when the temperature is 0, else sampling with the temperature and top-p (top-k off); EOS and
    /// padding ids from generation_config.json. <paramref name="onPiece"/> sees the text as it is generated.
    /// </summary>
    /// <remarks>Virtual so a host (or a test) can wrap a generation, e.g. to hold it between pieces.</remarks>
    public virtual TextGeneration Complete(int[] prompt, CompletionSettings settings, Action<GeneratedPiece>? onPiece, CancellationToken cancellationToken)
    {
        var config = Pipeline.Defaults with
        {
            MaxNewTokens = settings.MaxTokens, DoSample = settings.Temperature > 0, Temperature = settings.Temperature > 0 ? settings.Temperature : 1.0,
            TopP = settings.TopP, TopK = 0, NumBeams = 1, NumReturnSequences = 1, RepetitionPenalty = 1.0, NoRepeatNgramSize = 0,
        };
        using var _ = ExecutionScope.Enter(_execution);
        return Pipeline.Generate(prompt, config, config.DoSample ? new TrainingRandom(settings.Seed) : null, settings.Stop, onPiece, cancellationToken);
    }

    public IReadOnlyList<object> RunBatch(IReadOnlyList<ServingItem> items, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"{ModelName} generates text: use POST /v1/completions.");

    public int Validate(ServingItem item, int index) => CountTokens(item.Text);

    public int CountTokens(string text) => Pipeline.Tokenizer.Encode(text).Ids.Count;

    public AttentionMaps Attention(string text, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"{ModelName} generates text; attention maps are served for the encoder tasks.");
}
