using Sharpformer.Data;

namespace Sharpformer.Tests.Data;

/// <summary>The CMUdict G2P reader and vocabulary: stress stripped, pronunciations grouped by word, errors name file and line.</summary>
public class CmuDictTests
{
    [Fact]
    public void ReadsPronunciationsStripsStressAndGroupsVariantsByWord()
    {
        using var dir = new TempDir();
        var path = dir.Write("dev.tsv", "tomato\tT AH0 M EY1 T OW2\ntomato\tT AH0 M AA1 T OW2\ncat\tK AE1 T\n");
        var entries = CmuDict.Read(path);
        Assert.Equal(["T", "AH", "M", "EY", "T", "OW"], entries[0].Phonemes);
        Assert.Equal(["T", "AH0", "M", "EY1", "T", "OW2"], CmuDict.Read(path, keepStress: true)[0].Phonemes);
        var words = CmuDict.ByWord(entries);
        Assert.Equal(["tomato", "cat"], words.Select(w => w.Word));
        Assert.Equal(2, words[0].References.Count);
    }

    [Fact]
    public void AMalformedLineRaisesAnErrorNamingFileAndLine()
    {
        using var dir = new TempDir();
        var path = dir.Write("train.tsv", "cat\tK AE1 T\ndog D AO1 G\n");
        var e = Assert.Throws<DataFormatException>(() => CmuDict.Read(path));
        Assert.Contains("train.tsv:2:", e.Message);
        var bad = dir.Write("bad.tsv", "cat\tK ae T\n");
        Assert.Contains("bad.tsv:1:", Assert.Throws<DataFormatException>(() => CmuDict.Read(bad)).Message);
    }

    [Fact]
    public void VocabularyKeepsSpecialsFirstAndRoundTripsThroughVocabJson()
    {
        var v = G2PVocabulary.Build([new G2PEntry("cab", ["K", "AE", "B"])]);
        Assert.Equal(4 + 3 + 3, v.Count);   // <pad> <s> </s> <unk>, letters a b c, phonemes AE B K
        Assert.Equal([4, 5, 6], v.EncodeWord("ABC"));
        Assert.Equal([G2PVocabulary.Unk], v.EncodeWord("z"));
        var target = v.EncodePhonemes(["K", "AE", "B"]);
        Assert.Equal([G2PVocabulary.Bos, 9, 7, 8, G2PVocabulary.Eos], target);
        Assert.Equal(["K", "AE", "B"], v.DecodePhonemes(target.Skip(1).Append(9)));   // stops at EOS
        using var dir = new TempDir();
        v.Save(dir.Path);
        var back = G2PVocabulary.Load(dir.Path);
        Assert.Equal(v.Count, back.Count);
        Assert.Equal(target, back.EncodePhonemes(["K", "AE", "B"]));
    }

    [Fact]
    public void TheSharedSplitHasTheWordCountsOfItsSourceMd()
    {
        var dir = SharedData.DataFile("cmudict");
        Assert.Equal(6249, CmuDict.ByWord(CmuDict.Read(Path.Combine(dir, "test.tsv"))).Count);
        Assert.Equal(6287, CmuDict.ByWord(CmuDict.Read(Path.Combine(dir, "dev.tsv"))).Count);
    }
}
