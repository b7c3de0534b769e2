namespace Sharpformer.Data;

/// <summary>Where the shared datasets live: an explicit folder, else the <c>SHARPFORMER_DATA</c> environment variable.</summary>
public static class DataFolder
{
    public const string EnvironmentVariable = "SHARPFORMER_DATA";

    /// <summary>The folder to read datasets from; throws if neither the argument nor the variable names an existing folder.</summary>
    public static string Resolve(string? given = null)
    {
        var dir = !string.IsNullOrEmpty(given) ? given : Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrEmpty(dir))
            throw new SharpformerException($"No data folder given: pass --data DIR or set {EnvironmentVariable} (the folder holding ag_news/, emotion/, conll2003/).");
        if (!Directory.Exists(dir))
            throw new SharpformerException($"Data folder '{dir}' does not exist; pass --data DIR or set {EnvironmentVariable}.");
        return dir;
    }
}
