using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

// Text generation as transformers 4.30's GenerationMixin.generate (generation/utils.py, logits_process.py, beam_search.py),
// over token ids and logits only: greedy, sampling, beam search, their logits processors, EOS/padding rules and left-padded
// batches. Strings (prompts, stop strings) belong to the tokenizer layer above.

/// <summary>A decoder-only language model that <see cref="Generator"/> can drive.</summary>
public interface ICausalLM
{
    int VocabSize { get; }
    /// <summary>Longest context (prompt + generated tokens).</summary>
    int MaxPositions { get; }
    /// <summary>A key/value cache for <paramref name="batchSize"/> rows with room for <paramref name="capacity"/> positions.</summary>
    KeyValueCache NewCache(int batchSize, int capacity);
    /// <summary>Last-position logits [B, V] of <paramref name="input"/>, appending its keys/values to <paramref name="cache"/>.</summary>
    float[] NextTokenLogits(CausalLMInput input, KeyValueCache cache);
}

/// <summary>Says whether row <paramref name="row"/> is finished given its tokens so far (prompt included); e.g. stop strings from the tokenizer layer.</summary>
public delegate bool StoppingCriterion(int row, IReadOnlyList<int> tokens);

/// <summary>When beam search stops a batch row (HF's <c>early_stopping</c>: true, false, "never").</summary>
public enum EarlyStopping { False, True, Never }

/// <summary>
/// HF <c>GenerationConfig</c> (generation_config.json): how many tokens, which search, which logits processors. Defaults are
/// transformers'. Keys not modelled are kept in <see cref="ExtraProperties"/>.
/// </summary>
public sealed record GenerationConfig
{
    /// <summary>Total length (prompt + new tokens) when <see cref="MaxNewTokens"/> is null.</summary>
    public int MaxLength { get; init; } = 20;
    /// <summary>New tokens to generate; overrides <see cref="MaxLength"/>.</summary>
    public int? MaxNewTokens { get; init; }
    public bool DoSample { get; init; }
    public int NumBeams { get; init; } = 1;
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep the k most likely tokens when sampling (0 disables).</summary>
    public int TopK { get; init; } = 50;
    /// <summary>Keep the smallest set of tokens whose probability reaches top_p when sampling (1 disables).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>&gt; 1 discourages tokens already in the sequence (prompt included): positive logits divided, negative multiplied (Keskar et al. 2019).</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>Beam scores are sum(log p) / length^length_penalty.</summary>
    public double LengthPenalty { get; init; } = 1.0;
    /// <summary>Forbid any n-gram of this size from occurring twice (0 disables).</summary>
    public int NoRepeatNgramSize { get; init; }
    public EarlyStopping EarlyStopping { get; init; } = EarlyStopping.False;
    public int NumReturnSequences { get; init; } = 1;
    public int? PadTokenId { get; init; }
    public int? BosTokenId { get; init; }
    /// <summary>Token ids that end a sequence (HF accepts one id or a list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public JsonObject ExtraProperties { get; init; } = [];

    /// <summary>Reads generation_config.json from a model directory (or the file); a directory without one gives the defaults with the model config's bos/eos.</summary>
    public static GenerationConfig Load(string directoryOrFile)
    {
        var path = Directory.Exists(directoryOrFile) ? Path.Combine(directoryOrFile, "generation_config.json") : directoryOrFile;
        if (!File.Exists(path))
        {
            var dir = Directory.Exists(directoryOrFile) ? directoryOrFile : Path.GetDirectoryName(path)!;
            return File.Exists(Path.Combine(dir, "config.json")) && ModelConfigLoader.Load(dir) is Gpt2Config c
                ? new GenerationConfig { BosTokenId = c.BosTokenId, EosTokenIds = c.EosTokenId is int e ? [e] : [] }
                : new GenerationConfig();
        }
        return FromJson(ModelConfig.ReadText(path), path);
    }

