using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;

namespace Sharpformer.Training.Workflows;

/// <summary>
/// The encoder–decoder a G2P run trains: the one place an architecture enters the workflow (everything else goes through
/// <see cref="ISeq2SeqModel"/>).
/// </summary>
public abstract record G2PArchitecture
{
    /// <summary>The name given to <c>train seq2seq --architecture</c>.</summary>
    public abstract string Name { get; }

    /// <summary>A freshly initialised model over <paramref name="vocab"/> (source letters and target phonemes share the ids).</summary>
    public abstract ISeq2SeqModel Create(G2PVocabulary vocab, int seed);

    /// <summary>Peak AdamW learning rate that suits the architecture when none is given.</summary>
    public abstract double DefaultLearningRate { get; }

    /// <summary>Warm-up fraction that suits the architecture when none is given (a post-norm Transformer needs a real warm-up).</summary>
    public abstract double DefaultWarmupRatio { get; }
}

/// <summary>The Bahdanau RNN encoder–decoder (<see cref="BahdanauSeq2Seq"/>).</summary>
public sealed record BahdanauG2P(int EmbeddingDim = 64, int EncoderHidden = 128, int DecoderHidden = 256, int AttentionUnits = 128,
    float Dropout = BahdanauG2P.DefaultDropout) : G2PArchitecture
{
    /// <summary>Dropout of <c>train seq2seq --architecture bahdanau</c> (see <see cref="Seq2SeqConfig.Dropout"/>).</summary>
    /// <remarks>
    /// Measured on CMUdict test (beam 5) with the default sizes, 2 threads, AMD EPYC: dropout 0, 10 epochs (18,800 updates,
    /// 27 CPU-minutes) 28.1 % WER / 6.7 % PER; dropout 0.1, 20 epochs (37,600 updates, 48 CPU-minutes) 28.3 % / 6.5 %;
    /// dropout 0.3, 22 epochs (41,360 updates, the 60-CPU-minute budget) 31.7 % / 7.4 %. Short runs favour no dropout
    /// (after 1.2 epochs: 39.2 % with 0, 42.9 % with 0.2, 45.7 % with 0.3). 0.1 keeps the longer runs from overfitting
    /// (train loss 0.12 against dev 0.15, where 0 gave 0.07 against 0.16) at no cost in WER; more dropout underfits this
    /// small model, whose capacity, not overfitting, now limits the WER.
    /// </remarks>
    public const float DefaultDropout = 0.1f;

    public override string Name => "bahdanau";
    public override double DefaultLearningRate => 2e-3;
    public override double DefaultWarmupRatio => 0.01;

    public override ISeq2SeqModel Create(G2PVocabulary vocab, int seed) =>
        new BahdanauSeq2Seq(new Seq2SeqConfig(vocab.Count, EmbeddingDim, EncoderHidden, DecoderHidden, AttentionUnits, G2PVocabulary.Pad, G2PVocabulary.Bos, G2PVocabulary.Eos, Dropout), seed);
}

/// <summary>The Transformer encoder–decoder (<see cref="TransformerSeq2Seq"/>), shared embeddings and sinusoidal positions by default.</summary>
public sealed record TransformerG2P(int DModel = 128, int Heads = 4, int EncoderLayers = 3, int DecoderLayers = 3, int FeedForward = 512,
    float Dropout = 0.1f, bool SharedEmbeddings = true, bool LearnedPositions = false) : G2PArchitecture
{
    public override string Name => "transformer";
    public override double DefaultLearningRate => 7e-4;
    public override double DefaultWarmupRatio => 0.05;

    public override ISeq2SeqModel Create(G2PVocabulary vocab, int seed) =>
        new TransformerSeq2Seq(new TransformerSeq2SeqConfig(vocab.Count, DModel, Heads, EncoderLayers, DecoderLayers, FeedForward, Dropout,
            MaxPositions: 64, SharedEmbeddings, LearnedPositions, G2PVocabulary.Pad, G2PVocabulary.Bos, G2PVocabulary.Eos), seed);
}

