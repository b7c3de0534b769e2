namespace Sharpformer.Tests;

/// <summary>The clone the tests were built from: the folder above the test binaries that holds Sharpformer.sln.</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sharpformer.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("cannot find the repository root (Sharpformer.sln) above the test binaries.");
    }
}
