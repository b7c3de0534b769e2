using System.Diagnostics;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Tokenization;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Training.Workflows;

/// <summary>What a language model is pretrained to predict.</summary>
public enum PretrainingObjective
{
    /// <summary>BERT's masked-language-model objective (<see cref="BertForMaskedLM"/>, HF <c>run_mlm.py</c>).</summary>
    MaskedLM,
    /// <summary>GPT's next-token objective (<see cref="Gpt2LMHeadModel"/>, HF <c>run_clm.py</c>).</summary>
    CausalLM,
}

/// <summary>Named model sizes for pretraining.</summary>
/// <remarks>
/// "mini" and "small" are Google's BERT miniatures (Turc et al. 2019, "Well-Read Students Learn Better"): mini = 4 layers,
/// hidden 256, 4 heads, FFN 1024; small = 4 layers, hidden 512, 8 heads, FFN 2048. The GPT variants use the same sizes
/// (n_layer, n_embd, n_head, 4·n_embd). Positions default to the block size (128): every position embedding is trained,
/// the task texts (AG News, CoNLL sentences, tweets) fit in 128 word pieces, and a longer input fails with a clear error
/// instead of reading untrained position vectors.
/// </remarks>
public static class PretrainingConfigs
{
    /// <summary>The known names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["mini", "small"];

    static (int Layers, int Hidden, int Heads) Size(string name) => name switch
    {
        "mini" => (4, 256, 4),
        "small" => (4, 512, 8),
        _ => throw new ArgumentException($"Unknown model size '{name}'; use {string.Join(" or ", Names)}, or a config.json path."),
    };

    /// <summary>A BERT config of size <paramref name="name"/> for a vocabulary of <paramref name="vocabSize"/> and <paramref name="positions"/> positions.</summary>
    public static BertConfig Bert(string name, int vocabSize, int positions)
    {
        var (l, h, a) = Size(name);
        return new BertConfig
        {
            VocabSize = vocabSize, HiddenSize = h, NumHiddenLayers = l, NumAttentionHeads = a, IntermediateSize = 4 * h,
            MaxPositionEmbeddings = positions, Architectures = ["BertForMaskedLM"],
        };
    }

    /// <summary>A GPT-2 config of size <paramref name="name"/>; <paramref name="eosId"/> is both BOS and EOS (GPT-2's <c>&lt;|endoftext|&gt;</c>).</summary>
    public static Gpt2Config Gpt2(string name, int vocabSize, int positions, int eosId)
    {
        var (l, h, a) = Size(name);
        return new Gpt2Config
        {
            VocabSize = vocabSize, NPositions = positions, NEmbd = h, NLayer = l, NHead = a, BosTokenId = eosId, EosTokenId = eosId,
            Architectures = ["GPT2LMHeadModel"],
        };
    }
}

