using Sharpformer.Checkpoints;
using Sharpformer.Cli.Commands;
using Sharpformer.Optim;
using Sharpformer.Tests.Cli;
using Sharpformer.Tokenization;
using Sharpformer.Data;
using Sharpformer.Models;
using Sharpformer.Pipelines;
using Sharpformer.Tensors;
using Sharpformer.Tests.Models;
using Sharpformer.Training;
using Sharpformer.Training.Workflows;

namespace Sharpformer.Tests.Training;

public sealed class PretrainingTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-pretrain-" + Guid.NewGuid().ToString("N"));

    public PretrainingTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void MaskedLMLoss_EqualsTheCrossEntropyOfTransformersLogitsAtTheMaskedPositions()
    {
        // bert-tiny-uncased-mlm's mlm.cases hold HF's full 30 522-logit rows at every [MASK]; the loss of any labels there is
        // mean(logsumexp(row) − row[label]), computed here in double from the recorded rows.
        const string dir = "bert-tiny-uncased-mlm";
        var model = (EncoderWithHead)FixtureModels.Model(dir, baseModel: false);
        foreach (var c in Fixtures.Expected(dir).GetProperty("mlm").GetProperty("cases").EnumerateArray())
        {
            var input = FixtureExpectation.ToInput(c.GetProperty("encoding"));
            var positions = c.GetProperty("mask_positions").EnumerateArray().Select(p => p.GetInt32()).ToArray();
            var rows = c.GetProperty("mask_logits").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();
            var labels = Enumerable.Repeat(HeadLosses.IgnoreIndex, input.TokenCount).ToArray();
            double expected = 0;
            for (int m = 0; m < positions.Length; m++)
            {
                int label = (positions[m] * 7919 + 1000) % rows[m].Length;
                labels[positions[m]] = label;
                double max = rows[m].Max();
                expected += max + Math.Log(rows[m].Sum(x => Math.Exp(x - max))) - rows[m][label];
            }
            expected /= positions.Length;
            using var _ = Autograd.NoGrad();
            var (loss, logits, at) = model.RunMaskedLM(input, labels);
            Assert.Equal(positions, at);
            Assert.Equal([positions.Length, rows[0].Length], logits.Shape.ToArray());
            Assert.Equal(expected, loss.Item(), 1e-4);   // fixture logits tolerance 1e-5 each; a mean of log-softmax terms
        }
    }

    [Fact]
    public void MaskedLMLossAtLabelledRowsOnly_EqualsTheFullLogitsLoss_AndGivesTheSameGradients()
    {
        var config = TinyBert(vocab: 50, positions: 12) with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };
        var a = new BertForMaskedLM(config, seed: 3);
        var b = new BertForMaskedLM(config, seed: 3);
        var rng = new TrainingRandom(5);
        var ids = Enumerable.Range(0, 2 * 12).Select(_ => 5 + rng.Next(45)).ToArray();
        var labels = ids.Select((id, i) => i % 5 == 2 ? (id * 3) % 50 : HeadLosses.IgnoreIndex).ToArray();
        var input = new EncoderInput(ids, 2, 12);
        var full = a.Run(input, labels: SequenceLabels.FromIds(labels)).Loss!;
        var (gathered, _, _) = b.RunMaskedLM(input, labels);
        Assert.Equal(full.Item(), gathered.Item(), 1e-6);
        full.Backward(); gathered.Backward();
        var ga = a.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.Contiguous().ToArray());
        foreach (var (name, p) in b.NamedParameters())
        {
            var want = ga[name]; var got = p.Grad!.Contiguous().ToArray();
            for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= 1e-6 + 1e-4 * Math.Abs(want[i]), $"{name}[{i}]: {got[i]} vs {want[i]}");
        }
    }

    [Fact]
    public void LanguageModelingData_MasksAnewEachEpoch_AndEvaluationUsesEpochZero()
    {
        var masking = new MaskedLanguageModeling(100, maskTokenId: 4, specialTokenIds: [0, 1, 2, 3, 4], padTokenId: 0);
        var blocks = Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, 64).Select(j => 5 + (i * 31 + j * 7) % 95).ToArray()).ToList();
        var data = LanguageModelingData.Masked(blocks, masking, seed: 9);
        int[] idx = [4, 1, 3];
        var e0 = data.Collate(idx, 0); var e1 = data.Collate(idx, 1); var eval = data.Collate(idx);
        Assert.Equal(e0.InputIds, eval.InputIds);
        Assert.Equal(e0.Labels, eval.Labels);
        Assert.NotEqual(e0.Labels, e1.Labels);
        // The mask of a block depends on its index, not on its place in the batch.
        var alone = data.Collate([1], 1);
        Assert.Equal(alone.Labels, e1.Labels![64..128]);
        // Labels are the original ids where set; elsewhere the input is the block.
        for (int i = 0; i < 64; i++)
            if (e1.Labels[64 + i] != HeadLosses.IgnoreIndex) Assert.Equal(blocks[1][i], e1.Labels[64 + i]);
            else Assert.Equal(blocks[1][i], e1.InputIds[64 + i]);
        var causal = LanguageModelingData.Causal(blocks).Collate(idx, 5);
        Assert.Equal(blocks[4].Concat(blocks[1]).Concat(blocks[3]), causal.Labels!);
        Assert.Equal(causal.Labels, causal.InputIds);
    }

    sealed class EpochSpy(ITrainingData<SeedBatch> inner, List<int> epochs) : ITrainingData<SeedBatch>
    {
        public int Count => inner.Count;
        public SeedBatch Collate(ReadOnlySpan<int> indices) => throw new InvalidOperationException("training batches must be built with their epoch");
        public SeedBatch Collate(ReadOnlySpan<int> indices, int epoch) { epochs.Add(epoch); return inner.Collate(indices); }
    }

    [Fact]
    public void Trainer_BuildsEveryTrainingBatchWithItsEpoch()
    {
        var cfg = new SeedTransformerConfig(VocabSize: 20, SequenceLength: 4, EmbedDim: 8, NumHeads: 2, KeyDim: 4, FfDim: 8, DenseDim: 4, NumLabels: 2);
        var rows = Enumerable.Range(0, 6).Select(i => (new[] { 1 + i, 2, 3, 4 }, i % 2)).ToList();
        var epochs = new List<int>();
        var data = new EpochSpy(new ListTrainingData<(int[], int), SeedBatch>(rows, r => SeedTransformerTrainable.Collate(r, 4)), epochs);
        var trainer = new Trainer<SeedBatch>(new SeedTransformerTrainable(new SeedTransformer(cfg, new TrainingRandom(0))),
            new TrainingArguments { OutputDir = _dir, NumTrainEpochs = 3, PerDeviceTrainBatchSize = 4, LoggingStrategy = IntervalStrategy.No, DisableProgressBar = true }, data);
        trainer.Train();
        Assert.Equal([0, 0, 1, 1, 2, 2], epochs);
    }

    [Fact]
    public void CosineSchedule_EqualsTransformersFormula_AndLinearDecaysToZero()
    {
        // get_cosine_schedule_with_warmup: s < w → s/w; else max(0, ½(1 + cos(π·(s − w)/(T − w)))).
        const int w = 10, total = 110;
        foreach (int s in new[] { 0, 5, 10, 35, 60, 85, 109, 110, 120 })
        {
            double expected = s < w ? s / 10.0 : Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * (s - w) / 100.0)));
            Assert.Equal(expected, LrScheduler.CosineMultiplier(s, w, total), 15);
        }
        Assert.Equal(0.5, LrScheduler.CosineMultiplier(60, w, total), 15);
        Assert.Equal(0.0, LrScheduler.LinearMultiplier(110, w, total), 15);
        Assert.Equal(0.5, LrScheduler.LinearMultiplier(60, w, total), 15);
    }

    static BertConfig TinyBert(int vocab, int positions) => new()
    {
        VocabSize = vocab, HiddenSize = 16, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 32, MaxPositionEmbeddings = positions,
    };

    // 600 lines of a small made-up language: enough for a 300-token vocabulary and 6 held-out lines.
    string WriteCorpus()
    {
        string[] words = ["the", "cat", "dog", "sat", "on", "mat", "ran", "to", "a", "house", "big", "small", "red", "green", "quickly", "slowly",
            "and", "then", "jumped", "over", "fence", "garden", "morning", "evening", "played", "with", "ball", "children", "happy", "tired"];
        var rng = new TrainingRandom(11);
        var lines = Enumerable.Range(0, 600).Select(i => string.Join(' ', Enumerable.Range(0, 6 + rng.Next(10)).Select(_ => words[rng.Next(words.Length)])) + " .");
        string corpus = Path.Combine(_dir, "corpus");
        Directory.CreateDirectory(corpus);
        File.WriteAllLines(Path.Combine(corpus, "tiny.txt"), lines);
        return corpus;
    }

    string WriteConfig(string modelType)
    {
        string path = Path.Combine(_dir, modelType + "-config.json");
        File.WriteAllText(path, modelType == "bert"
            ? """{"model_type": "bert", "vocab_size": 10, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16}"""
            : """{"model_type": "gpt2", "vocab_size": 10, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 16}""");
        return path;
    }

    PretrainingOptions Options(string corpus, string config) => new()
    {
        Corpus = [corpus], Config = config, VocabSize = 300, BlockSize = 16, BatchSize = 4, MaxSteps = 6, EvalSteps = 3, EvalBlocks = 4,
        LoggingSteps = 2, LearningRate = 1e-3, WarmupRatio = 0.2, Schedule = SchedulerType.Cosine, GradientAccumulationSteps = 2,
        // Below any step's duration: a checkpoint after every update (the time-based saving path), all kept.
        CheckpointInterval = TimeSpan.FromTicks(1), SaveTotalLimit = 0, Seed = 4,
    };

    [Fact]
    public void MaskedLMPretraining_ResumedFromAnyCheckpoint_EndsWithBitIdenticalWeights_AndSavesAnHfBertForMaskedLM()
    {
        string corpus = WriteCorpus(), config = WriteConfig("bert");
        string full = Path.Combine(_dir, "full"), resumed = Path.Combine(_dir, "resumed");
        var progress = new List<PretrainingProgress>();
        var a = Pretraining.Run(full, Options(corpus, config), progress.Add);
        Assert.Equal(6, a.Train.GlobalStep);
        Assert.Equal(PretrainingObjective.MaskedLM, a.Objective);
        Assert.Equal(Enumerable.Range(1, 6).Select(s => Path.Combine(full, $"checkpoint-{s}")), RunCheckpoint.List(full));
        // Reports: a log every 2 updates, an evaluation every 3, with held-out accuracy and perplexity once evaluated.
        Assert.Equal([2L, 3, 4, 6, 6], progress.Select(p => p.Step));
        Assert.All(progress.Where(p => p.IsEvaluation), p => Assert.True(p.HeldOutPerplexity > 1 && p.HeldOutAccuracy is >= 0 and <= 1));
        Assert.Equal(a.HeldOutPerplexity, progress[^1].HeldOutPerplexity!.Value, 12);

        // A second run that starts from checkpoint-2 (its tokenizer reused from the run directory) ends with the same bytes.
        Directory.CreateDirectory(resumed);
        CopyDirectory(Path.Combine(full, "checkpoint-2"), Path.Combine(resumed, "checkpoint-2"));
        CopyDirectory(Path.Combine(full, Pretraining.TokenizerSubdirectory), Path.Combine(resumed, Pretraining.TokenizerSubdirectory));
        var b = Pretraining.Run(resumed, Options(corpus, config) with { ResumeFrom = Path.Combine(resumed, "checkpoint-2") });
        Assert.Equal(6, b.Train.GlobalStep);
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "model.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "model.safetensors")));
        Assert.Equal(a.HeldOutPerplexity, b.HeldOutPerplexity);

        // The output is an HF BertForMaskedLM directory: config, HF weight names (decoder tied, not stored), tokenizer; fill-mask runs.
        var model = AutoModel.FromPretrained(full);
        Assert.IsType<BertForMaskedLM>(model);
        Assert.Empty(model.LoadReport!.Missing);
        using var st = SafeTensorsReader.Read(Path.Combine(full, "model.safetensors"));
        Assert.Contains("cls.predictions.transform.dense.weight", st.Keys);
        Assert.Contains("bert.encoder.layer.1.attention.self.query.weight", st.Keys);
        Assert.DoesNotContain("cls.predictions.decoder.weight", st.Keys);
        Assert.True(File.Exists(Path.Combine(full, "vocab.txt")) && File.Exists(Path.Combine(full, "tokenizer.json")));
        var fill = FillMaskPipeline.FromPretrained(full);
        var candidates = fill.Run("the cat [MASK] on the mat .");
        Assert.Single(candidates);
        Assert.Equal(5, candidates[0].Count);
    }

    [Fact]
    public void DomainAdaptation_StartsFromTheSavedModelAndItsTokenizer()
    {
        string corpus = WriteCorpus(), config = WriteConfig("bert");
        string first = Path.Combine(_dir, "first"), adapted = Path.Combine(_dir, "adapted");
        Pretraining.Run(first, Options(corpus, config) with { MaxSteps = 2, CheckpointInterval = TimeSpan.FromHours(1) });
        // With a zero learning rate (so no decay either) the adapted model is the initial one, weight for weight; no tokenizer is trained.
        var r = Pretraining.Run(adapted, Options(corpus, "mini") with { InitFrom = first, MaxSteps = 1, LearningRate = 0, CheckpointInterval = TimeSpan.FromHours(1) });
        Assert.Equal(PretrainingObjective.MaskedLM, r.Objective);
        Assert.False(Directory.Exists(Path.Combine(adapted, Pretraining.TokenizerSubdirectory)));
        using var a = SafeTensorsReader.Read(Path.Combine(first, "model.safetensors"));
        using var b = SafeTensorsReader.Read(Path.Combine(adapted, "model.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var k in a.Keys.Where(k => !k.EndsWith("position_ids", StringComparison.Ordinal))) Assert.Equal(a[k].ToFloat32(), b[k].ToFloat32());
        Assert.Equal(File.ReadAllText(Path.Combine(first, "vocab.txt")), File.ReadAllText(Path.Combine(adapted, "vocab.txt")));
        // A GPT-2 objective does not fit a BERT model.
        var e = Assert.Throws<ArgumentException>(() => Pretraining.Run(Path.Combine(_dir, "x"), Options(corpus, "mini") with { InitFrom = first, Objective = PretrainingObjective.CausalLM }));
        Assert.Contains("model_type 'bert'", e.Message);
    }

    [Fact]
    public void CausalPretraining_TrainsAGpt2ThatLoadsForGeneration_AndPerplexityIsExpOfTheNextTokenLoss()
    {
        string corpus = WriteCorpus(), config = WriteConfig("gpt2");
        string output = Path.Combine(_dir, "gpt");
        var r = Pretraining.Run(output, Options(corpus, config) with { MaxSteps = 4, CheckpointInterval = TimeSpan.FromHours(1) });
        Assert.Equal(PretrainingObjective.CausalLM, r.Objective);
        Assert.Empty(RunCheckpoint.List(output));   // the interval never elapsed
        var model = AutoModel.FromPretrainedCausalLM(output);
        Assert.Empty(model.LoadReport!.Missing);
        var tokenizer = ByteLevelBpeTokenizer.FromDirectory(output);
        Assert.Equal(model.Config.EosTokenId, tokenizer.EosTokenId);

        // Held-out perplexity = exp(mean next-token loss over the held-out blocks), recomputed here from the saved model.
        var lines = Corpus.Read([corpus]).Where(l => l.HeldOut).Select(l => l.Text).ToList();
        int eos = tokenizer.EosTokenId!.Value;
        var ids = lines.SelectMany(l => tokenizer.Encode(l).Ids.Concat([eos])).ToArray();
        var blocks = Enumerable.Range(0, Math.Min(4, ids.Length / 16)).Select(i => ids[(i * 16)..(i * 16 + 16)]).ToArray();
        Assert.Equal(r.HeldOutBlocks, blocks.Length);
        model.Eval();
        using var _ = Autograd.NoGrad();
        double sum = 0;
        int batch = blocks.Length;   // one batch: the trainer's mean is over all targets
        var flat = blocks.SelectMany(b => (IEnumerable<int>)b).ToArray();
        sum = model.Forward(new CausalLMInput(flat, batch, 16), labels: flat).Loss!.Item();
        Assert.Equal(Math.Exp(sum), r.HeldOutPerplexity, 1e-3 * r.HeldOutPerplexity);
    }

    [Fact]
    public void PretrainVerb_PrintsProgressAndASummary_AndRejectsABadDuration()
    {
        string corpus = WriteCorpus(), config = WriteConfig("bert");
        string output = Path.Combine(_dir, "cli");
        var (code, stdout, _) = CliRun.Invoke("pretrain", "--corpus", corpus, "--config", config, "--output", output, "--vocab-size", "300",
            "--block-size", "16", "--batch-size", "4", "--max-steps", "4", "--eval-steps", "2", "--log-steps", "2", "--eval-blocks", "4", "--json", "--threads", "1");
        Assert.Equal(0, code);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["log", "eval", "log", "eval"], lines.Take(4).Select(l => l.GetProperty("kind").GetString()));
        var summary = lines[^1];
        Assert.Equal(4, summary.GetProperty("steps").GetInt32());
        Assert.Equal("mlm", summary.GetProperty("objective").GetString());
        Assert.Equal(lines[3].GetProperty("held_out_perplexity").GetDouble(), summary.GetProperty("held_out_perplexity").GetDouble(), 3);
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));

        Assert.Equal(TimeSpan.FromMinutes(90), PretrainCommand.ParseDuration("1h30m", "--time-budget"));
        Assert.Equal(TimeSpan.FromHours(2), PretrainCommand.ParseDuration("2h", "--time-budget"));
        Assert.Equal(TimeSpan.FromSeconds(45), PretrainCommand.ParseDuration("45s", "--time-budget"));
        var e = Assert.Throws<ArgumentException>(() => PretrainCommand.ParseDuration("2 hours", "--time-budget"));
        Assert.Contains("--time-budget", e.Message);
    }

    static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
