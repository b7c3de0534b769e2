using System.Text.RegularExpressions;

namespace Sharpformer.Hub;

/// <summary>
/// The Hugging Face cache layout: <c>{cache}/models--{org}--{name}/</c> with <c>refs/{revision}</c> (holding a commit hash),
/// <c>blobs/{etag}</c> (file contents) and <c>snapshots/{commit}/{path}</c> (symlinks to blobs, or copies).
/// </summary>
public static partial class HubCache
{
    /// <summary><c>org/name</c> → <c>models--org--name</c>.</summary>
    public static string RepoFolderName(string repoId)
    {
        ValidateRepoId(repoId);
        return "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
    }

    /// <summary>Throws <see cref="HubException"/> unless <paramref name="repoId"/> looks like <c>name</c> or <c>org/name</c>.</summary>
    public static void ValidateRepoId(string repoId)
    {
        if (!RepoIdPattern().IsMatch(repoId) || repoId.Contains("--", StringComparison.Ordinal) || repoId.Contains("..", StringComparison.Ordinal))
            throw new HubException(
                $"'{repoId}' is neither an existing local directory nor a valid Hugging Face model id (expected 'name' or 'org/name' " +
                "of letters, digits, '-', '_', '.'). Check the path or the id.", repoId);
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})?$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>True for a full 40-hex-digit commit hash.</summary>
    public static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    /// <summary>Throws unless <paramref name="fileName"/> is a relative path inside the repo (no <c>..</c>, no rooted path).</summary>
    public static void ValidateFileName(string fileName)
    {
        if (fileName.Length == 0 || Path.IsPathRooted(fileName) || fileName.Contains('\\')
            || fileName.Split('/').Any(s => s is "" or "." or ".."))
            throw new HubException($"'{fileName}' is not a valid file path inside a repo.", fileName: fileName);
    }

    /// <summary>
    /// Throws <see cref="HubException"/> unless <paramref name="revision"/> is a usable branch, tag or commit (<c>main</c>,
    /// <c>v1.0</c>, <c>refs/pr/1</c>): it goes into the URL path, where <c>.</c> or <c>..</c> would be resolved away and
    /// silently fetch another path.
    /// </summary>
    public static void ValidateRevision(string revision)
    {
        if (revision.Length is 0 or > 256 || revision.Contains('\\') || revision.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))
            || revision.Split('/').Any(s => s is "" or "." or ".."))
            throw new HubException($"'{revision}' is not a valid revision: expected a branch, tag or commit hash such as 'main', 'v1.0' " +
                "or 'refs/pr/1' (no empty, '.' or '..' parts, no backslashes or spaces).");
    }

    /// <summary>The commit a revision points to in the cache (the revision itself if it is a commit hash), or null.</summary>
    public static string? ResolveCommit(string cacheDir, string repoId, string revision)
    {
        if (IsCommitHash(revision)) return revision;
        if (revision.Contains('/') || revision.Contains('\\') || revision.Contains("..", StringComparison.Ordinal)) return null;
        var refFile = Path.Combine(cacheDir, RepoFolderName(repoId), "refs", revision);
        if (!File.Exists(refFile)) return null;
        var commit = File.ReadAllText(refFile).Trim();
        return IsCommitHash(commit) ? commit : null;
    }

    /// <summary>The snapshot folder of a revision if it is in the cache, else null.</summary>
    public static string? TryGetSnapshotDirectory(string cacheDir, string repoId, string revision = "main")
    {
        var commit = ResolveCommit(cacheDir, repoId, revision);
        if (commit is null) return null;
        var dir = Path.Combine(cacheDir, RepoFolderName(repoId), "snapshots", commit);
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>The cached copy of one file of a revision, or null (like huggingface_hub's <c>try_to_load_from_cache</c>).</summary>
    public static string? TryGetCachedFile(string cacheDir, string repoId, string fileName, string revision = "main")
    {
        ValidateFileName(fileName);
        var dir = TryGetSnapshotDirectory(cacheDir, repoId, revision);
        if (dir is null) return null;
        var path = Path.Combine(dir, fileName);
        // A dangling symlink (blob deleted) does not count as cached.
        return File.Exists(path) ? path : null;
    }
}