    /// <summary>Parses generation_config.json text.</summary>
    public static GenerationConfig FromJson(string json, string sourceName = "<generation_config.json>")
    {
        var obj = ModelConfig.ParseObject(json, sourceName);
        var r = new ConfigReader(obj, sourceName);
        var c = new GenerationConfig
        {
            MaxLength = r.Int("max_length", 20, 1),
            MaxNewTokens = r.NullableInt("max_new_tokens", null),
            DoSample = r.Bool("do_sample", false),
            NumBeams = r.Int("num_beams", 1, 1),
            Temperature = r.Double("temperature", 1.0, 0),
            TopK = r.Int("top_k", 50, 0),
            TopP = r.Double("top_p", 1.0, 0, 1),
            RepetitionPenalty = r.Double("repetition_penalty", 1.0, 0),
            LengthPenalty = r.Double("length_penalty", 1.0),
            NoRepeatNgramSize = r.Int("no_repeat_ngram_size", 0, 0),
            NumReturnSequences = r.Int("num_return_sequences", 1, 1),
            PadTokenId = r.NullableInt("pad_token_id", null),
            BosTokenId = r.NullableInt("bos_token_id", null),
        };
        obj.TryGetPropertyValue("early_stopping", out var es);
        var early = es switch
        {
            null => EarlyStopping.False,
            JsonValue v when v.GetValueKind() == JsonValueKind.True => EarlyStopping.True,
            JsonValue v when v.GetValueKind() == JsonValueKind.False => EarlyStopping.False,
            JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() == "never" => EarlyStopping.Never,
            _ => throw new ConfigException(sourceName, "early_stopping", $"must be true, false or \"never\", got {es.ToJsonString()}."),
        };
        obj.TryGetPropertyValue("eos_token_id", out var eos);
        int[] eosIds = eos switch
        {
            null => [],
            JsonValue v when v.GetValueKind() == JsonValueKind.Number => [v.GetValue<int>()],
            JsonArray a => a.Select(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.Number ? xv.GetValue<int>()
                : throw new ConfigException(sourceName, "eos_token_id", "list entries must be integers.")).ToArray(),
            _ => throw new ConfigException(sourceName, "eos_token_id", $"must be an integer or a list of integers, got {eos.ToJsonString()}."),
        };
        return c with { EarlyStopping = early, EosTokenIds = eosIds, ExtraProperties = Without(r.Rest(), "early_stopping", "eos_token_id") };
    }

    static JsonObject Without(JsonObject o, params string[] keys) { foreach (var k in keys) o.Remove(k); return o; }

    /// <summary>The prompt length plus the new tokens allowed.</summary>
    public int MaxTotalLength(int promptLength) => MaxNewTokens is int n ? promptLength + n : MaxLength;
}

/// <summary>Generated sequences: prompt (with its padding) followed by the new tokens, per input row × num_return_sequences.</summary>
/// <param name="Sequences">Rows in input order; for beam search the n best hypotheses of each input, best first.</param>
/// <param name="SequenceScores">Beam search only: each hypothesis' sum(log p) / length^length_penalty.</param>
/// <param name="PromptLength">Columns of the (padded) prompt; new tokens start there.</param>
public sealed record GenerationResult(IReadOnlyList<int[]> Sequences, IReadOnlyList<float>? SequenceScores, int PromptLength)
{
    /// <summary>The generated part of row <paramref name="row"/>.</summary>
    public int[] NewTokens(int row) => Sequences[row][PromptLength..];
}

/// <summary>Drives an <see cref="ICausalLM"/> with a <see cref="GenerationConfig"/>, as transformers' <c>generate</c>.</summary>
public static class Generator
{
    /// <summary>
    /// Generates from a batch of prompts [B, T] (left-padded when they differ in length: real tokens right-aligned, mask 0 on the
    /// pads). Position ids come from the mask (cumsum − 1), as transformers builds them. Sampling draws from <paramref name="rng"/>
    /// (the caller's seeded generator, e.g. Training.TrainingRandom). <c>stop</c> is an extra rule per row (greedy / sampling),
    /// checked after each token; a stopped row is then padded like one after EOS.
    /// </summary>
    public static GenerationResult Generate(ICausalLM model, int[][] prompts, GenerationConfig config, int[][]? attentionMask = null,
        Random? rng = null, StoppingCriterion? stop = null, CancellationToken cancellationToken = default)
    {
        var s = Prepare(model, prompts, attentionMask, config);
        if (config.NumBeams > 1)
            return stop == null ? BeamSearch(model, s, config, cancellationToken) : throw new NotSupportedException("Stopping criteria apply to greedy search and sampling, not beam search.");
        if (config.NumReturnSequences > 1 && !config.DoSample)
            throw new ArgumentException($"num_return_sequences = {config.NumReturnSequences} needs sampling or num_beams ≥ num_return_sequences (greedy search returns one sequence).", nameof(config));
        s = s.Expand(config.NumReturnSequences);
        foreach (var _ in DecodeSteps(model, s, config, rng, stop, cancellationToken)) { }
        return new GenerationResult(s.Rows(), null, s.PromptLength);
    }

