using System.CommandLine;
using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tokenization;
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
        var model = new Option<string>("--model") { Description = "Model directory (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt) or Hub id.", Required = true };
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
        cmd.SetAction(parse => CliErrors.Run(() => ExecuteAsync(new Settings(parse.GetValue(model)!, parse.GetValue(prompt)!,
            parse.GetValue(maxNew), parse.GetValue(sample), parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP), parse.GetValue(rep),
            parse.GetValue(ngram), parse.GetValue(seed), parse.GetValue(json), parse.GetValue(stop)), parse.InvocationConfiguration.Output).GetAwaiter().GetResult(),
            parse.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>Runs the verb: text (or JSON lines) on <paramref name="stdout"/> as it is generated.</summary>
    public static async Task<int> ExecuteAsync(Settings s, TextWriter stdout, CancellationToken cancellationToken = default)
    {
        string dir = AutoModel.ResolveDirectory(s.Model);
        var model = AutoModel.FromPretrainedCausalLM(dir);
        var tokenizer = ByteLevelBpeTokenizer.FromDirectory(dir);
        var g = GenerationConfig.Load(dir);
        g = g with
        {
            MaxNewTokens = s.MaxNewTokens ?? g.MaxNewTokens ?? 50,
            DoSample = s.DoSample ?? g.DoSample,
            Temperature = s.Temperature ?? g.Temperature,
            TopK = s.TopK ?? g.TopK,
            TopP = s.TopP ?? g.TopP,
            RepetitionPenalty = s.RepetitionPenalty ?? g.RepetitionPenalty,
            NoRepeatNgramSize = s.NoRepeatNgramSize ?? g.NoRepeatNgramSize,
            NumBeams = 1,
        };
        var prompt = tokenizer.Encode(s.Prompt).Ids.ToArray();
        if (prompt.Length == 0 && g.BosTokenId is int bos) prompt = [bos];
        var room = model.Config.NPositions - prompt.Length;
        if (room <= 0) throw new ModelInputException($"the prompt has {prompt.Length} tokens; the model takes at most {model.Config.NPositions}. Shorten it.");
        g = g with { MaxNewTokens = Math.Min(g.MaxNewTokens!.Value, room) };
        var stream = tokenizer.CreateDecodeStream(skipSpecialTokens: true);
        var ids = new List<int>();
        if (!s.Json) { await stdout.WriteAsync(s.Prompt); await stdout.FlushAsync(cancellationToken); }
        await foreach (var id in Generator.StreamAsync(model, prompt, g, g.DoSample ? new TrainingRandom(s.Seed) : null,
            StopStrings.For(tokenizer, s.Stop ?? [], prompt.Length), cancellationToken))
        {
            ids.Add(id);
            var piece = stream.Step(id);
            if (s.Json) await stdout.WriteLineAsync(JsonSerializer.Serialize(new { id, text = piece }));
            else await stdout.WriteAsync(piece);
            await stdout.FlushAsync(cancellationToken);
        }
        var rest = stream.Flush();
        if (s.Json)
            await stdout.WriteLineAsync(JsonSerializer.Serialize(new { prompt = s.Prompt, prompt_tokens = prompt.Length, new_tokens = ids, text = tokenizer.Decode(ids) }));
        else await stdout.WriteLineAsync(rest);
        return 0;
    }
}
