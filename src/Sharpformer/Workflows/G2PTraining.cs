using Sharpformer.Data;
using Sharpformer.Metrics;
using Sharpformer.Models;

namespace Sharpformer.Training.Workflows;

/// <summary>Settings of a G2P run (sizes of the Bahdanau model, optimisation, budget).</summary>
public sealed record G2PTrainingOptions
{
    public int EmbeddingDim { get; init; } = 64;
    public int EncoderHidden { get; init; } = 128;
    public int DecoderHidden { get; init; } = 256;
    public int AttentionUnits { get; init; } = 128;
    public double Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 2e-3;
    public int Seed { get; init; }
    /// <summary>Evaluate on dev (greedy WER/PER) and save a checkpoint every this many updates.</summary>
    public int EvalSteps { get; init; } = 500;
    /// <summary>Stop after this many evaluations without a better dev WER.</summary>
    public int Patience { get; init; } = 4;
    /// <summary>Stop once this much wall-clock time is spent (null: no budget).</summary>
    public TimeSpan? TimeBudget { get; init; }
    /// <summary>Use only the first N training pronunciations (quick runs).</summary>
    public int? Limit { get; init; }
    public bool DisableProgressBar { get; init; }
    public string? ResumeFrom { get; init; }
}

/// <summary>What a G2P run produced: the dev evaluations, the training totals and the test score of the best model.</summary>
public sealed record G2PRunResult(IReadOnlyList<EvaluationLog> Evaluations, TrainResult Train, G2PScore Test, TimeSpan Elapsed, string OutputDir);