    /// <summary>Greedy or sampled generation for one prompt, yielding each new token as soon as it is chosen (stops after EOS).</summary>
    /// <remarks>Arguments are checked at the call; stopping the enumeration early stops generation.</remarks>
    public static IEnumerable<int> Stream(ICausalLM model, int[] prompt, GenerationConfig config, Random? rng = null, StoppingCriterion? stop = null,
        CancellationToken cancellationToken = default)
    {
        if (config.NumBeams > 1) throw new NotSupportedException("Streaming needs greedy search or sampling; beam search only knows its best sequence at the end.");
        var s = Prepare(model, [prompt], null, config);
        if (config.DoSample && rng == null) throw new ArgumentNullException(nameof(rng), "Sampling needs a seeded Random (e.g. new TrainingRandom(seed)).");
        return DecodeSteps(model, s, config, rng, stop, cancellationToken).Select(step => step[0]);
    }

    /// <summary><see cref="Stream"/> for async callers: each step runs on the thread pool so a UI / request thread is not blocked.</summary>
    public static async IAsyncEnumerable<int> StreamAsync(ICausalLM model, int[] prompt, GenerationConfig config, Random? rng = null, StoppingCriterion? stop = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var steps = Stream(model, prompt, config, rng, stop, cancellationToken).GetEnumerator();
        while (await Task.Run(steps.MoveNext, cancellationToken).ConfigureAwait(false)) yield return steps.Current;
    }

    // Per-row state of a batch being decoded: ids so far, mask, the cache.
    sealed class Batch(List<int>[] ids, List<int>[] mask, int promptLength)
    {
        public List<int>[] Ids = ids;
        public List<int>[] Mask = mask;
        public readonly int PromptLength = promptLength;
        public int Count => Ids.Length;
        public int Length => Ids[0].Count;
        public int[][] Rows() => Ids.Select(r => r.ToArray()).ToArray();

        // Each row repeated n times in place (HF's repeat_interleave before beam search / several samples).
        public Batch Expand(int n) => n == 1 ? this : new(
            Ids.SelectMany(r => Enumerable.Range(0, n).Select(_ => new List<int>(r))).ToArray(),
            Mask.SelectMany(r => Enumerable.Range(0, n).Select(_ => new List<int>(r))).ToArray(), PromptLength);
    }