/// <summary>Settings of a G2P run (architecture and sizes, optimisation, budget).</summary>
public sealed record G2PTrainingOptions
{
    public G2PArchitecture Architecture { get; init; } = new BahdanauG2P();
    /// <summary>Fraction of the updates spent warming the learning rate up linearly (null: the architecture's default).</summary>
    public double? WarmupRatio { get; init; }
    public double Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 64;
    /// <summary>Peak AdamW learning rate (null: the architecture's default).</summary>
    public double? LearningRate { get; init; }
    public int Seed { get; init; }
    /// <summary>ε of the label-smoothed training cross-entropy (torch's label_smoothing; 0 = none).</summary>
    public float LabelSmoothing { get; init; }
    /// <summary>Evaluate on dev (greedy WER/PER) and save a checkpoint every this many updates.</summary>
    public int EvalSteps { get; init; } = 500;
    /// <summary>Stop after this many evaluations without a better dev WER.</summary>
    /// <remarks>
    /// 20 evaluations (10,000 updates, ~5 epochs, at the default 500 steps): the 1,000-word dev sample moves by ±1.5 % WER
    /// between evaluations, and under a linear decay the best WERs come at the end of the run, so 4 stopped a
    /// 60-CPU-minute run in its first third on noise.
    /// </remarks>
    public int Patience { get; init; } = DefaultPatience;

    /// <summary>Default of <see cref="Patience"/>.</summary>
    public const int DefaultPatience = 20;
    /// <summary>Stop once this much wall-clock time is spent (null: no budget).</summary>
    public TimeSpan? TimeBudget { get; init; }
    /// <summary>Stop once the process has used this much CPU time, all threads together (null: no budget); 30 min on 2 cores is 60 min.</summary>
    public TimeSpan? CpuBudget { get; init; }
    /// <summary>
    /// Dev words scored (greedy) at every evaluation for early stopping and the best checkpoint: a fixed random sample, the
    /// same for every run; 0 = the whole dev split. The whole split is scored once at the end, with beam search.
    /// </summary>
    public int DevWords { get; init; } = 1000;
    /// <summary>Batch pronunciations of similar length together (less padding; the batches are shuffled every epoch).</summary>
    /// <remarks>
    /// Measured on CMUdict with the default model, 2.5 CPU-minutes each on a shared 2-vCPU EPYC: 1,945 updates and 42.5 % dev-sample
    /// WER with buckets against 1,137 updates and 47.8 % with random batches (per update, random batches learn a little faster
    /// early on; per CPU second, buckets win).
    /// </remarks>
    public bool BucketByLength { get; init; } = true;
    /// <summary>Use only the first N training pronunciations (quick runs).</summary>
    public int? Limit { get; init; }
    public bool DisableProgressBar { get; init; }
    public string? ResumeFrom { get; init; }
}

/// <summary>What a G2P run produced: the dev evaluations, the training totals and the whole-dev and test scores (beam search) of the best model.</summary>
public sealed record G2PRunResult(IReadOnlyList<EvaluationLog> Evaluations, TrainResult Train, G2PScore Dev, G2PScore Test, TimeSpan Elapsed, string OutputDir);

/// <summary>
/// CMUdict grapheme-to-phoneme with an encoder–decoder (<see cref="G2PTrainingOptions.Architecture"/>): letters in, stress-free phonemes out; trained with the
/// project's <see cref="Trainer{TBatch}"/> (AdamW, clipping 5, linear decay), evaluated on dev every
/// <see cref="G2PTrainingOptions.EvalSteps"/> updates by greedy WER (lower is better; early stopping and the best
/// checkpoint follow it), then scored on test with beam search by the SOURCE.md rules. The model directory holds
/// config.json, model.safetensors and vocab.json.
/// </summary>
public static class G2PTraining
{
    /// <summary>Beam settings used for the reported test score.</summary>
    public const int BeamWidth = 5;
    public const double BeamAlpha = 0.6;

