namespace Sharpformer.Hub;

/// <summary>Where the Hugging Face cache lives, which endpoint to talk to, and how.</summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Cache root holding <c>models--org--name/</c> folders.</summary>
    public required string CacheDir { get; init; }

    /// <summary>Hub base URL (<c>HF_ENDPOINT</c>), without a trailing slash.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Bearer token (<c>HF_TOKEN</c>) for private or gated repos; never sent to another host after a redirect.</summary>
    public string? Token { get; init; }

    /// <summary>No network at all (<c>HF_HUB_OFFLINE=1</c>): only cached files resolve.</summary>
    public bool Offline { get; init; }

    /// <summary>Longest wait for the response headers of a request.</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait for the next chunk of a download before it counts as interrupted (the partial file is kept).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Options from the process environment (see <see cref="FromEnvironment(Func{string, string?})"/>).</summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>
    /// huggingface_hub's rules: cache = <c>HF_HUB_CACHE</c>, else <c>HUGGINGFACE_HUB_CACHE</c>, else <c>HF_HOME/hub</c>,
    /// else <c>~/.cache/huggingface/hub</c> (<c>XDG_CACHE_HOME</c> replaces <c>~/.cache</c>); endpoint <c>HF_ENDPOINT</c>;
    /// token <c>HF_TOKEN</c>; offline when <c>HF_HUB_OFFLINE</c> is 1/true/yes/on.
    /// </summary>
    public static HubOptions FromEnvironment(Func<string, string?> getenv)
    {
        string? cache = NonEmpty(getenv("HF_HUB_CACHE")) ?? NonEmpty(getenv("HUGGINGFACE_HUB_CACHE"));
        if (cache is null)
        {
            var home = NonEmpty(getenv("HF_HOME"));
            if (home is null)
            {
                var xdg = NonEmpty(getenv("XDG_CACHE_HOME"))
                    ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
                home = Path.Combine(xdg, "huggingface");
            }
            cache = Path.Combine(ExpandHome(home), "hub");
        }
        var offline = NonEmpty(getenv("HF_HUB_OFFLINE"))?.ToLowerInvariant() is "1" or "true" or "yes" or "on";
        return new HubOptions
        {
            CacheDir = ExpandHome(cache),
            Endpoint = (NonEmpty(getenv("HF_ENDPOINT")) ?? DefaultEndpoint).TrimEnd('/'),
            Token = NonEmpty(getenv("HF_TOKEN")),
            Offline = offline,
        };
    }

    static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    static string ExpandHome(string p) =>
        p.StartsWith("~/", StringComparison.Ordinal) || p == "~"
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), p.Length > 2 ? p[2..] : "")
            : p;
}

/// <summary>Download progress of one file.</summary>
/// <param name="FileName">Path of the file inside the repo.</param>
/// <param name="BytesDownloaded">Bytes on disk so far (including a resumed prefix).</param>
/// <param name="TotalBytes">Expected size, when the server said.</param>
public readonly record struct DownloadProgress(string FileName, long BytesDownloaded, long? TotalBytes);