/// <summary>
/// CMUdict grapheme-to-phoneme with the Bahdanau encoder–decoder: letters in, stress-free phonemes out; trained with the
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
        var config = new Seq2SeqConfig(vocab.Count, options.EmbeddingDim, options.EncoderHidden, options.DecoderHidden, options.AttentionUnits,
            G2PVocabulary.Pad, G2PVocabulary.Bos, G2PVocabulary.Eos);
        var model = new BahdanauSeq2Seq(config, options.Seed);
        var trainable = new Seq2SeqTrainable(model, (m, dir) => Save(m, vocab, dir));
        var trainRows = trainEntries.Select((e, i) => (vocab.EncodeWord(e.Word), vocab.EncodePhonemes(e.Phonemes), i)).ToList();
        var devWords = CmuDict.ByWord(data.Dev);
        var devRows = devWords.Select((w, i) => (vocab.EncodeWord(w.Word), vocab.EncodePhonemes(w.References[0]), i)).ToList();
        var args = new TrainingArguments
        {
            OutputDir = outputDir, NumTrainEpochs = options.Epochs, LearningRate = options.LearningRate, PerDeviceTrainBatchSize = options.BatchSize,
            PerDeviceEvalBatchSize = 256, WeightDecay = 0, MaxGradNorm = 5, LrSchedulerType = SchedulerType.Linear, WarmupRatio = 0.01,
            EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = options.EvalSteps, SaveStrategy = IntervalStrategy.Steps, SaveSteps = options.EvalSteps,
            LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = 50, SaveTotalLimit = 2, LoadBestModelAtEnd = true,
            MetricForBestModel = "eval_wer", GreaterIsBetter = false, Seed = options.Seed, DisableProgressBar = options.DisableProgressBar,
        };
        var callbacks = new List<ITrainerCallback> { new EarlyStoppingCallback(options.Patience) };
        if (options.TimeBudget is TimeSpan budget) callbacks.Add(new TimeBudgetCallback(budget));
        var trainer = new Trainer<Seq2SeqBatch>(trainable, args,
            new ListTrainingData<(int[], int[], int), Seq2SeqBatch>(trainRows, r => Seq2SeqBatch.Collate(r, G2PVocabulary.Pad)),
            new ListTrainingData<(int[], int[], int), Seq2SeqBatch>(devRows, r => Seq2SeqBatch.Collate(r, G2PVocabulary.Pad)),
            p => Metrics(vocab, devWords, p), callbacks);
        var evaluations = EvaluationRecords.Collect(trainer, onEvaluation);
        var result = trainer.Train(options.ResumeFrom, cancellationToken);
        trainer.SaveModel(outputDir);
        model.Eval();
        var test = Evaluate(model, vocab, CmuDict.ByWord(data.Test), BeamWidth, BeamAlpha);
        return new G2PRunResult(evaluations, result, test, clock.Elapsed, outputDir);
    }

    static IReadOnlyDictionary<string, double> Metrics(G2PVocabulary vocab, IReadOnlyList<G2PWord> words, EvalPredictions p)
    {
        var score = G2PScoring.Score(p.Predicted.Select(vocab.DecodePhonemes).ToList(), p.Labels.Select(l => words[l[0]].References).ToList());
        return new Dictionary<string, double> { ["wer"] = score.Wer, ["per"] = score.Per };
    }

    /// <summary>Writes the model (config.json, model.safetensors) and vocab.json.</summary>
    public static void Save(BahdanauSeq2Seq model, G2PVocabulary vocab, string directory)
    {
        model.Save(directory);
        vocab.Save(directory);
    }

    /// <summary>Predicts pronunciations of <paramref name="words"/> (batched beam search; width 1 is greedy-like).</summary>
    public static G2PPrediction[] Predict(BahdanauSeq2Seq model, G2PVocabulary vocab, IReadOnlyList<string> words, int beamWidth = BeamWidth,
        double alpha = BeamAlpha, int nBest = 1, int batchSize = 128)
    {
        var result = new List<G2PPrediction>(words.Count);
        for (int start = 0; start < words.Count; start += batchSize)
        {
            var chunk = words.Skip(start).Take(batchSize).ToList();
            var ids = chunk.Select(vocab.EncodeWord).ToList();
            var batch = Seq2SeqBatch.Collate(ids.Select((s, i) => (s, new[] { G2PVocabulary.Bos, G2PVocabulary.Eos }, i)).ToList(), G2PVocabulary.Pad);
            int maxSteps = ids.Max(s => s.Length) + 10;
            var beams = model.Beam(batch.Src, batch.SrcLengths, model.BeamOptions(beamWidth, maxSteps, alpha, nBest));
            for (int i = 0; i < chunk.Count; i++)
                result.Add(new G2PPrediction(chunk[i], beams[i].NBest.Select(h => new G2PPronunciation(vocab.DecodePhonemes(h.Tokens), h.Score, h.Finished)).ToArray(),
                    beams[i].Best.Attention));
        }
        return [.. result];
    }

    /// <summary>Scores beam-search predictions of <paramref name="words"/> by the SOURCE.md rules.</summary>
    public static G2PScore Evaluate(BahdanauSeq2Seq model, G2PVocabulary vocab, IReadOnlyList<G2PWord> words, int beamWidth = BeamWidth, double alpha = BeamAlpha)
    {
        var predictions = Predict(model, vocab, words.Select(w => w.Word).ToList(), beamWidth, alpha);
        return G2PScoring.Score(predictions.Select(p => p.Best.Phonemes).ToList(), words.Select(w => w.References).ToList());
    }

    /// <summary>Loads a directory written by <see cref="Save"/>.</summary>
    public static (BahdanauSeq2Seq Model, G2PVocabulary Vocabulary) Load(string directory)
    {
        var model = BahdanauSeq2Seq.Load(directory);
        model.Eval();
        return (model, G2PVocabulary.Load(directory));
    }
}

/// <summary>One pronunciation hypothesis: phonemes and its length-normalised log-probability.</summary>
public sealed record G2PPronunciation(string[] Phonemes, double Score, bool Finished);

/// <summary>The n-best pronunciations of a word (best first) and the attention rows (phoneme steps × letters) of the best.</summary>
public sealed record G2PPrediction(string Word, G2PPronunciation[] NBest, float[][]? Attention)
{
    public G2PPronunciation Best => NBest[0];
}