    public static G2PRunResult Train(CmuDictSplits data, string outputDir, G2PTrainingOptions options,
        Action<EvaluationLog>? onEvaluation = null, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trainEntries = options.Limit is int n ? data.Train.Take(n).ToList() : data.Train;
        var vocab = G2PVocabulary.Build(data.Train);
        var model = options.Architecture.Create(vocab, options.Seed);
        var trainable = new Seq2SeqTrainable(model, (m, dir) => Save(m, vocab, dir), labelSmoothing: options.LabelSmoothing);
        var trainRows = trainEntries.Select((e, i) => (vocab.EncodeWord(e.Word), vocab.EncodePhonemes(e.Phonemes), i)).ToList();
        var devAll = CmuDict.ByWord(data.Dev);
        var devWords = DevSample(devAll, options.DevWords);
        var devRows = devWords.Select((w, i) => (vocab.EncodeWord(w.Word), vocab.EncodePhonemes(w.References[0]), i)).ToList();
        var args = new TrainingArguments
        {
            OutputDir = outputDir, NumTrainEpochs = options.Epochs, LearningRate = options.LearningRate ?? options.Architecture.DefaultLearningRate,
            PerDeviceTrainBatchSize = options.BucketByLength ? 1 : options.BatchSize,   // bucketed: one data item is a whole batch
            PerDeviceEvalBatchSize = 256, WeightDecay = 0, MaxGradNorm = 5, LrSchedulerType = SchedulerType.Linear, WarmupRatio = options.WarmupRatio ?? options.Architecture.DefaultWarmupRatio,
            EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = options.EvalSteps, SaveStrategy = IntervalStrategy.Steps, SaveSteps = options.EvalSteps,
            LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = 50, SaveTotalLimit = 2, LoadBestModelAtEnd = true,
            MetricForBestModel = "eval_wer", GreaterIsBetter = false, Seed = options.Seed, DisableProgressBar = options.DisableProgressBar,
        };
        var callbacks = new List<ITrainerCallback> { new EarlyStoppingCallback(options.Patience) };
        if (options.TimeBudget is TimeSpan budget) callbacks.Add(new TimeBudgetCallback(budget, saveOnStop: true, evaluateOnStop: true));
        if (options.CpuBudget is TimeSpan cpu) callbacks.Add(new TimeBudgetCallback(cpu, processorTime: true, saveOnStop: true, evaluateOnStop: true));
        Func<IReadOnlyList<(int[], int[], int)>, Seq2SeqBatch> collate = r => Seq2SeqBatch.Collate(r, G2PVocabulary.Pad);
        // The decoder steps cost most, so target length sorts first, source length breaks ties.
        ITrainingData<Seq2SeqBatch> train = options.BucketByLength
            ? new LengthBucketedData<(int[], int[], int), Seq2SeqBatch>(trainRows, r => r.Item2.Length * 1000 + r.Item1.Length, options.BatchSize, options.Seed, collate)
            : new ListTrainingData<(int[], int[], int), Seq2SeqBatch>(trainRows, collate);
        var trainer = new Trainer<Seq2SeqBatch>(trainable, args, train,
            new ListTrainingData<(int[], int[], int), Seq2SeqBatch>(devRows, r => Seq2SeqBatch.Collate(r, G2PVocabulary.Pad)),
            p => Metrics(vocab, devWords, p), callbacks);
        var evaluations = EvaluationRecords.Collect(trainer, onEvaluation);
        var result = trainer.Train(options.ResumeFrom, cancellationToken);
        trainer.SaveModel(outputDir);
        model.Module.Eval();
        var dev = Evaluate(model, vocab, devAll, BeamWidth, BeamAlpha);
        var test = Evaluate(model, vocab, CmuDict.ByWord(data.Test), BeamWidth, BeamAlpha);
        return new G2PRunResult(evaluations, result, dev, test, clock.Elapsed, outputDir);
    }

    /// <summary>
    /// The dev words of the periodic evaluation: <paramref name="count"/> drawn with a fixed seed (so runs with different
    /// seeds are compared on the same words), sorted by length so that evaluation batches carry little padding.
    /// </summary>
    public static IReadOnlyList<G2PWord> DevSample(IReadOnlyList<G2PWord> dev, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var chosen = count == 0 || count >= dev.Count ? dev : Trainer<Seq2SeqBatch>.EpochOrder(dev.Count, DevSampleSeed, 0).Take(count).Select(i => dev[i]);
        return chosen.OrderBy(w => w.Word.Length).ToList();
    }

    const int DevSampleSeed = 13;

    static IReadOnlyDictionary<string, double> Metrics(G2PVocabulary vocab, IReadOnlyList<G2PWord> words, EvalPredictions p)
    {
        var score = G2PScoring.Score(p.Predicted.Select(vocab.DecodePhonemes).ToList(), p.Labels.Select(l => words[l[0]].References).ToList());
        return new Dictionary<string, double> { ["wer"] = score.Wer, ["per"] = score.Per };
    }

    /// <summary>Writes the model (config.json, model.safetensors) and vocab.json.</summary>
    public static void Save(ISeq2SeqModel model, G2PVocabulary vocab, string directory)
    {
        model.Save(directory);
        vocab.Save(directory);
    }

