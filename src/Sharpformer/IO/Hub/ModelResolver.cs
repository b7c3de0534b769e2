namespace Sharpformer.Hub;

/// <summary>
/// Turns what a user typed (a directory, or a hub id such as <c>bert-base-uncased</c> / <c>org/name</c>) into a local model
/// directory — the one entry point <c>AutoModel.FromPretrained</c> and the CLI use.
/// </summary>
public static class ModelResolver
{
    /// <summary>
    /// An existing directory is returned unchanged (it wins over a hub id of the same name). Otherwise the id is resolved in
    /// the HF cache and, unless offline, missing or stale files are downloaded (config, tokenizer files, weights).
    /// </summary>
    /// <param name="idOrPath">Directory path or hub model id.</param>
    /// <param name="revision">Branch, tag or commit hash.</param>
    /// <param name="options">Cache/endpoint/token/offline settings; default from the environment (HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).</param>
    /// <param name="progress">Per-file download progress.</param>
    /// <param name="cancellationToken">Cancels a download (the partial file is kept for resuming).</param>
    /// <exception cref="HubException">not a directory and not resolvable (offline and uncached, 404, access refused, ...).</exception>
    public static string Resolve(string idOrPath, string revision = "main", HubOptions? options = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(idOrPath);
        if (Directory.Exists(idOrPath)) return Path.GetFullPath(idOrPath);
        using var client = new HubClient(options);
        // Blocking wrapper for synchronous callers; the client never captures a synchronisation context.
        return client.ResolveModelDirectoryAsync(idOrPath, revision, progress, cancellationToken).GetAwaiter().GetResult();
    }

    /// <summary>The cached snapshot directory of a hub id without any network access, or null.</summary>
    public static string? TryResolveCached(string modelId, string revision = "main", HubOptions? options = null)
    {
        options ??= HubOptions.FromEnvironment();
        HubCache.ValidateRepoId(modelId);
        HubCache.ValidateRevision(revision);
        return HubCache.TryGetSnapshotDirectory(options.CacheDir, modelId, revision);
    }
}