/// <summary>Settings of a pretraining run (defaults: BERT-mini-sized MLM with AdamW, warmup then linear decay).</summary>
public sealed record PretrainingOptions
{
    /// <summary>Corpus folders or files (.txt / .txt.gz, one text per line).</summary>
    public IReadOnlyList<string> Corpus { get; init; } = [];
    /// <summary>Task train splits read as more text (never a test split).</summary>
    public IReadOnlyList<(TaskText Task, string Path)> TaskFiles { get; init; } = [];
    /// <summary>"mini", "small" or a config.json path (its vocab size is replaced by the tokenizer's). Ignored with <see cref="InitFrom"/>.</summary>
    public string Config { get; init; } = "mini";
    /// <summary>Null: masked LM, unless <see cref="Config"/> or <see cref="InitFrom"/> is a GPT-2 config.</summary>
    public PretrainingObjective? Objective { get; init; }
    /// <summary>Continue pretraining this model directory (domain adaptation); its tokenizer is used.</summary>
    public string? InitFrom { get; init; }
    /// <summary>Use this tokenizer directory instead of training one (or reusing the run's).</summary>
    public string? Tokenizer { get; init; }
    /// <summary>Size of a vocabulary trained here (WordPiece for MLM, byte-level BPE for CLM).</summary>
    public int VocabSize { get; init; } = 16_000;
    /// <summary>Ids per packed block (and model positions for a new model).</summary>
    public int BlockSize { get; init; } = 128;
    public int BatchSize { get; init; } = 32;
    public int GradientAccumulationSteps { get; init; } = 1;
    public double LearningRate { get; init; } = 5e-4;
    public double WeightDecay { get; init; } = 0.01;
    public double WarmupRatio { get; init; } = 0.05;
    public SchedulerType Schedule { get; init; } = SchedulerType.Linear;
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Updates to plan; ≤ 0: from <see cref="TimeBudget"/> (measured step time), else <see cref="Epochs"/> epochs. A resumed run keeps its checkpoint's plan.</summary>
    public int MaxSteps { get; init; } = -1;
    public double Epochs { get; init; } = 1;
    /// <summary>Stop (with a checkpoint) once this much time is spent training in this call.</summary>
    public TimeSpan? TimeBudget { get; init; }
    /// <summary>Write a resumable checkpoint this often (wall clock).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Evaluate on the held-out blocks every this many updates (and at the end).</summary>
    public int EvalSteps { get; init; } = 500;
    /// <summary>Held-out blocks scored per evaluation (the first ones).</summary>
    public int EvalBlocks { get; init; } = 256;
    public int LoggingSteps { get; init; } = 50;
    public int Seed { get; init; }
    public MaskingOptions Masking { get; init; } = new();
    /// <summary>Read only the first N corpus lines (quick runs and tests).</summary>
    public int? LimitLines { get; init; }
    /// <summary>Checkpoints kept (oldest deleted first).</summary>
    public int SaveTotalLimit { get; init; } = 2;
    public bool DisableProgressBar { get; init; } = true;
    /// <summary>A checkpoint directory to continue from.</summary>
    public string? ResumeFrom { get; init; }
}

/// <summary>One progress report: after every logging interval and every evaluation.</summary>
/// <param name="Step">Updates done.</param>
/// <param name="MaxSteps">Updates planned.</param>
/// <param name="Loss">Mean training loss since the last report (null for an evaluation report).</param>
/// <param name="LearningRate">Rate of the last update (null for an evaluation report).</param>
/// <param name="TokensPerSecond">Training tokens (block ids) per second since the last report.</param>
/// <param name="HeldOutAccuracy">Held-out MLM accuracy (masked positions) or next-token accuracy, at the last evaluation.</param>
/// <param name="HeldOutPerplexity">exp(held-out loss) at the last evaluation.</param>
/// <param name="Elapsed">Wall-clock time since this call started training.</param>
/// <param name="Eta">Estimated time to the end of the plan or of the time budget, whichever comes first.</param>
/// <param name="IsEvaluation">True when this report follows an evaluation.</param>
public sealed record PretrainingProgress(long Step, long MaxSteps, double? Loss, double? LearningRate, double TokensPerSecond,
    double? HeldOutAccuracy, double? HeldOutPerplexity, TimeSpan Elapsed, TimeSpan Eta, bool IsEvaluation);

/// <summary>What a pretraining run produced.</summary>
/// <param name="OutputDir">The saved model directory (HF layout, with tokenizer files).</param>
/// <param name="Objective">The objective trained.</param>
/// <param name="Train">The trainer's totals.</param>
/// <param name="TrainBlocks">Packed training blocks (one epoch).</param>
/// <param name="HeldOutBlocks">Held-out blocks scored per evaluation.</param>
/// <param name="Parameters">Parameter count (tied weights once).</param>
/// <param name="HeldOutAccuracy">Final held-out accuracy.</param>
/// <param name="HeldOutPerplexity">Final held-out perplexity.</param>
/// <param name="Stopped">True when the time budget stopped the run before its plan ended (resume to continue).</param>
/// <param name="Elapsed">Wall-clock time of the whole call.</param>
public sealed record PretrainingResult(string OutputDir, PretrainingObjective Objective, TrainResult Train, int TrainBlocks, int HeldOutBlocks,
    long Parameters, double HeldOutAccuracy, double HeldOutPerplexity, bool Stopped, TimeSpan Elapsed);

