namespace Sharpformer.Tests;

/// <summary>
/// Locates the read-only ../shared folder (data and reference fixtures) beside the repository clone.
/// Override with the SHARPFORMER_SHARED environment variable.
/// </summary>
public static class SharedData
{
    public static string Root { get; } = Find();

    public static string Fixtures => Path.Combine(Root, "fixtures");
    public static string Data => Path.Combine(Root, "data");
    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);
    public static string DataFile(params string[] parts) => Path.Combine([Data, .. parts]);

    static string Find()
    {
        var env = Environment.GetEnvironmentVariable("SHARPFORMER_SHARED");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "fixtures"))) return candidate;
        }
        throw new DirectoryNotFoundException("Cannot find the shared/ folder (with fixtures/) above the test binaries; set SHARPFORMER_SHARED.");
    }
}
