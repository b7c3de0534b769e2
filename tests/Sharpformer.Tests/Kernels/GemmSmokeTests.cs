using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

public class GemmSmokeTests
{
    [Fact]
    public void TwoByTwoProductIsHandComputable()
    {
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = new float[4];
        Gemm.Sgemm(false, false, 2, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        Assert.Equal([19f, 22f, 43f, 50f], c);
    }

    [Fact]
    public void SharedFolderIsFound() => Assert.True(File.Exists(SharedData.Fixture("README.md")));
}