/// <summary>
/// Language-model pretraining from raw text: corpus → tokenizer (trained here, or given) → packed blocks → a masked LM
/// (BERT) or causal LM (GPT-2) trained by <see cref="Trainer{TBatch}"/> with AdamW, warmup then linear or cosine decay,
/// gradient accumulation and clipping; held-out blocks (every 100th corpus line) scored for accuracy and perplexity;
/// time-based checkpoints with bit-exact resume; the result saved as an HF model directory.
/// </summary>
/// <remarks>
/// Output directory layout: <c>tokenizer/</c> (a tokenizer trained by the run, reused when it resumes),
/// <c>checkpoint-&lt;step&gt;/</c>, <c>metrics.jsonl</c>, and at the end the model (config.json, model.safetensors and the
/// tokenizer files), loadable by <see cref="AutoModel"/> and the fill-mask / generate pipelines.
/// <para>Planning with a time budget: when no step count is given, a few steps are timed first (forward + backward, no
/// update, gradients discarded) and the plan is the number of updates the budget allows, evaluations included, so the
/// learning rate decays to zero about when the budget ends. A resumed run keeps the plan of its checkpoint.</para>
/// </remarks>
public static class Pretraining
{
    /// <summary>Subdirectory of the output that holds a tokenizer trained by the run.</summary>
    public const string TokenizerSubdirectory = "tokenizer";

