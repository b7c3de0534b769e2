using Sharpformer.Classical;

namespace Sharpformer.Tests.Classical;

// The counts are the example of scikit-learn's user guide (text feature extraction, "Tf–idf term weighting");
// expected values printed by scikit-learn 1.2.1 TfidfTransformer.
public class TfidfTransformerTests
{
    static readonly int[][] Docs =
    [
        [0, 0, 0, 2], [0, 0], [0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 2, 2],
    ];

    static double[,] Dense(SparseRows rows)
    {
        var d = new double[rows.Rows, rows.Cols];
        for (int i = 0; i < rows.Rows; i++)
        {
            var (idx, val) = rows.Row(i);
            for (int k = 0; k < idx.Length; k++) d[i, idx[k]] = val[k];
        }
        return d;
    }

    static void AssertClose(double[,] expected, double[,] actual)
    {
        for (int i = 0; i < expected.GetLength(0); i++)
            for (int j = 0; j < expected.GetLength(1); j++)
                Assert.Equal(expected[i, j], actual[i, j], 1e-14);
    }

    [Fact]
    public void CountsFromTokenIds()
    {
        var counts = SparseRows.FromTokenIds(Docs, 3);
        Assert.Equal(new double[,] { { 3, 0, 1 }, { 2, 0, 0 }, { 3, 0, 0 }, { 4, 0, 0 }, { 3, 2, 0 }, { 3, 0, 2 } }, Dense(counts));
        var binary = SparseRows.FromTokenIds(Docs, 3, binary: true, skipIds: [2]);
        Assert.Equal(new double[,] { { 1, 0, 0 }, { 1, 0, 0 }, { 1, 0, 0 }, { 1, 0, 0 }, { 1, 1, 0 }, { 1, 0, 0 } }, Dense(binary));
        Assert.Throws<ArgumentException>(() => SparseRows.FromTokenIds([[3]], 3));
    }

    [Fact]
    public void DefaultsMatchScikitLearn()
    {
        var t = new TfidfTransformer();
        var x = t.FitTransform(SparseRows.FromTokenIds(Docs, 3));
        Assert.Equal([1.0, 2.252762968495368, 1.8472978603872037], t.Idf);
        AssertClose(new double[,]
        {
            { 0.85151334721046, 0.0, 0.5243329281310096 }, { 1, 0, 0 }, { 1, 0, 0 }, { 1, 0, 0 },
            { 0.5542289327998063, 0.8323642772534078, 0.0 }, { 0.63035730725644, 0.0, 0.7763051366495072 },
        }, Dense(x));
    }

    [Fact]
    public void UnsmoothedAndSublinearMatchScikitLearn()
    {
        var raw = new TfidfTransformer(smoothIdf: false);
        var x = raw.FitTransform(SparseRows.FromTokenIds(Docs, 3));
        Assert.Equal(2.791759469228055, raw.Idf[1], 1e-15);
        Assert.Equal(0.8194099510753755, Dense(x)[0, 0], 1e-14);
        Assert.Equal(0.8808994832762984, Dense(x)[4, 1], 1e-14);
        var sub = new TfidfTransformer(sublinearTf: true).FitTransform(SparseRows.FromTokenIds(Docs, 3));
        Assert.Equal(0.7506214379566958, Dense(sub)[0, 0], 1e-14);
        Assert.Equal(0.8303988213916307, Dense(sub)[5, 2], 1e-14);
    }
}