    static Batch Prepare(ICausalLM model, int[][] prompts, int[][]? mask, GenerationConfig c)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Length == 0) throw new ArgumentException("No prompts given.", nameof(prompts));
        int t = prompts[0].Length;
        if (t == 0) throw new ArgumentException("A prompt is empty; start it with the BOS token.", nameof(prompts));
        if (prompts.Any(p => p.Length != t)) throw new ArgumentException("Prompts differ in length; left-pad them and pass an attention mask.", nameof(prompts));
        if (mask != null && (mask.Length != prompts.Length || mask.Any(m => m.Length != t)))
            throw new ArgumentException("The attention mask must have the prompts' shape.", nameof(mask));
        if (c.DoSample && c.NumBeams > 1) throw new NotSupportedException("Beam sampling (do_sample with num_beams > 1) is not implemented; use one of them.");
        if (c.NumBeams > 1 && c.NumReturnSequences > c.NumBeams)
            throw new ArgumentException($"num_return_sequences ({c.NumReturnSequences}) cannot exceed num_beams ({c.NumBeams}).", nameof(c));
        int total = c.MaxTotalLength(t);
        if (total > model.MaxPositions)
            throw new ModelInputException($"prompt ({t}) + new tokens = {total} exceeds the model's {model.MaxPositions} positions; lower max_new_tokens.");
        return new Batch(prompts.Select(p => p.ToList()).ToArray(),
            (mask ?? prompts.Select(p => Enumerable.Repeat(1, p.Length).ToArray()).ToArray()).Select(m => m.ToList()).ToArray(), t);
    }

    // One forward over the positions not yet in the cache; positions from the mask (cumsum − 1, pads at 1), as HF's
    // prepare_inputs_for_generation.
    static float[] Step(ICausalLM model, Batch s, KeyValueCache cache)
    {
        int b = s.Count, past = cache.Length, t = s.Length - past, len = s.Length;
        var ids = new int[b * t]; var pos = new int[b * t]; var mask = new int[b * len];
        for (int i = 0; i < b; i++)
        {
            int cum = 0;
            for (int j = 0; j < len; j++)
            {
                int m = s.Mask[i][j];
                mask[i * len + j] = m;
                cum += m;
                if (j >= past) { ids[i * t + j - past] = s.Ids[i][j]; pos[i * t + j - past] = m == 0 ? 1 : cum - 1; }
            }
        }
        // Generation never needs gradients; without this scope a caller's enabled autograd would refuse the cache.
        using (Autograd.NoGrad()) return model.NextTokenLogits(new CausalLMInput(ids, b, t, mask, pos), cache);
    }

    // Greedy / sampling loop: yields the chosen token of every row per step. Finished rows (after EOS) get the pad token.
    static IEnumerable<int[]> DecodeSteps(ICausalLM model, Batch s, GenerationConfig c, Random? rng, StoppingCriterion? stop, CancellationToken ct)
    {
        if (c.DoSample && rng == null) throw new ArgumentNullException(nameof(rng), "Sampling needs a seeded Random (e.g. new TrainingRandom(seed)).");
        int maxLength = c.MaxTotalLength(s.PromptLength), v = model.VocabSize;
        var unfinished = Enumerable.Repeat(true, s.Count).ToArray();
        if (c.EosTokenIds.Count > 0 && c.PadTokenId is null && s.Count > 1)
            throw new ArgumentException("pad_token_id is needed to pad finished rows of a batch; set it (e.g. to the EOS id).", nameof(c));
        var cache = model.NewCache(s.Count, maxLength);
        while (s.Length < maxLength)
        {
            ct.ThrowIfCancellationRequested();
            var scores = Step(model, s, cache);
            var next = new int[s.Count];
            for (int i = 0; i < s.Count; i++)
            {
                var row = scores.AsSpan(i * v, v);
                LogitsProcessing.Process(s.Ids[i], row, c);
                if (c.DoSample)
                {
                    LogitsProcessing.Warp(row, c);
                    next[i] = LogitsProcessing.Sample(row, rng!);
                }
                else next[i] = LogitsProcessing.ArgMax(row);
                if (!unfinished[i]) next[i] = c.PadTokenId ?? next[i];
                s.Ids[i].Add(next[i]);
                s.Mask[i].Add(1);
                if (unfinished[i] && (c.EosTokenIds.Contains(next[i]) || (stop?.Invoke(i, s.Ids[i]) ?? false))) unfinished[i] = false;
            }
            yield return next;
            if (!unfinished.Contains(true)) yield break;
        }
    }

    static GenerationResult BeamSearch(ICausalLM model, Batch prompts, GenerationConfig c, CancellationToken ct)
    {
        int nb = c.NumBeams, batch = prompts.Count, v = model.VocabSize, maxLength = c.MaxTotalLength(prompts.PromptLength);
        var s = prompts.Expand(nb);
        var cache = model.NewCache(s.Count, maxLength);
        var beamScores = new float[batch * nb];
        for (int i = 0; i < batch; i++) for (int j = 1; j < nb; j++) beamScores[i * nb + j] = -1e9f;   // only beam 0 starts
        var hyps = Enumerable.Range(0, batch).Select(_ => new BeamHypotheses(nb, c.LengthPenalty, c.EarlyStopping, maxLength)).ToArray();
        var done = new bool[batch];
        int pad = c.PadTokenId ?? c.EosTokenIds.FirstOrDefault();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            int curLen = s.Length;
            var scores = Step(model, s, cache);
            for (int r = 0; r < s.Count; r++)
            {
                var row = scores.AsSpan(r * v, v);
                LogitsProcessing.LogSoftmax(row);
                LogitsProcessing.Process(s.Ids[r], row, c);
                for (int k = 0; k < v; k++) row[k] += beamScores[r];
            }
            var nextScores = new float[batch * nb]; var nextTokens = new int[batch * nb]; var nextRows = new int[batch * nb];
            for (int i = 0; i < batch; i++)
            {
                var top = LogitsProcessing.TopK(scores.AsSpan(i * nb * v, nb * v), 2 * nb);
                if (done[i])
                {
                    for (int j = 0; j < nb; j++) { nextScores[i * nb + j] = 0; nextTokens[i * nb + j] = pad; nextRows[i * nb + j] = i * nb; }
                    continue;
                }
                int beam = 0;
                for (int rank = 0; rank < top.Length && beam < nb; rank++)
                {
                    int flat = top[rank], token = flat % v, row = i * nb + flat / v;
                    float score = scores[i * nb * v + flat];
                    if (c.EosTokenIds.Contains(token))
                    {
                        if (rank >= nb) continue;
                        hyps[i].Add(s.Ids[row].ToArray(), score);
                    }
                    else { nextScores[i * nb + beam] = score; nextTokens[i * nb + beam] = token; nextRows[i * nb + beam] = row; beam++; }
                }
                float best = scores[i * nb * v + top[0]];
                done[i] = done[i] || hyps[i].IsDone(best, curLen);
            }
            var ids = nextRows.Select(r => new List<int>(s.Ids[r]) { }).ToArray();
            var masks = nextRows.Select(r => new List<int>(s.Mask[r])).ToArray();
            for (int r = 0; r < s.Count; r++) { ids[r].Add(nextTokens[r]); masks[r].Add(1); }
            s.Ids = ids; s.Mask = masks;
            cache.Reorder(nextRows);
            beamScores = nextScores;
            if (done.All(d => d) || s.Length >= maxLength) break;
        }
        // finalize: open beams become hypotheses with their cumulative scores; the n best per input, best first.
        var sequences = new List<int[]>(); var seqScores = new List<float>();
        for (int i = 0; i < batch; i++)
        {
            if (!done[i]) for (int j = 0; j < nb; j++) hyps[i].Add(s.Ids[i * nb + j].ToArray(), beamScores[i * nb + j]);
            foreach (var (score, tokens) in hyps[i].Best(c.NumReturnSequences)) { sequences.Add(tokens); seqScores.Add(score); }
        }
        // As HF's finalize: rows padded to min(longest + 1, max_length); a hypothesis shorter than that gets EOS appended.
        int width = Math.Min(sequences.Max(q => q.Length) + 1, maxLength);
        var padded = sequences.Select(q =>
        {
            if (q.Length >= width) return q;
            var p = Enumerable.Repeat(pad, width).ToArray();
            q.CopyTo(p, 0);
            if (c.EosTokenIds.Count > 0) p[q.Length] = c.EosTokenIds[0];
            return p;
        }).ToArray();
        return new GenerationResult(padded, seqScores, prompts.PromptLength);
    }

    // HF's BeamHypotheses: the n best finished hypotheses of one input, scored sum(log p) / length^length_penalty.
    sealed class BeamHypotheses(int numBeams, double lengthPenalty, EarlyStopping early, int maxLength)
    {
        readonly List<(float Score, int[] Tokens)> _beams = [];
        float _worst = 1e9f;

        public void Add(int[] tokens, float sumLogProbs)
        {
            float score = (float)(sumLogProbs / Math.Pow(tokens.Length, lengthPenalty));
            if (_beams.Count < numBeams || score > _worst)
            {
                _beams.Add((score, tokens));
                if (_beams.Count > numBeams)
                {
                    int worstIdx = 0;
                    for (int k = 1; k < _beams.Count; k++) if (_beams[k].Score < _beams[worstIdx].Score) worstIdx = k;
                    _beams.RemoveAt(worstIdx);
                    _worst = _beams.Min(b => b.Score);
                }
                else _worst = Math.Min(score, _worst);
            }
        }

        public bool IsDone(float bestSumLogProbs, int curLen)
        {
            if (_beams.Count < numBeams) return false;
            if (early == EarlyStopping.True) return true;
            int len = early == EarlyStopping.Never && lengthPenalty > 0 ? maxLength : curLen;
            return _worst >= (float)(bestSumLogProbs / Math.Pow(len, lengthPenalty));
        }

        public IEnumerable<(float Score, int[] Tokens)> Best(int n) =>
            _beams.Select((b, k) => (b, k)).OrderByDescending(x => x.b.Score).ThenByDescending(x => x.k).Take(n).Select(x => x.b);
    }
}

