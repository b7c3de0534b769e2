using System.CommandLine;
using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Training;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer generate --model DIR "prompt"</c>: continue a prompt with a GPT-2 checkpoint and its byte-level BPE
/// tokenizer, streaming the text to the terminal as tokens are chosen (or one JSON line per token with <c>--json</c>).
/// </summary>
public static class GenerateCommand
{
    /// <summary>Parsed settings of the verb; null values take generation_config.json's.</summary>
    public sealed record Settings(string Model, string Prompt, int? MaxNewTokens = null, bool? DoSample = null, double? Temperature = null,
        int? TopK = null, double? TopP = null, double? RepetitionPenalty = null, int? NoRepeatNgramSize = null, long Seed = 0, bool Json = false, IReadOnlyList<string>? Stop = null);

    internal static Command Create()
    {
        var model = ModelOption.Create("Model directory (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt) or Hub id.", Hub.ShippedTask.Generate);
        var prompt = new Argument<string>("prompt") { Description = "Text to continue." };
        var maxNew = new Option<int?>("--max-new-tokens") { Description = "Tokens to generate (default: generation_config.json, else 50)." };
        var sample = new Option<bool?>("--do-sample") { Description = "Sample instead of greedy decoding." };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature." };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the k most likely tokens (0 = all)." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling: smallest set of tokens reaching this probability." };
        var rep = new Option<double?>("--repetition-penalty") { Description = "> 1 discourages repeating tokens." };
        var ngram = new Option<int?>("--no-repeat-ngram-size") { Description = "Never repeat an n-gram of this size." };
        var seed = new Option<long>("--seed") { Description = "Seed of the sampler.", DefaultValueFactory = _ => 0 };
        var stop = new Option<string[]>("--stop") { Description = "Stop once the generated text contains this string (repeatable)." };
        var json = new Option<bool>("--json") { Description = "One JSON line per token ({\"id\", \"text\"}), then a summary line." };
        var cmd = new Command("generate", "Continue a prompt with a GPT-2 model, streaming tokens as they are generated.");
        cmd.Arguments.Add(prompt);
        foreach (var o in new Option[] { model, maxNew, sample, temperature, topK, topP, rep, ngram, seed, json, stop }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliErrors.Run(() => ExecuteAsync(new Settings(ModelOption.Read(parse, model, Hub.ShippedTask.Generate), parse.GetValue(prompt)!,
            parse.GetValue(maxNew), parse.GetValue(sample), parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP), parse.GetValue(rep),
            parse.GetValue(ngram), parse.GetValue(seed), parse.GetValue(json), parse.GetValue(stop)), parse.InvocationConfiguration.Output).GetAwaiter().GetResult(),
            parse.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>Runs the verb: text (or JSON lines) on <paramref name="stdout"/> as it is generated.</summary>
    /// <remarks>With <c>--stop</c>, generation ends at the token completing a stop string and the text ends before it (OpenAI's <c>stop</c>).</remarks>
    public static async Task<int> ExecuteAsync(Settings s, TextWriter stdout, CancellationToken cancellationToken = default)
    {
        var pipeline = TextGenerationPipeline.FromPretrained(s.Model);
        var g = pipeline.Defaults;
        g = g with
        {
            MaxNewTokens = s.MaxNewTokens ?? g.MaxNewTokens ?? 50,
            DoSample = s.DoSample ?? g.DoSample,
            Temperature = s.Temperature ?? g.Temperature,
            TopK = s.TopK ?? g.TopK,
            TopP = s.TopP ?? g.TopP,
            RepetitionPenalty = s.RepetitionPenalty ?? g.RepetitionPenalty,
            NoRepeatNgramSize = s.NoRepeatNgramSize ?? g.NoRepeatNgramSize,
        };
        var prompt = pipeline.EncodePrompt(s.Prompt);
        if (!s.Json) { await stdout.WriteAsync(s.Prompt); await stdout.FlushAsync(cancellationToken); }
        // The model runs on a pool thread; pieces are written as they come (the terminal shows the text growing).
        var result = await Task.Run(() => pipeline.Generate(prompt, g, g.DoSample ? new TrainingRandom(s.Seed) : null, s.Stop, piece =>
        {
            if (s.Json) stdout.WriteLine(JsonSerializer.Serialize(new { id = piece.Id, text = piece.Text }));
            else stdout.Write(piece.Text);
            stdout.Flush();
        }, cancellationToken), cancellationToken);
        if (s.Json)
            await stdout.WriteLineAsync(JsonSerializer.Serialize(new { prompt = s.Prompt, prompt_tokens = prompt.Length, new_tokens = result.Tokens, text = result.Text,
                finish_reason = result.FinishReason == FinishReason.Stop ? "stop" : "length" }));
        else await stdout.WriteLineAsync();
        return 0;
    }
}
