using Sharpformer.Data;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Data;

public class MaskedLanguageModelingTests
{
    // Vocabulary of 1000 ids: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK]; ids 900–999 are "##" pieces.
    const int V = 1000, Pad = 0, Unk = 1, Cls = 2, Sep = 3, MaskId = 4;
    static MaskedLanguageModeling Masker(MaskingOptions? o = null) =>
        new(V, MaskId, [Pad, Unk, Cls, Sep, MaskId], Pad, Enumerable.Range(900, 100), Cls, Sep, o);

    /// <summary>|x − μ| ≤ 4σ for a binomial proportion over n trials.</summary>
    static void WithinFourSigma(double expected, long hits, long n)
    {
        double sigma = Math.Sqrt(expected * (1 - expected) / n);
        Assert.InRange((double)hits / n, expected - 4 * sigma, expected + 4 * sigma);
    }

    [Fact]
    public void Over_100k_tokens_15_percent_are_selected_and_split_80_10_10_within_four_sigma()
    {
        var m = Masker();
        var rng = new TrainingRandom(7);
        long tokens = 0, selected = 0, masked = 0, unchanged = 0, random = 0;
        for (int ex = 0; ex < 100; ex++)
        {
            var ids = Enumerable.Range(0, 1000).Select(_ => 5 + rng.Next(V - 5)).ToArray();
            var r = m.Mask(ids, seed: 42, epoch: 0, exampleIndex: ex);
            for (int i = 0; i < ids.Length; i++)
            {
                tokens++;
                if (r.Labels[i] == PaddingCollator.IgnoreIndex) { Assert.Equal(ids[i], r.InputIds[i]); continue; }
                Assert.Equal(ids[i], r.Labels[i]);
                selected++;
                if (r.InputIds[i] == MaskId) masked++;
                else if (r.InputIds[i] == ids[i]) unchanged++;
                else random++;
            }
        }
        Assert.Equal(100_000, tokens);
        WithinFourSigma(0.15, selected, tokens);
        // A random replacement is uniform over all V ids, so it can land on [MASK] or on the original id.
        WithinFourSigma(0.8 + 0.1 / V, masked, selected);
        WithinFourSigma(0.1 + 0.1 / V, unchanged, selected);
        WithinFourSigma(0.1 * (V - 2) / V, random, selected);
    }

    [Fact]
    public void Special_tokens_and_padding_are_never_selected_even_at_probability_one()
    {
        var m = Masker(new MaskingOptions { Probability = 1.0 });
        int[] ids = [Cls, 10, 11, Sep, 12, Unk, MaskId, Sep, Pad, Pad];
        var r = m.Mask(ids, 1, 0, 0);
        Assert.Equal([-100, 10, 11, -100, 12, -100, -100, -100, -100, -100], r.Labels);
        foreach (int i in new[] { 0, 3, 5, 6, 7, 8, 9 }) Assert.Equal(ids[i], r.InputIds[i]);
    }

    [Fact]
    public void Seed_epoch_and_example_index_alone_determine_the_mask()
    {
        var m = Masker();
        var ids = Enumerable.Range(5, 400).ToArray();
        var a = m.Mask(ids, 3, 0, 17);
        Assert.Equal(a.InputIds, m.Mask(ids, 3, 0, 17).InputIds);
        Assert.Equal(a.Labels, m.Mask(ids, 3, 0, 17).Labels);
        Assert.NotEqual(a.Labels, m.Mask(ids, 3, 1, 17).Labels);
        Assert.NotEqual(a.Labels, m.Mask(ids, 4, 0, 17).Labels);
        Assert.NotEqual(a.Labels, m.Mask(ids, 3, 0, 18).Labels);
        // Batch order does not matter: each row is masked by its own example index.
        var collator = new PaddingCollator(Pad);
        int[] x = [Cls, 10, 11, 12, Sep], y = [Cls, 20, 21, Sep];
        var ab = m.Collate([x, y], [5, 6], 9, 2, collator);
        var ba = m.Collate([y, x], [6, 5], 9, 2, collator);
        Assert.Equal(ab.InputIds.AsSpan(0, 5).ToArray(), ba.InputIds.AsSpan(5, 5).ToArray());
        Assert.Equal(ab.Labels!.AsSpan(5, 4).ToArray(), ba.Labels!.AsSpan(0, 4).ToArray());
        Assert.Equal(-100, ab.Labels![9]); // padding of the shorter row
    }

