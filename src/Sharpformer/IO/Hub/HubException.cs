namespace Sharpformer.Hub;

/// <summary>
/// A model could not be resolved or downloaded: file missing on the hub (404), access denied, size mismatch,
/// offline mode without a cached copy. The message names the repo, file and URL and says what to do.
/// </summary>
/// <remarks>Lives in <c>Sharpformer.Hub</c> (not <c>Checkpoints</c>) because the Hub layer depends on nothing.</remarks>
public sealed class HubException : SharpformerException
{
    public HubException(string message, string? repoId = null, string? fileName = null, string? url = null, int? statusCode = null, Exception? inner = null)
        : base(message, inner)
    {
        RepoId = repoId;
        FileName = fileName;
        Url = url;
        StatusCode = statusCode;
    }

    public string? RepoId { get; }
    public string? FileName { get; }
    public string? Url { get; }

    /// <summary>HTTP status when the server answered with an error.</summary>
    public int? StatusCode { get; }
}
