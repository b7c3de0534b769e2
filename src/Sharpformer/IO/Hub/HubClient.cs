using System.Net;
using System.Net.Http.Headers;
using Sharpformer.Checkpoints;

namespace Sharpformer.Hub;

/// <summary>
/// Downloads files from a Hugging Face hub into the shared HF cache, the way <c>huggingface_hub.hf_hub_download</c> does,
/// so Python and Sharpformer reuse each other's downloads.
/// </summary>
/// <remarks>
/// Per file: HEAD <c>{endpoint}/{repo}/resolve/{revision}/{file}</c> (redirects followed only within the same origin) gives
/// <c>X-Repo-Commit</c>, the ETag (<c>X-Linked-Etag</c> for LFS files) and the size (<c>X-Linked-Size</c> or Content-Length).
/// The blob goes to <c>blobs/{etag}</c> through <c>blobs/{etag}.incomplete</c> (resumed with a Range request when a partial file
/// exists), is size-checked, then <c>snapshots/{commit}/{file}</c> is made a relative symlink to it (a copy where symlinks fail),
/// and <c>refs/{revision}</c> records the commit.
/// </remarks>
public sealed class HubClient : IDisposable
{
    readonly HttpClient _http;

    /// <summary>Uses <see cref="HubOptions.FromEnvironment()"/> when <paramref name="options"/> is null.</summary>
    public HubClient(HubOptions? options = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        // Redirects are followed by hand, so the token goes only to the endpoint's origin and only to http(s) URLs.
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None },
            disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("sharpformer/0.1");
    }

    public HubOptions Options { get; }

    /// <summary>The URL a file is downloaded from.</summary>
    public Uri FileUrl(string repoId, string fileName, string revision = "main") =>
        new($"{Options.Endpoint}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', fileName.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>
    /// Returns the local path of <paramref name="fileName"/> at <paramref name="revision"/>, downloading it into the cache
    /// unless it is already there. Offline, or when the hub cannot be reached, a cached copy is used if one exists.
    /// </summary>
    /// <exception cref="HubException">404 (message names file and URL), 401/403, size mismatch, offline without a cached copy.</exception>
    public async Task<string> DownloadFileAsync(string repoId, string fileName, string revision = "main",
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        HubCache.ValidateRepoId(repoId);
        HubCache.ValidateFileName(fileName);
        HubCache.ValidateRevision(revision);
        var url = FileUrl(repoId, fileName, revision);
        var cached = HubCache.TryGetCachedFile(Options.CacheDir, repoId, fileName, revision);
        if (Options.Offline)
        {
            return cached ?? throw new HubException(
                $"'{fileName}' of '{repoId}' (revision '{revision}') is not in the cache '{Options.CacheDir}' and offline mode is on " +
                "(HF_HUB_OFFLINE=1). Download it once with network access, or unset HF_HUB_OFFLINE.", repoId, fileName, url.ToString());
        }
        // A commit-pinned file that is cached cannot change: no request needed.
        if (cached is not null && HubCache.IsCommitHash(revision)) return cached;

        FileMetadata meta;
        try
        {
            meta = await HeadAsync(url, repoId, fileName, revision, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsNetworkFailure(e, cancellationToken) && cached is not null)
        {
            return cached; // hub unreachable or timing out: the cached copy is the best answer, as huggingface_hub does.
        }
        catch (Exception e) when (IsNetworkFailure(e, cancellationToken))
        {
            throw new HubException($"Cannot reach {Options.Endpoint} to download '{fileName}' of '{repoId}' ({Describe(e)}). " +
                "Check the network or HF_ENDPOINT, or use a local directory / set HF_HUB_OFFLINE=1 with a filled cache.", repoId, fileName, url.ToString(), null, e);
        }

        var repoDir = Path.Combine(Options.CacheDir, HubCache.RepoFolderName(repoId));
        var blobsDir = Path.Combine(repoDir, "blobs");
        var blobPath = Path.Combine(blobsDir, meta.ETag);
        var pointerPath = Path.Combine(repoDir, "snapshots", meta.Commit, fileName.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(blobsDir);
        Directory.CreateDirectory(Path.GetDirectoryName(pointerPath)!);
        if (revision != meta.Commit) WriteRef(repoDir, revision, meta.Commit);

        if (File.Exists(pointerPath) && new FileInfo(pointerPath).Length == meta.Size) return pointerPath;
        if (!File.Exists(blobPath) || new FileInfo(blobPath).Length != meta.Size)
            await DownloadBlobAsync(meta.DownloadUrl, blobPath, meta.Size, repoId, fileName, revision, url, progress, cancellationToken).ConfigureAwait(false);
        else progress?.Report(new DownloadProgress(fileName, meta.Size, meta.Size));
        LinkPointer(pointerPath, blobPath);
        return pointerPath;
    }

    /// <summary>Files a BERT-family model directory needs; <c>Required</c> ones must exist on the hub.</summary>
    public static IReadOnlyList<(string File, bool Required)> DefaultModelFiles { get; } =
    [
        ("config.json", true), ("vocab.txt", false), ("tokenizer_config.json", false), ("special_tokens_map.json", false), ("tokenizer.json", false),
    ];

    /// <summary>
    /// Resolves a model: an existing local directory is returned as is; otherwise <paramref name="idOrPath"/> is a hub id whose
    /// config, tokenizer files and weights (model.safetensors, else its sharded index and shards, else pytorch_model.bin) are
    /// fetched into the cache. Returns the snapshot directory.
    /// </summary>
    public async Task<string> ResolveModelDirectoryAsync(string idOrPath, string revision = "main",
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (Directory.Exists(idOrPath)) return Path.GetFullPath(idOrPath);
        HubCache.ValidateRepoId(idOrPath);
        HubCache.ValidateRevision(revision);
        string? snapshot = null;
        foreach (var (file, required) in DefaultModelFiles)
        {
            var p = await TryDownloadAsync(idOrPath, file, revision, required, progress, cancellationToken).ConfigureAwait(false);
            if (p is not null) snapshot ??= SnapshotDirOf(p, file);
        }
        string[] weightChoices = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"];
        foreach (var w in weightChoices)
        {
            var p = await TryDownloadAsync(idOrPath, w, revision, false, progress, cancellationToken).ConfigureAwait(false);
            if (p is null) continue;
            if (w.EndsWith(".index.json", StringComparison.Ordinal))
                foreach (var shard in ShardNames(p, idOrPath, w))
                    await DownloadFileAsync(idOrPath, shard, revision, progress, cancellationToken).ConfigureAwait(false);
            return snapshot ?? SnapshotDirOf(p, w);
        }
        throw new HubException(Options.Offline
            ? $"No weights of '{idOrPath}' (revision '{revision}') are in the cache '{Options.CacheDir}' and offline mode is on (HF_HUB_OFFLINE=1). " +
              "Download the model once with network access, or unset HF_HUB_OFFLINE."
            : $"'{idOrPath}' (revision '{revision}') has none of {string.Join(", ", weightChoices)}; TensorFlow/Flax-only repos are not supported.",
            idOrPath);
    }

    async Task<string?> TryDownloadAsync(string repoId, string file, string revision, bool required, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        try
        {
            return await DownloadFileAsync(repoId, file, revision, progress, ct).ConfigureAwait(false);
        }
        catch (HubException e) when (!required && (e.StatusCode == 404 || (Options.Offline && e.StatusCode is null)))
        {
            return null;
        }
    }

    static string SnapshotDirOf(string path, string fileName)
    {
        var dir = path;
        for (int i = 0; i < fileName.Split('/').Length; i++) dir = Path.GetDirectoryName(dir)!;
        return dir;
    }

    /// <summary>Every shard the index names, all validated (by the loader's own rule) before the first one is downloaded.</summary>
    static List<string> ShardNames(string indexPath, string repoId, string indexName)
    {
        try
        {
            return CheckpointLoader.ReadWeightMap(indexPath).Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        }
        catch (CheckpointFormatException e)
        {
            throw new HubException($"The shard index '{indexName}' of '{repoId}' ({indexPath}) cannot be used: {e.Problem}. " +
                "No shard was downloaded; tell the repo owner, or pick a revision with a valid index.", repoId, indexName, null, null, e);
        }
    }

    /// <summary>Connection failures and our own timeouts (not the caller's cancellation).</summary>
    static bool IsNetworkFailure(Exception e, CancellationToken callerToken) =>
        e is HttpRequestException || (e is OperationCanceledException && !callerToken.IsCancellationRequested);

    string Describe(Exception e) => e is OperationCanceledException ? $"no answer within {Options.MetadataTimeout.TotalSeconds:F0} s" : e.Message;

    sealed record FileMetadata(string Commit, string ETag, long Size, Uri DownloadUrl);

    async Task<FileMetadata> HeadAsync(Uri url, string repoId, string fileName, string revision, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.MetadataTimeout);
        var current = url;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, current);
            AddAuth(request, current);
            // Ask for the raw size: a compressed transfer would make Content-Length useless for the check.
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } loc)
            {
                var next = RedirectTarget(current, loc, repoId, fileName);
                // Same-origin redirects are repo renames (follow); other origins are the LFS CDN (download from there).
                if (SameOrigin(next, current) && hop < 5)
                {
                    current = next;
                    continue;
                }
                return BuildMetadata(response, next, repoId, fileName, url);
            }
            ThrowForStatus(response, repoId, fileName, revision, url);
            return BuildMetadata(response, current, repoId, fileName, url);
        }
    }

    static FileMetadata BuildMetadata(HttpResponseMessage response, Uri downloadUrl, string repoId, string fileName, Uri url)
    {
        string? Header(string name) => response.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault()
            : response.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;
        var commit = Header("X-Repo-Commit");
        var etag = NormalizeETag(Header("X-Linked-Etag") ?? Header("ETag"));
        long? size = long.TryParse(Header("X-Linked-Size"), out var ls) ? ls : response.Content.Headers.ContentLength;
        if (commit is null || !HubCache.IsCommitHash(commit))
            throw new HubException($"The server did not send a valid X-Repo-Commit header for '{fileName}' ({url}); is HF_ENDPOINT a Hugging Face hub?", repoId, fileName, url.ToString());
        if (etag is null)
            throw new HubException($"The server did not send an ETag for '{fileName}' ({url}), so the file cannot be cached safely.", repoId, fileName, url.ToString());
        if (size is null or < 0)
            throw new HubException($"The server did not send the size of '{fileName}' ({url}).", repoId, fileName, url.ToString());
        return new FileMetadata(commit, etag, size.Value, downloadUrl);
    }

    static string? NormalizeETag(string? etag)
    {
        if (etag is null) return null;
        if (etag.StartsWith("W/", StringComparison.Ordinal)) etag = etag[2..];
        etag = etag.Trim('"');
        // The etag becomes a file name: allow only what real hub etags use (hex sha1/sha256, maybe with '-').
        return etag.Length > 0 && etag.Length <= 128 && etag.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') ? etag : null;
    }

    void ThrowForStatus(HttpResponseMessage response, string repoId, string fileName, string revision, Uri url)
    {
        var status = (int)response.StatusCode;
        if (status is >= 200 and < 300) return;
        var message = status switch
        {
            404 => $"'{fileName}' was not found in model '{repoId}' at revision '{revision}' (404 from {url}). Check the model id, the revision and the file name.",
            401 or 403 => $"Access to '{fileName}' of '{repoId}' was refused ({status} from {url}). The repo may be private or gated: " +
                          (Options.Token is null ? "set HF_TOKEN to a token with access." : "check that HF_TOKEN has access and the terms are accepted."),
            416 => $"The server rejected the byte range for '{fileName}' ({url}).",
            _ => $"Downloading '{fileName}' of '{repoId}' failed with HTTP {status} {response.ReasonPhrase} ({url}). Retry later.",
        };
        throw new HubException(message, repoId, fileName, url.ToString(), status);
    }

    /// <summary>The token goes only to the endpoint's exact origin: another port or plain http may be someone else.</summary>
    void AddAuth(HttpRequestMessage request, Uri target)
    {
        if (Options.Token is null) return;
        if (Uri.TryCreate(Options.Endpoint, UriKind.Absolute, out var endpoint) && SameOrigin(endpoint, target))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Options.Token);
    }

    /// <summary>Same scheme, host and port (RFC 6454 origin; default ports made explicit by <see cref="Uri.Port"/>).</summary>
    internal static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    /// <summary>Resolves a Location header; only http(s) targets are followed (never file:, ftp: or anything else).</summary>
    static Uri RedirectTarget(Uri current, Uri location, string repoId, string fileName)
    {
        var next = location.IsAbsoluteUri ? location : new Uri(current, location);
        if (next.Scheme != Uri.UriSchemeHttp && next.Scheme != Uri.UriSchemeHttps)
            throw new HubException($"The server redirected the download of '{fileName}' of '{repoId}' from {current} to '{next}', " +
                "which is not an http(s) URL; refusing to follow it. Check HF_ENDPOINT.", repoId, fileName, current.ToString());
        return next;
    }

    async Task DownloadBlobAsync(Uri downloadUrl, string blobPath, long expectedSize, string repoId, string fileName, string revision, Uri url,
        IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        var incomplete = blobPath + ".incomplete";
        FileStream output;
        try
        {
            output = new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
        }
        catch (IOException e)
        {
            throw new HubException($"Cannot write '{incomplete}' ({e.Message}); another process may be downloading the same file. Retry when it is done.",
                repoId, fileName, url.ToString(), null, e);
        }
        await using (output.ConfigureAwait(false))
        {
            long have = output.Length;
            if (have > expectedSize) { output.SetLength(0); have = 0; }
            var current = downloadUrl;
            HttpResponseMessage? response = null;
            try
            {
                for (int hop = 0; ; hop++)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, current);
                    AddAuth(request, current);
                    request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
                    if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
                    using (var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                    {
                        headersTimeout.CancelAfter(Options.MetadataTimeout);
                        try
                        {
                            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersTimeout.Token).ConfigureAwait(false);
                        }
                        catch (Exception e) when (IsNetworkFailure(e, ct))
                        {
                            throw new HubException($"Downloading '{fileName}' failed before any data arrived ({Describe(e)}); run again.",
                                repoId, fileName, url.ToString(), null, e);
                        }
                    }
                    if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } loc && hop < 5)
                    {
                        current = RedirectTarget(current, loc, repoId, fileName);
                        response.Dispose();
                        response = null;
                        continue;
                    }
                    break;
                }
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
                {
                    // The partial file cannot be resumed (server changed?): start over next time, cleanly.
                    output.SetLength(0);
                    throw new HubException($"Resuming '{fileName}' from byte {have} was refused (416 from {current}); the partial file was discarded. Run again to download from the start.",
                        repoId, fileName, url.ToString(), 416);
                }
                ThrowForStatus(response, repoId, fileName, revision, url);
                if (response.StatusCode != HttpStatusCode.PartialContent)
                {
                    // 200: the server ignored the Range header and sends everything.
                    output.SetLength(0);
                    have = 0;
                }
                else if (response.Content.Headers.ContentRange?.From is long from && from != have)
                {
                    throw new HubException($"The server resumed '{fileName}' at byte {from} instead of {have} ({current}).", repoId, fileName, url.ToString());
                }
                output.Position = have;
                progress?.Report(new DownloadProgress(fileName, have, expectedSize));
                await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                var buffer = new byte[1 << 16];
                long lastReport = have;
                int n;
                try
                {
                    while (true)
                    {
                        // A stalled connection must not hang forever: each read gets ReadTimeout.
                        using (var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                        {
                            readTimeout.CancelAfter(Options.ReadTimeout);
                            n = await body.ReadAsync(buffer, readTimeout.Token).ConfigureAwait(false);
                        }
                        if (n == 0) break;
                        await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                        have += n;
                        if (have > expectedSize) break;
                        if (have - lastReport >= 1 << 20) { progress?.Report(new DownloadProgress(fileName, have, expectedSize)); lastReport = have; }
                    }
                }
                catch (Exception e) when (e is IOException || IsNetworkFailure(e, ct))
                {
                    await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    var why = e is OperationCanceledException ? $"no data for {Options.ReadTimeout.TotalSeconds:F1} s" : e.Message;
                    throw new HubException($"The download of '{fileName}' was interrupted after {have} of {expectedSize} bytes ({why}). " +
                        "Run again: it resumes from the partial file.", repoId, fileName, url.ToString(), null, e);
                }
                await output.FlushAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                response?.Dispose();
            }
            if (have != expectedSize)
            {
                output.SetLength(0);
                throw new HubException($"Size check failed for '{fileName}' of '{repoId}': expected {expectedSize} bytes but received {have} ({url}). " +
                    "The partial file was discarded; run again, and report it if it repeats.", repoId, fileName, url.ToString());
            }
            progress?.Report(new DownloadProgress(fileName, have, expectedSize));
        }
        File.Move(incomplete, blobPath, overwrite: true);
    }

    static void WriteRef(string repoDir, string revision, string commit)
    {
        if (revision.Contains('/') || revision.Contains('\\') || revision.Contains("..", StringComparison.Ordinal)) return;
        var refs = Path.Combine(repoDir, "refs");
        Directory.CreateDirectory(refs);
        var path = Path.Combine(refs, revision);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(tmp, commit);
        File.Move(tmp, path, overwrite: true);
    }

    static void LinkPointer(string pointerPath, string blobPath)
    {
        if (File.Exists(pointerPath) || new FileInfo(pointerPath).LinkTarget is not null) File.Delete(pointerPath);
        try
        {
            File.CreateSymbolicLink(pointerPath, Path.GetRelativePath(Path.GetDirectoryName(pointerPath)!, blobPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // Filesystems without symlinks (some Windows setups): huggingface_hub copies too.
            File.Copy(blobPath, pointerPath, overwrite: true);
        }
    }

    public void Dispose() => _http.Dispose();
}
