using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Sharpformer.Tests.Hub;

/// <summary>
/// A fake Hugging Face hub on 127.0.0.1 (HttpListener, random free port) serving one repo at one commit:
/// <c>/{repo}/resolve/{revision}/{file}</c> with X-Repo-Commit, ETag/X-Linked-Etag, X-Linked-Size and Range support.
/// </summary>
internal sealed class FakeHubServer : IDisposable
{
    public const string Commit = "0123456789abcdef0123456789abcdef01234567";
    readonly HttpListener _listener = new();
    readonly Task _loop;

    public FakeHubServer(string repoId, IReadOnlyDictionary<string, byte[]> files)
    {
        RepoId = repoId;
        Files = files;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(Serve);
    }

    public string RepoId { get; }
    public IReadOnlyDictionary<string, byte[]> Files { get; }
    public int Port { get; }
    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>Answer GET with 200 and the whole file even when a Range is asked for.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>Added to the advertised X-Linked-Size (to provoke the size check).</summary>
    public long SizeLie { get; set; }

    /// <summary>When set, requests without <c>Authorization: Bearer {token}</c> get 401.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>When set, the next GET body is cut after this many bytes (connection aborted), then the setting clears.</summary>
    public int? DropAfterBytes { get; set; }

    /// <summary>When set, the next GET sends this many bytes and then stalls for <see cref="StallTime"/>.</summary>
    public int? StallAfterBytes { get; set; }

    public TimeSpan StallTime { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// When set, every request for an existing file gets 302 to this base URL + the request path (or to exactly this URL when it
    /// is not http), with the metadata headers, like the hub redirecting LFS files to its CDN.
    /// </summary>
    public string? RedirectTo { get; set; }

    /// <summary>"METHOD path range authorization" per request.</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    public static string ETagOf(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            // Concurrent handlers, so one stalled response does not block the next request.
            _ = Task.Run(() =>
            {
                try { Handle(ctx); }
                catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException) { }
                finally { try { ctx.Response.Close(); } catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException or InvalidOperationException) { } }
            });
        }
    }

    void Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        var path = Uri.UnescapeDataString(req.Url!.AbsolutePath);
        Log.Enqueue($"{req.HttpMethod} {path} {req.Headers["Range"]} {req.Headers["Authorization"]}");
        if (RequiredToken is not null && req.Headers["Authorization"] != $"Bearer {RequiredToken}")
        {
            res.StatusCode = 401;
            return;
        }
        var prefix = $"/{RepoId}/resolve/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal)) { res.StatusCode = 404; return; }
        var rest = path[prefix.Length..];
        int slash = rest.IndexOf('/');
        var revision = rest[..slash];
        var file = rest[(slash + 1)..];
        if ((revision != "main" && revision != Commit) || !Files.TryGetValue(file, out var content))
        {
            res.StatusCode = 404;
            res.AddHeader("X-Error-Code", "EntryNotFound");
            return;
        }
        res.AddHeader("X-Repo-Commit", Commit);
        res.AddHeader("ETag", $"\"{ETagOf(content)}\"");
        res.AddHeader("X-Linked-Size", (content.Length + SizeLie).ToString());
        if (RedirectTo is { } target)
        {
            res.StatusCode = 302;
            res.AddHeader("Location", target.StartsWith("http", StringComparison.Ordinal) ? target + req.Url.AbsolutePath : target);
            return;
        }
        res.AddHeader("Accept-Ranges", "bytes");
        long from = 0;
        var range = req.Headers["Range"];
        if (!IgnoreRange && range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            if (from >= content.Length) { res.StatusCode = 416; return; }
            res.StatusCode = 206;
            res.AddHeader("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}");
        }
        res.ContentLength64 = content.Length - from;
        if (req.HttpMethod == "HEAD") return;
        if (StallAfterBytes is int stall)
        {
            StallAfterBytes = null;
            res.OutputStream.Write(content, (int)from, stall);
            res.OutputStream.Flush();
            Thread.Sleep(StallTime);
            res.Abort();
            return;
        }
        if (DropAfterBytes is int cut)
        {
            DropAfterBytes = null;
            res.OutputStream.Write(content, (int)from, cut);
            res.OutputStream.Flush();
            res.Abort();
            return;
        }
        res.OutputStream.Write(content, (int)from, (int)(content.Length - from));
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