/// <summary>The logits processors and warpers of <see cref="Generator"/>, one row of scores at a time (in place).</summary>
public static class LogitsProcessing
{
    /// <summary>Processors in transformers' order: repetition penalty, then no-repeat n-gram.</summary>
    public static void Process(IReadOnlyList<int> sequence, Span<float> scores, GenerationConfig c)
    {
        if (c.RepetitionPenalty != 1.0) RepetitionPenalty(sequence, scores, (float)c.RepetitionPenalty);
        if (c.NoRepeatNgramSize > 0) BanRepeatedNgrams(sequence, scores, c.NoRepeatNgramSize);
    }

    /// <summary>Sampling warpers in transformers' order: temperature, top-k, top-p.</summary>
    public static void Warp(Span<float> scores, GenerationConfig c)
    {
        if (c.Temperature != 1.0)
        {
            if (c.Temperature <= 0) throw new ArgumentException("temperature must be positive when sampling.", nameof(c));
            float t = (float)c.Temperature;
            for (int i = 0; i < scores.Length; i++) scores[i] /= t;
        }
        if (c.TopK > 0 && c.TopK < scores.Length) TopKFilter(scores, c.TopK);
        if (c.TopP < 1.0) TopPFilter(scores, (float)c.TopP);
    }

    /// <summary>Every id in the sequence: score / p if positive, score · p if negative (CTRL's penalty, HF's RepetitionPenaltyLogitsProcessor).</summary>
    public static void RepetitionPenalty(IReadOnlyList<int> sequence, Span<float> scores, float penalty)
    {
        foreach (var id in sequence.Distinct())
        {
            float x = scores[id];
            scores[id] = x < 0 ? x * penalty : x / penalty;
        }
    }

