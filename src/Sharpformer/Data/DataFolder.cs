namespace Sharpformer.Data;

/// <summary>
/// Where the shared datasets live: an explicit folder, else the <c>SHARPFORMER_DATA</c> environment variable, else a
/// <c>shared/data</c> folder above the working directory or the program (a clone next to the project's shared folder).
/// </summary>
public static class DataFolder
{
    public const string EnvironmentVariable = "SHARPFORMER_DATA";

    /// <summary>The folder to read datasets from; throws when the argument or the variable names a missing folder, or nothing is found.</summary>
    public static string Resolve(string? given = null)
    {
        if (!string.IsNullOrEmpty(given))
            return Directory.Exists(given) ? given : throw new SharpformerException($"Data folder '{given}' (--data) does not exist; pass --data DIR or set {EnvironmentVariable}.");
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
            return Directory.Exists(env) ? env : throw new SharpformerException($"Data folder '{env}' ({EnvironmentVariable}) does not exist; pass --data DIR or fix {EnvironmentVariable}.");
        return Search(Directory.GetCurrentDirectory()) ?? Search(AppContext.BaseDirectory)
            ?? throw new SharpformerException($"No data folder given: pass --data DIR or set {EnvironmentVariable} (the folder holding ag_news/, emotion/, conll2003/); no shared/data folder was found above the working directory.");
    }

    /// <summary>The first <c>shared/data</c> folder in <paramref name="start"/> or one of its parents, or null.</summary>
    public static string? Search(string start)
    {
        for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