    [Fact]
    public void Whole_word_masking_selects_complete_words_up_to_round_n_times_p_tokens()
    {
        var m = Masker(new MaskingOptions { WholeWord = true });
        // 200 tokens: [CLS], words of 1–3 pieces (start id 10+k, pieces 900+), [SEP].
        var ids = new List<int> { Cls };
        var wordOf = new List<int> { -1 };
        var rng = new TrainingRandom(5);
        for (int w = 0; ids.Count < 199; w++)
        {
            int pieces = Math.Min(1 + rng.Next(3), 199 - ids.Count);
            for (int k = 0; k < pieces; k++) { ids.Add(k == 0 ? 10 + rng.Next(800) : 900 + rng.Next(100)); wordOf.Add(w); }
        }
        ids.Add(Sep); wordOf.Add(-1);
        for (int epoch = 0; epoch < 20; epoch++)
        {
            var r = m.Mask(ids, 11, epoch, 0);
            var selected = Enumerable.Range(0, ids.Count).Where(i => r.Labels[i] != -100).ToList();
            Assert.Equal(30, selected.Count); // round(200 · 0.15); single-token words always fit the remainder
            foreach (var word in selected.Select(i => wordOf[i]).Distinct())
                Assert.All(Enumerable.Range(0, ids.Count).Where(i => wordOf[i] == word), i => Assert.NotEqual(-100, r.Labels[i]));
        }
    }

    [Fact]
    public void Group_texts_concatenates_CLS_text_SEP_sequences_into_full_blocks_and_drops_the_tail()
    {
        int[][] lines = [[Cls, 10, 11, Sep], [Cls, 12, Sep], [Cls, 13, 14, 15, Sep]];
        var blocks = MaskedLanguageModeling.GroupTexts(lines, 5).ToList();
        Assert.Equal([[Cls, 10, 11, Sep, Cls], [12, Sep, Cls, 13, 14]], blocks);
        var tok = BertTokenizer.FromPath(SharedData.DataFile("bert-base-uncased", "tokenizer.json"));
        var fromText = MaskedLanguageModeling.GroupTexts(tok, ["Hello world", "good day"], 4).ToList();
        Assert.Equal([[101, 7592, 2088, 102], [101, 2204, 2154, 102]], fromText);
    }

    [Fact]
    public void For_a_BERT_tokenizer_its_specials_are_protected_and_MASK_is_its_mask_id()
    {
        var tok = BertTokenizer.FromPath(SharedData.DataFile("bert-base-uncased", "tokenizer.json"));
        var m = MaskedLanguageModeling.ForTokenizer(tok, new MaskingOptions { Probability = 1.0, MaskReplaceProbability = 1.0, RandomReplaceProbability = 0 });
        var r = m.Mask(tok.Encode("unaffable tokens").Ids, 0, 0, 0);
        Assert.Equal(101, r.InputIds[0]);
        Assert.Equal(102, r.InputIds[^1]);
        Assert.All(r.InputIds[1..^1], id => Assert.Equal(103, id));
    }

    [Fact]
    public void Invalid_probabilities_and_ids_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Masker(new MaskingOptions { Probability = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Masker(new MaskingOptions { MaskReplaceProbability = 0.95, RandomReplaceProbability = 0.1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Masker().Mask([5, V], 0, 0, 0));
        Assert.Throws<ArgumentException>(() => new MaskedLanguageModeling(V, MaskId, [], options: new MaskingOptions { WholeWord = true }));
    }
}