    public static PretrainingResult Run(string outputDir, PretrainingOptions options, Action<PretrainingProgress>? onProgress = null,
        Action<string>? onStatus = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputDir);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Corpus.Count == 0 && options.TaskFiles.Count == 0) throw new ArgumentException("Give at least one corpus folder or task train file.");
        if (options.BlockSize < 8) throw new ArgumentOutOfRangeException(nameof(options), options.BlockSize, "BlockSize must be at least 8.");
        if (options.EvalBlocks < 1 || options.EvalSteps < 1 || options.LoggingSteps < 1) throw new ArgumentOutOfRangeException(nameof(options), "EvalBlocks, EvalSteps and LoggingSteps must be ≥ 1.");
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(outputDir);
        var objective = ResolveObjective(options);

        onStatus?.Invoke("reading the corpus");
        var stats = new CorpusStatistics();
        var (train, heldOut) = SplitCorpus(options, stats, cancellationToken);
        if (train.Count == 0) throw new ArgumentException("The corpus has no training lines.");
        if (heldOut.Count == 0) throw new ArgumentException($"The corpus has only {train.Count} lines, so no held-out line (every 100th) to evaluate on; give more text.");
        onStatus?.Invoke($"corpus: {stats.Files} sources, {train.Count:N0} train and {heldOut.Count:N0} held-out lines ({stats.Duplicates:N0} duplicates dropped), {stats.Characters:N0} characters");

        // Under mpirun every rank runs this whole workflow; they share one tokenizer (trained by rank 0) and one plan.
        var group = ProcessGroups.FromEnvironment();
        var prepared = objective == PretrainingObjective.MaskedLM
            ? PrepareMaskedLM(outputDir, options, train, heldOut, group, onStatus, cancellationToken)
            : PrepareCausalLM(outputDir, options, train, heldOut, group, onStatus, cancellationToken);
        var (trainable, trainData, evalData, tokenizerDir) = prepared;
        onStatus?.Invoke($"{trainData.Count:N0} train blocks and {evalData.Count:N0} held-out blocks of {options.BlockSize} tokens; model: {trainable.Module.ParameterCount():N0} parameters");

        long maxSteps = PlanSteps(options, trainable, trainData, evalData, group, onStatus);
        var args = new TrainingArguments
        {
            OutputDir = outputDir, MaxSteps = (int)Math.Min(int.MaxValue, maxSteps), LearningRate = options.LearningRate,
            PerDeviceTrainBatchSize = options.BatchSize, PerDeviceEvalBatchSize = Math.Min(options.BatchSize, 16),
            GradientAccumulationSteps = options.GradientAccumulationSteps, WeightDecay = options.WeightDecay, WarmupRatio = options.WarmupRatio,
            LrSchedulerType = options.Schedule, MaxGradNorm = options.MaxGradNorm,
            EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = options.EvalSteps,
            LoggingStrategy = IntervalStrategy.Steps, LoggingSteps = options.LoggingSteps,
            SaveStrategy = IntervalStrategy.No, SaveTotalLimit = options.SaveTotalLimit,
            Seed = options.Seed, DisableProgressBar = options.DisableProgressBar,
        };
        var budget = options.TimeBudget is TimeSpan b ? new TimeBudgetCallback(b, saveOnStop: true) : null;
        var callbacks = new List<ITrainerCallback> { new TimedCheckpointCallback(options.CheckpointInterval) };
        if (budget != null) callbacks.Add(budget);
        var trainer = new Trainer<CollatedBatch>(trainable, args, trainData, evalData, AccuracyMetric, callbacks, group);
        var reporter = new ProgressReporter(trainer, options, onProgress);
        trainable.Training = true;
        var result = trainer.Train(options.ResumeFrom, cancellationToken);

        // The plan's last step may not fall on an evaluation step: score the final weights once more.
        var final = trainer.State.LastMetrics is { } last && reporter.LastEvaluatedStep == result.GlobalStep ? last : trainer.Evaluate(cancellationToken);
        trainable.Training = false;
        trainer.SaveModel(outputDir);   // rank 0 only under mpirun
        bool stopped = budget?.Expired == true && result.GlobalStep < trainer.MaxSteps;
        return new PretrainingResult(outputDir, objective, result, trainData.Count, evalData.Count, trainable.Module.ParameterCount(),
            final.GetValueOrDefault("eval_accuracy", double.NaN), Math.Exp(final["eval_loss"]), stopped, clock.Elapsed);
    }

    /// <summary>
    /// The run's text: the cleaned lines of <see cref="PretrainingOptions.Corpus"/> then of its task train files (at most
    /// <see cref="PretrainingOptions.LimitLines"/>), split into train lines and held-out lines (every 100th, see <see cref="Corpus"/>).
    /// </summary>
    public static (List<string> Train, List<string> HeldOut) SplitCorpus(PretrainingOptions options, CorpusStatistics? statistics = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        IEnumerable<CorpusLine> corpusLines = Corpus.Read(options.Corpus, options.TaskFiles, new CorpusOptions(), statistics);
        if (options.LimitLines is int limit) corpusLines = corpusLines.Take(limit);
        var train = new List<string>(); var heldOut = new List<string>();
        foreach (var line in corpusLines)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (line.HeldOut ? heldOut : train).Add(line.Text);
        }
        return (train, heldOut);
    }

    /// <summary>
    /// Causal-LM blocks as GPT-2 is trained (run_clm): each line's ids followed by <c>&lt;|endoftext|&gt;</c>
    /// (<paramref name="eos"/>), so documents are separated inside a block, concatenated and cut into blocks of
    /// <paramref name="blockSize"/> (the remainder dropped).
    /// </summary>
    public static IEnumerable<int[]> CausalLMBlocks(ByteLevelBpeTokenizer tokenizer, IEnumerable<string> lines, int eos, int blockSize,
        CancellationToken cancellationToken = default) =>
        MaskedLanguageModeling.GroupTexts(EncodeWithEos(tokenizer, lines, eos, cancellationToken), blockSize);

    /// <summary>
    /// The held-out masked-LM set a run with <paramref name="seed"/> scores: <paramref name="blocks"/> with masks fixed per
    /// block (the same at every evaluation), drawn from a seed of their own so they never repeat the training masks.
    /// </summary>
    public static LanguageModelingData MaskedLMHeldOut(IReadOnlyList<int[]> blocks, MaskedLanguageModeling masking, int seed) =>
        LanguageModelingData.Masked(blocks, masking, (ulong)seed ^ HeldOutMaskSalt);

    const ulong HeldOutMaskSalt = 0x686F6C646F7574UL;   // "holdout"

    /// <summary>Accuracy over every predicted position of the evaluation (masked tokens, or next tokens).</summary>
    public static IReadOnlyDictionary<string, double> AccuracyMetric(EvalPredictions p)
    {
        long right = 0, total = 0;
        for (int i = 0; i < p.Predicted.Count; i++)
            for (int j = 0; j < p.Predicted[i].Length; j++) { total++; if (p.Predicted[i][j] == p.Labels[i][j]) right++; }
        return new Dictionary<string, double> { ["accuracy"] = total == 0 ? double.NaN : (double)right / total };
    }

    static PretrainingObjective ResolveObjective(PretrainingOptions o)
    {
        string? source = o.InitFrom != null ? AutoModel.ResolveDirectory(o.InitFrom) : File.Exists(o.Config) || Directory.Exists(o.Config) ? o.Config : null;
        string? modelType = source == null ? null : ModelConfigLoader.Load(source).ModelType;
        var implied = modelType switch
        {
            null => (PretrainingObjective?)null,
            "gpt2" => PretrainingObjective.CausalLM,
            "bert" => PretrainingObjective.MaskedLM,
            _ => throw new NotSupportedException($"Pretraining supports BERT (masked LM) and GPT-2 (causal LM); '{source}' has model_type '{modelType}'."),
        };
        if (o.Objective is { } wanted && implied is { } i && wanted != i)
            throw new ArgumentException($"The objective {wanted} does not fit '{source}' (model_type '{modelType}' trains {i}).");
        return o.Objective ?? implied ?? PretrainingObjective.MaskedLM;
    }

    sealed record Prepared(ITrainableModel<CollatedBatch> Trainable, LanguageModelingData Train, LanguageModelingData Eval, string TokenizerDir);

    // --init's tokenizer, else --tokenizer, else the one an earlier call of this run trained, else a new one.
    static string? ExistingTokenizer(string outputDir, PretrainingOptions o)
    {
        if (o.Tokenizer != null) return o.Tokenizer;
        if (o.InitFrom != null) return AutoModel.ResolveDirectory(o.InitFrom);
        string own = Path.Combine(outputDir, TokenizerSubdirectory);
        return Directory.Exists(own) ? own : null;
    }

    // The tokenizer every rank uses: an existing one, or one that rank 0 trains into the run's tokenizer folder while the
    // others wait (the first barrier makes every rank look before rank 0 may write).
    static string SharedTokenizer(string outputDir, PretrainingOptions o, IProcessGroup group, Action<string> trainInto)
    {
        group.Barrier();
        if (ExistingTokenizer(outputDir, o) is { } existing) return existing;
        string tokDir = Path.Combine(outputDir, TokenizerSubdirectory);
        if (group.Rank == 0) trainInto(tokDir);
        group.Barrier();
        return tokDir;
    }

    static Prepared PrepareMaskedLM(string outputDir, PretrainingOptions o, List<string> train, List<string> heldOut, IProcessGroup group,
        Action<string>? onStatus, CancellationToken ct)
    {
        string tokDir = SharedTokenizer(outputDir, o, group, dir =>
        {
            onStatus?.Invoke($"training a WordPiece vocabulary of {o.VocabSize:N0}");
            var trainer = new WordPieceTrainer(new WordPieceTrainerOptions
            {
                VocabSize = o.VocabSize, Tokenizer = new BertTokenizerOptions { LowerCase = true, ModelMaxLength = o.BlockSize },
            });
            trainer.AddTexts(train, null, ct);
            trainer.Train(null, ct).Save(dir);
        });
        var tokenizer = BertTokenizer.FromDirectory(tokDir);
        onStatus?.Invoke($"tokenizer: {tokDir} ({tokenizer.VocabSize:N0} tokens); packing blocks");
        var trainBlocks = MaskedLanguageModeling.GroupTexts(tokenizer, train, o.BlockSize, ct).ToList();
        var evalBlocks = MaskedLanguageModeling.GroupTexts(tokenizer, heldOut, o.BlockSize, ct).Take(o.EvalBlocks).ToList();
        CheckBlocks(trainBlocks, evalBlocks, o.BlockSize);

        EncoderWithHead model;
        if (o.InitFrom != null)
        {
            string dir = AutoModel.ResolveDirectory(o.InitFrom);
            var config = ModelConfigLoader.Load(dir) with { Architectures = ["BertForMaskedLM"] };
            model = (EncoderWithHead)AutoModel.FromPretrained(dir, config, new ModelLoadOptions { Seed = o.Seed });
        }
        else
        {
            var config = NewConfig(o, tokenizer.VocabSize) as BertConfig
                ?? throw new ArgumentException($"--config '{o.Config}' is not a BERT config; the masked-LM objective trains BERT.");
            config = config with { PadTokenId = tokenizer.PadTokenId ?? 0 };
            model = new BertForMaskedLM(config, o.Seed);
        }
        int positions = model.BaseModel.Spec.MaxPositions;
        if (o.BlockSize > positions) throw new ArgumentException($"BlockSize {o.BlockSize} exceeds the model's {positions} positions.");
        if (model.BaseModel.Spec.VocabSize != tokenizer.VocabSize)
            throw new ArgumentException($"The model has {model.BaseModel.Spec.VocabSize} word embeddings but the tokenizer {tokDir} has {tokenizer.VocabSize} tokens.");
        var masking = MaskedLanguageModeling.ForTokenizer(tokenizer, o.Masking);
        ulong seed = (ulong)o.Seed;
        return new Prepared(new MaskedLMTrainable(model, tokDir),
            LanguageModelingData.Masked(trainBlocks, masking, seed), MaskedLMHeldOut(evalBlocks, masking, o.Seed), tokDir);
    }

    static Prepared PrepareCausalLM(string outputDir, PretrainingOptions o, List<string> train, List<string> heldOut, IProcessGroup group,
        Action<string>? onStatus, CancellationToken ct)
    {
        const string Eos = "<|endoftext|>";
        string tokDir = SharedTokenizer(outputDir, o, group, dir =>
        {
            onStatus?.Invoke($"training a byte-level BPE vocabulary of {o.VocabSize:N0}");
            BpeTrainer.Train(train, new BpeTrainerOptions { VocabSize = o.VocabSize, MinFrequency = 2, SpecialTokens = [Eos] }, null, ct).Save(dir);
        });
        var tokenizer = ByteLevelBpeTokenizer.FromDirectory(tokDir);
        int eos = tokenizer.EosTokenId ?? tokenizer.TokenToId(Eos)
            ?? throw new ArgumentException($"The tokenizer {tokDir} has no end-of-text token ({Eos}); causal-LM packing separates texts with it.");
        onStatus?.Invoke($"tokenizer: {tokDir} ({tokenizer.VocabSize:N0} tokens); packing blocks");
        var trainBlocks = CausalLMBlocks(tokenizer, train, eos, o.BlockSize, ct).ToList();
        var evalBlocks = CausalLMBlocks(tokenizer, heldOut, eos, o.BlockSize, ct).Take(o.EvalBlocks).ToList();
        CheckBlocks(trainBlocks, evalBlocks, o.BlockSize);

        Gpt2LMHeadModel model;
        if (o.InitFrom != null) model = Gpt2LMHeadModel.FromPretrained(AutoModel.ResolveDirectory(o.InitFrom));
        else
        {
            var config = NewConfig(o, tokenizer.VocabSize) as Gpt2Config
                ?? throw new ArgumentException($"--config '{o.Config}' is not a GPT-2 config; the causal-LM objective trains GPT-2.");
            model = new Gpt2LMHeadModel(config with { BosTokenId = eos, EosTokenId = eos }, o.Seed);
        }
        if (o.BlockSize > model.Config.NPositions) throw new ArgumentException($"BlockSize {o.BlockSize} exceeds the model's n_positions {model.Config.NPositions}.");
        if (model.Config.VocabSize != tokenizer.VocabSize)
            throw new ArgumentException($"The model has {model.Config.VocabSize} token embeddings but the tokenizer {tokDir} has {tokenizer.VocabSize} tokens.");
        return new Prepared(new CausalLMTrainable(model, tokDir), LanguageModelingData.Causal(trainBlocks), LanguageModelingData.Causal(evalBlocks), tokDir);
    }

    static IEnumerable<IReadOnlyList<int>> EncodeWithEos(ByteLevelBpeTokenizer tokenizer, IEnumerable<string> lines, int eos, CancellationToken ct)
    {
        var options = new EncodeOptions { AddSpecialTokens = false, Truncation = TruncationStrategy.None, Padding = PaddingStrategy.None };
        return lines.Chunk(1024).SelectMany(chunk => tokenizer.EncodeBatch(chunk, options, ct).Select(e => (IReadOnlyList<int>)[.. e.Ids, eos]));
    }

    static void CheckBlocks(List<int[]> train, List<int[]> eval, int blockSize)
    {
        if (train.Count == 0) throw new ArgumentException($"The training text fills no block of {blockSize} tokens; give more text or a smaller block size.");
        if (eval.Count == 0) throw new ArgumentException($"The held-out text fills no block of {blockSize} tokens; give more text or a smaller block size.");
    }

    // A named size, or a config.json (file or directory) whose vocabulary size becomes the tokenizer's.
    static ModelConfig NewConfig(PretrainingOptions o, int vocabSize)
    {
        if (PretrainingConfigs.Names.Contains(o.Config))
            return ResolveObjective(o) == PretrainingObjective.CausalLM
                ? PretrainingConfigs.Gpt2(o.Config, vocabSize, o.BlockSize, 0)
                : PretrainingConfigs.Bert(o.Config, vocabSize, o.BlockSize);
        var config = ModelConfigLoader.Load(o.Config);
        return config switch
        {
            BertConfig b => b with { VocabSize = vocabSize, Architectures = ["BertForMaskedLM"] },
            Gpt2Config g => g with { VocabSize = vocabSize, Architectures = ["GPT2LMHeadModel"] },
            _ => throw new NotSupportedException($"'{o.Config}' has model_type '{config.ModelType}'; pretraining builds BERT or GPT-2."),
        };
    }

    /// <summary>
    /// The number of updates to plan: a resumed run's checkpoint plan; else MaxSteps; else from the time budget and timed
    /// steps; else epochs × steps per epoch.
    /// </summary>
    static long PlanSteps(PretrainingOptions o, ITrainableModel<CollatedBatch> model, LanguageModelingData train,
        LanguageModelingData eval, IProcessGroup group, Action<string>? onStatus)
    {
        if (o.ResumeFrom != null) return RunCheckpoint.ReadPosition(o.ResumeFrom).MaxSteps;
        if (o.MaxSteps > 0) return o.MaxSteps;
        long perStep = (long)o.BatchSize * group.Size * o.GradientAccumulationSteps;   // blocks per update over all ranks
        long perEpoch = Math.Max(1, (train.Count + perStep - 1) / perStep);
        if (o.TimeBudget is not TimeSpan budget) return Math.Max(1, (long)Math.Ceiling(o.Epochs * perEpoch));
        // Every rank must plan the same number of steps: the ranks' timings are averaged.
        Span<double> timed = [TimeMicroBatch(model, train, o.BatchSize)];
        group.AllReduceSum(timed);
        double microSeconds = timed[0] / group.Size;
        double stepSeconds = microSeconds * o.GradientAccumulationSteps;
        // An evaluation runs EvalBlocks forward only (≈ ⅓ of a training pass per block), every EvalSteps updates, shared by the ranks.
        double evalPerStep = microSeconds / o.BatchSize * eval.Count / 3.0 / o.EvalSteps / group.Size;
        long steps = Math.Max(1, (long)(budget.TotalSeconds / (stepSeconds + evalPerStep)));
        onStatus?.Invoke($"timed {microSeconds:F2} s per batch of {o.BatchSize}: planning {steps:N0} updates for {budget}");
        return steps;
    }

    // Forward + backward of two batches after one warm-up; gradients are cleared and dropout draws from a scratch generator,
    // so the run itself is unchanged.
    static double TimeMicroBatch(ITrainableModel<CollatedBatch> model, LanguageModelingData train, int batchSize)
    {
        var parameters = model.Module.Parameters().ToList();
        var rng = new TrainingRandom(12345);
        var idx = Enumerable.Range(0, Math.Min(batchSize, train.Count)).ToArray();
        var batch = train.Collate(idx, 0);
        model.Training = true;
        double seconds = 0;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            model.TrainStep(batch, rng, 1f);
            if (i > 0) seconds += watch.Elapsed.TotalSeconds;
            TrainingOptimizer.ZeroGradients(parameters);
        }
        return seconds / 2 * batchSize / idx.Length;
    }

    /// <summary>Turns the trainer's log and evaluation records into <see cref="PretrainingProgress"/> reports.</summary>
    sealed class ProgressReporter
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();
        readonly PretrainingOptions _options;
        readonly Trainer<CollatedBatch> _trainer;
        long _firstStep = -1;
        double? _accuracy, _perplexity;
        double _tokensPerSecond;

        public long LastEvaluatedStep { get; private set; } = -1;

        public ProgressReporter(Trainer<CollatedBatch> trainer, PretrainingOptions options, Action<PretrainingProgress>? onProgress)
        {
            _trainer = trainer; _options = options;
            trainer.Logged += record =>
            {
                if (_firstStep < 0) _firstStep = record.Step - 1;   // the first record of this call (a resumed run starts late)
                switch (record)
                {
                    case TrainingProgressLog log:
                        _tokensPerSecond = log.SamplesPerSecond * options.BlockSize;
                        onProgress?.Invoke(Report(log.Step, log.TrainLoss, log.LearningRate, false));
                        break;
                    case EvaluationLog e:
                        LastEvaluatedStep = e.Step;
                        _accuracy = e.Metric("eval_accuracy");
                        _perplexity = e.Metric("eval_loss") is double l ? Math.Exp(l) : null;
                        onProgress?.Invoke(Report(e.Step, null, null, true));
                        break;
                }
            };
        }

        PretrainingProgress Report(long step, double? loss, double? lr, bool evaluation)
        {
            var elapsed = _clock.Elapsed;
            long done = Math.Max(1, step - _firstStep), left = Math.Max(0, _trainer.MaxSteps - step);
            // At the latest interval's speed (a shared machine's speed changes), else the average since this call started.
            double tokensPerStep = (double)_options.BatchSize * _options.GradientAccumulationSteps * _options.BlockSize;
            var eta = TimeSpan.FromSeconds(_tokensPerSecond > 0 ? left * tokensPerStep / _tokensPerSecond : elapsed.TotalSeconds / done * left);
            if (_options.TimeBudget is TimeSpan budget && budget - elapsed < eta) eta = budget - elapsed < TimeSpan.Zero ? TimeSpan.Zero : budget - elapsed;
            return new PretrainingProgress(step, _trainer.MaxSteps, loss, lr, _tokensPerSecond, _accuracy, _perplexity, elapsed, eta, evaluation);
        }
    }
}