    /// <summary>Predicts pronunciations of <paramref name="words"/> (batched beam search; width 1 is greedy-like).</summary>
    public static G2PPrediction[] Predict(ISeq2SeqModel model, G2PVocabulary vocab, IReadOnlyList<string> words, int beamWidth = BeamWidth,
        double alpha = BeamAlpha, int nBest = 1, int batchSize = 128)
    {
        var result = new G2PPrediction[words.Count];
        // Batches of similar length: a batch decodes as many steps as its longest word needs.
        var order = Enumerable.Range(0, words.Count).OrderBy(i => words[i].Length).ToArray();
        for (int start = 0; start < words.Count; start += batchSize)
        {
            var rows = order.AsSpan(start, Math.Min(batchSize, words.Count - start)).ToArray();
            var chunk = rows.Select(i => words[i]).ToList();
            var ids = chunk.Select(vocab.EncodeWord).ToList();
            var batch = Seq2SeqBatch.Collate(ids.Select((s, i) => (s, new[] { G2PVocabulary.Bos, G2PVocabulary.Eos }, i)).ToList(), G2PVocabulary.Pad);
            int maxSteps = ids.Max(s => s.Length) + 10;
            var beams = model.Beam(batch.Src, batch.SrcLengths, model.BeamOptions(beamWidth, maxSteps, alpha, nBest));
            for (int i = 0; i < chunk.Count; i++)
                result[rows[i]] = new G2PPrediction(chunk[i], beams[i].NBest.Select(h => new G2PPronunciation(vocab.DecodePhonemes(h.Tokens), h.Score, h.Finished)).ToArray(),
                    beams[i].Best.Attention, beams[i].Best.Tokens.Select(vocab.Symbol).ToArray());
        }
        return result;
    }

    /// <summary>Scores beam-search predictions of <paramref name="words"/> by the SOURCE.md rules.</summary>
    public static G2PScore Evaluate(ISeq2SeqModel model, G2PVocabulary vocab, IReadOnlyList<G2PWord> words, int beamWidth = BeamWidth, double alpha = BeamAlpha)
    {
        var predictions = Predict(model, vocab, words.Select(w => w.Word).ToList(), beamWidth, alpha);
        return G2PScoring.Score(predictions.Select(p => p.Best.Phonemes).ToList(), words.Select(w => w.References).ToList());
    }

    /// <summary>Loads a directory written by <see cref="Save"/> (either architecture: config.json records it).</summary>
    public static (ISeq2SeqModel Model, G2PVocabulary Vocabulary) Load(string directory)
    {
        var model = Seq2SeqModels.Load(directory);
        model.Module.Eval();
        return (model, G2PVocabulary.Load(directory));
    }

    /// <summary>True when <paramref name="directory"/> holds a model written by <see cref="Save"/> (config.json's model_type and vocab.json).</summary>
    public static bool IsModelDirectory(string directory)
    {
        var config = Path.Combine(directory, "config.json");
        if (!File.Exists(config) || !File.Exists(Path.Combine(directory, G2PVocabulary.FileName))) return false;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(config));
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && doc.RootElement.TryGetProperty("model_type", out var t) && t.ValueKind == System.Text.Json.JsonValueKind.String
                && t.GetString() is BahdanauSeq2Seq.ModelType or TransformerSeq2Seq.ModelType;
        }
        catch (System.Text.Json.JsonException) { return false; }
    }
}

/// <summary>One pronunciation hypothesis: phonemes and its length-normalised log-probability.</summary>
public sealed record G2PPronunciation(string[] Phonemes, double Score, bool Finished);

/// <summary>
/// The n-best pronunciations of a word (best first), the attention rows (output steps × letters, padded to the batch's
/// longest word) of the best and the symbol each of its steps produced (EOS as "&lt;/s&gt;" when it finished).
/// </summary>
public sealed record G2PPrediction(string Word, G2PPronunciation[] NBest, float[][]? Attention, string[]? Steps = null)
{
    public G2PPronunciation Best => NBest[0];

    /// <summary>
    /// The alignment of the best pronunciation, as in Bahdanau et al. 2015, Figure 3: row t holds the attention weights of
    /// output step t (a phoneme, or the end symbol) over the word's letters; the batch padding columns are dropped.
    /// </summary>
    public G2PAlignment Alignment()
    {
        if (Attention is null || Steps is null || Steps.Length != Attention.Length)
            throw new InvalidOperationException($"the prediction of '{Word}' carries no attention rows to draw.");
        var letters = Word.ToLowerInvariant().Select(c => c.ToString()).ToArray();
        var weights = new float[Steps.Length, letters.Length];
        for (int t = 0; t < Steps.Length; t++)
            for (int j = 0; j < letters.Length; j++) weights[t, j] = Attention[t][j];
        return new G2PAlignment(Word, letters, Steps, weights);
    }
}

/// <summary>Attention weights of a pronunciation: <paramref name="Weights"/>[output step, letter].</summary>
public sealed record G2PAlignment(string Word, string[] Letters, string[] Outputs, float[,] Weights);