    /// <summary>Sets to −∞ every token that would complete an n-gram already in the sequence (HF's NoRepeatNGramLogitsProcessor).</summary>
    public static void BanRepeatedNgrams(IReadOnlyList<int> sequence, Span<float> scores, int n)
    {
        int len = sequence.Count;
        if (len + 1 < n) return;
        for (int start = 0; start + n <= len; start++)
        {
            bool match = true;
            for (int k = 0; k < n - 1 && match; k++) match = sequence[start + k] == sequence[len - n + 1 + k];
            if (match) scores[sequence[start + n - 1]] = float.NegativeInfinity;
        }
    }

    /// <summary>Scores below the k-th largest become −∞.</summary>
    public static void TopKFilter(Span<float> scores, int k)
    {
        var sorted = scores.ToArray();
        Array.Sort(sorted);
        float kth = sorted[^k];
        for (int i = 0; i < scores.Length; i++) if (scores[i] < kth) scores[i] = float.NegativeInfinity;
    }

    /// <summary>Keeps the most likely tokens whose cumulative probability reaches p (at least one); the rest become −∞.</summary>
    /// <remarks>As HF: sort ascending, drop tokens while the cumulative probability from the bottom is ≤ 1 − p.</remarks>
    public static void TopPFilter(Span<float> scores, float p)
    {
        var order = Enumerable.Range(0, scores.Length).ToArray();
        var keys = scores.ToArray();
        Array.Sort(keys, order);
        var probs = keys.ToArray();
        LogSoftmax(probs);
        float cum = 0;
        for (int i = 0; i < order.Length - 1; i++)
        {
            cum += MathF.Exp(probs[i]);
            if (cum <= 1 - p) scores[order[i]] = float.NegativeInfinity;
        }
    }

    /// <summary>Draws an index with probability softmax(scores).</summary>
    public static int Sample(ReadOnlySpan<float> scores, Random rng)
    {
        float max = float.NegativeInfinity;
        foreach (var x in scores) max = MathF.Max(max, x);
        double sum = 0;
        foreach (var x in scores) sum += Math.Exp(x - max);
        double u = rng.NextDouble() * sum, acc = 0;
        int last = -1;
        for (int i = 0; i < scores.Length; i++)
        {
            if (float.IsNegativeInfinity(scores[i])) continue;
            acc += Math.Exp(scores[i] - max);
            last = i;
            if (u < acc) return i;
        }
        return last;
    }

    /// <summary>The index of the largest score (the first on ties, as torch.argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Length; i++) if (scores[i] > scores[best]) best = i;
        return best;
    }

    /// <summary>In place: x − log Σ exp(x).</summary>
    public static void LogSoftmax(Span<float> x)
    {
        Kernels.Softmax.LogForward(x, x, 1, x.Length);
    }

    /// <summary>Indices of the k largest scores, largest first.</summary>
    public static int[] TopK(ReadOnlySpan<float> scores, int k)
    {
        var idx = new int[Math.Min(k, scores.Length)];
        var best = new float[idx.Length];
        int n = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            float x = scores[i];
            if (n == idx.Length && x <= best[n - 1]) continue;
            int j = n < idx.Length ? n++ : n - 1;
            while (j > 0 && best[j - 1] < x) { best[j] = best[j - 1]; idx[j] = idx[j - 1]; j--; }
            best[j] = x; idx[j] = i;
        }
        return idx;
    }
}
