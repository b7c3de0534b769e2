using Sharpformer.Hub;

namespace Sharpformer.Tests.Hub;

public sealed class HubClientTests : IDisposable
{
    const string Repo = "sharp-org/tiny-bert";
    readonly string _cache = Path.Combine(Path.GetTempPath(), "sharpformer-tests", "hub-" + Guid.NewGuid().ToString("N"));
    readonly byte[] _weights;
    readonly byte[] _config = "{\"model_type\": \"bert\"}\n"u8.ToArray();
    readonly FakeHubServer _server;

    public HubClientTests()
    {
        _weights = new byte[300_000];
        new Random(5).NextBytes(_weights);
        _server = new FakeHubServer(Repo, new Dictionary<string, byte[]>
        {
            ["config.json"] = _config,
            ["model.safetensors"] = _weights,
            ["vocab.txt"] = "[PAD]\n[UNK]\n"u8.ToArray(),
            ["sub/dir/extra.txt"] = "x"u8.ToArray(),
        });
    }

    public void Dispose()
    {
        _server.Dispose();
        if (Directory.Exists(_cache)) Directory.Delete(_cache, true);
    }

    HubClient Client(bool offline = false, string? token = null, string? endpoint = null) =>
        new(new HubOptions { CacheDir = _cache, Endpoint = endpoint ?? _server.Endpoint, Offline = offline, Token = token });

    string RepoDir => Path.Combine(_cache, "models--sharp-org--tiny-bert");

    [Fact]
    public async Task Download_places_blob_snapshot_symlink_and_ref_like_huggingface_hub()
    {
        using var client = Client(token: "hf_secret");
        var reports = new List<DownloadProgress>();
        var progress = new SyncProgress<DownloadProgress>(reports.Add);
        var path = await client.DownloadFileAsync(Repo, "model.safetensors", progress: progress);

        var etag = FakeHubServer.ETagOf(_weights);
        Assert.Equal(Path.Combine(RepoDir, "snapshots", FakeHubServer.Commit, "model.safetensors"), path);
        Assert.Equal(_weights, File.ReadAllBytes(path));
        Assert.Equal(Path.Combine("..", "..", "blobs", etag), new FileInfo(path).LinkTarget);
        Assert.True(File.Exists(Path.Combine(RepoDir, "blobs", etag)));
        Assert.False(File.Exists(Path.Combine(RepoDir, "blobs", etag + ".incomplete")));
        Assert.Equal(FakeHubServer.Commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "main")));
        Assert.Equal(new DownloadProgress("model.safetensors", _weights.Length, _weights.Length), reports[^1]);
        Assert.All(_server.Log, l => Assert.EndsWith("Bearer hf_secret", l));

        // Nested paths, and a second request for a cached file only asks for metadata.
        var nested = await client.DownloadFileAsync(Repo, "sub/dir/extra.txt");
        Assert.Equal("x", File.ReadAllText(nested));
        int gets = _server.Log.Count(l => l.StartsWith("GET", StringComparison.Ordinal));
        Assert.Equal(path, await client.DownloadFileAsync(Repo, "model.safetensors"));
        Assert.Equal(gets, _server.Log.Count(l => l.StartsWith("GET", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Partial_file_is_resumed_with_a_range_request(bool serverIgnoresRange)
    {
        _server.IgnoreRange = serverIgnoresRange;
        var blobs = Path.Combine(RepoDir, "blobs");
        Directory.CreateDirectory(blobs);
        var incomplete = Path.Combine(blobs, FakeHubServer.ETagOf(_weights) + ".incomplete");
        File.WriteAllBytes(incomplete, _weights.AsSpan(0, 123_456).ToArray());
        using var client = Client();
        var path = await client.DownloadFileAsync(Repo, "model.safetensors");
        Assert.Equal(_weights, File.ReadAllBytes(path));
        Assert.Contains(_server.Log, l => l.StartsWith("GET", StringComparison.Ordinal) && l.Contains("bytes=123456-"));
        Assert.False(File.Exists(incomplete));
    }

    [Fact]
    public async Task Interrupted_download_keeps_the_partial_file_and_the_next_call_resumes()
    {
        _server.DropAfterBytes = 100_000;
        using var client = Client();
        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "model.safetensors"));
        Assert.Contains("interrupted", e.Message);
        var incomplete = Path.Combine(RepoDir, "blobs", FakeHubServer.ETagOf(_weights) + ".incomplete");
        long kept = new FileInfo(incomplete).Length;
        Assert.InRange(kept, 1, _weights.Length - 1);
        var path = await client.DownloadFileAsync(Repo, "model.safetensors");
        Assert.Equal(_weights, File.ReadAllBytes(path));
        Assert.Contains(_server.Log, l => l.Contains($"bytes={kept}-"));
    }

    [Fact]
    public async Task Stalled_download_times_out_and_resumes()
    {
        _server.StallAfterBytes = 50_000;
        using var client = new HubClient(new HubOptions { CacheDir = _cache, Endpoint = _server.Endpoint, ReadTimeout = TimeSpan.FromMilliseconds(300) });
        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "model.safetensors"));
        Assert.Contains("no data for 0.3 s", e.Message);
        var path = await client.DownloadFileAsync(Repo, "model.safetensors");
        Assert.Equal(_weights, File.ReadAllBytes(path));
        Assert.Contains(_server.Log, l => l.StartsWith("GET", StringComparison.Ordinal) && l.Contains("bytes=") && !l.Contains("bytes=0-"));
    }

    [Fact]
    public async Task Private_repo_needs_the_token()
    {
        _server.RequiredToken = "hf_abc";
        using (var anonymous = Client())
        {
            var e = await Assert.ThrowsAsync<HubException>(() => anonymous.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal(401, e.StatusCode);
            Assert.Contains("HF_TOKEN", e.Message);
        }
        using var authorised = Client(token: "hf_abc");
        Assert.Equal(_config, File.ReadAllBytes(await authorised.DownloadFileAsync(Repo, "config.json")));
    }

    [Fact]
    public async Task Size_mismatch_is_a_typed_error_and_discards_the_partial_file()
    {
        _server.SizeLie = 7;
        using var client = Client();
        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "model.safetensors"));
        Assert.Contains("Size check failed", e.Message);
        Assert.Contains($"expected {_weights.Length + 7} bytes but received {_weights.Length}", e.Message);
        var incomplete = Path.Combine(RepoDir, "blobs", FakeHubServer.ETagOf(_weights) + ".incomplete");
        Assert.Equal(0, new FileInfo(incomplete).Length);
        Assert.False(File.Exists(Path.Combine(RepoDir, "snapshots", FakeHubServer.Commit, "model.safetensors")));
    }

    [Fact]
    public async Task Missing_file_names_the_file_and_url()
    {
        using var client = Client();
        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "pytorch_model.bin"));
        Assert.Equal(404, e.StatusCode);
        Assert.Contains("'pytorch_model.bin'", e.Message);
        Assert.Contains($"{_server.Endpoint}/{Repo}/resolve/main/pytorch_model.bin", e.Message);
        Assert.Equal("pytorch_model.bin", e.FileName);
    }

    [Fact]
    public async Task Offline_mode_uses_the_cache_and_never_the_network()
    {
        using (var online = Client()) await online.DownloadFileAsync(Repo, "config.json");
        int before = _server.Log.Count;
        using var offline = Client(offline: true);
        var path = await offline.DownloadFileAsync(Repo, "config.json");
        Assert.Equal(_config, File.ReadAllBytes(path));
        var e = await Assert.ThrowsAsync<HubException>(() => offline.DownloadFileAsync(Repo, "vocab.txt"));
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Equal(before, _server.Log.Count);

        // An unreachable hub falls back to the cached copy too.
        using var dead = Client(endpoint: "http://127.0.0.1:1");
        Assert.Equal(path, await dead.DownloadFileAsync(Repo, "config.json"));
        await Assert.ThrowsAsync<HubException>(() => dead.DownloadFileAsync(Repo, "vocab.txt"));
    }

    [Fact]
    public async Task Resolve_model_prefers_local_directory_then_fetches_a_snapshot()
    {
        using var client = Client();
        var local = Path.Combine(_cache, "local-model");
        Directory.CreateDirectory(local);
        Assert.Equal(Path.GetFullPath(local), await client.ResolveModelDirectoryAsync(local));
        Assert.Empty(_server.Log);

        var dir = await client.ResolveModelDirectoryAsync(Repo);
        Assert.Equal(Path.Combine(RepoDir, "snapshots", FakeHubServer.Commit), dir);
        Assert.Equal(_weights, File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(dir, "vocab.txt")));
        Assert.False(File.Exists(Path.Combine(dir, "tokenizer.json"))); // optional, 404 on the server

        using var offline = Client(offline: true);
        Assert.Equal(dir, await offline.ResolveModelDirectoryAsync(Repo));
        Assert.Throws<HubException>(() => HubCache.ValidateRepoId("../../etc"));
        await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "../secret"));
    }

    [Fact]
    public void Model_resolver_is_the_synchronous_entry_point()
    {
        var options = new HubOptions { CacheDir = _cache, Endpoint = _server.Endpoint };
        Assert.Null(ModelResolver.TryResolveCached(Repo, options: options));
        var dir = ModelResolver.Resolve(Repo, options: options);
        Assert.Equal(_config, File.ReadAllBytes(Path.Combine(dir, "config.json")));
        Assert.Equal(dir, ModelResolver.TryResolveCached(Repo, options: options));
        Assert.Equal(dir, ModelResolver.TryResolveCached(Repo, FakeHubServer.Commit, options));

        var e = Assert.Throws<HubException>(() => ModelResolver.Resolve("sharp-org/other", options: options with { Offline = true }));
        Assert.Contains("offline", e.Message);
        var e404 = Assert.Throws<HubException>(() => ModelResolver.Resolve("sharp-org/other", options: options));
        Assert.Equal(404, e404.StatusCode);
        Assert.Contains("config.json", e404.Message);
    }

    [Fact]
    public void Options_follow_huggingface_hub_environment_rules()
    {
        var env = new Dictionary<string, string?> { ["HF_HOME"] = "/h", ["HF_ENDPOINT"] = "http://mirror/", ["HF_TOKEN"] = "t", ["HF_HUB_OFFLINE"] = "1" };
        var o = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal(Path.Combine("/h", "hub"), o.CacheDir);
        Assert.Equal("http://mirror", o.Endpoint);
        Assert.Equal("t", o.Token);
        Assert.True(o.Offline);
        env["HF_HUB_CACHE"] = "/c";
        env["HF_HUB_OFFLINE"] = "0";
        o = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal("/c", o.CacheDir);
        Assert.False(o.Offline);
        var d = HubOptions.FromEnvironment(_ => null);
        Assert.EndsWith(Path.Combine(".cache", "huggingface", "hub"), d.CacheDir);
        Assert.Equal(HubOptions.DefaultEndpoint, d.Endpoint);
    }

    [Fact]
    public async Task Token_is_not_sent_after_a_redirect_to_another_port_of_the_same_host()
    {
        using var other = new FakeHubServer(Repo, _server.Files);
        _server.RedirectTo = other.Endpoint;
        using var client = Client(token: "hf_secret");
        var path = await client.DownloadFileAsync(Repo, "model.safetensors");
        Assert.Equal(_weights, File.ReadAllBytes(path));
        Assert.NotEmpty(other.Log);
        Assert.All(other.Log, l => Assert.DoesNotContain("hf_secret", l));
        Assert.All(_server.Log, l => Assert.EndsWith("Bearer hf_secret", l));
    }

    [Theory]
    [InlineData("https://huggingface.co", "https://HuggingFace.co:443/org/x/resolve/main/f", true)]
    [InlineData("http://127.0.0.1:5000", "http://127.0.0.1:5000/a", true)]
    [InlineData("https://huggingface.co", "http://huggingface.co/a", false)]
    [InlineData("http://127.0.0.1:5000", "http://127.0.0.1:5001/a", false)]
    [InlineData("https://huggingface.co", "https://cdn-lfs.huggingface.co/a", false)]
    public void Same_origin_means_scheme_host_and_port(string endpoint, string target, bool same) =>
        Assert.Equal(same, HubClient.SameOrigin(new Uri(endpoint), new Uri(target)));

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://127.0.0.1/model.safetensors")]
    public async Task Redirect_to_a_non_http_scheme_is_a_hub_error(string target)
    {
        _server.RedirectTo = target;
        using var client = Client();
        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "model.safetensors"));
        Assert.Contains("not an http(s) URL", e.Message);
        Assert.Contains(target, e.Message);
        Assert.False(Directory.Exists(Path.Combine(RepoDir, "snapshots")));
    }

    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("")]
    [InlineData("main/..")]
    [InlineData("../main")]
    [InlineData("refs//main")]
    [InlineData("a\\b")]
    [InlineData("main ")]
    public async Task Invalid_revision_is_refused_before_any_request(string revision)
    {
        using var client = Client(token: "hf_secret");
        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(Repo, "config.json", revision));
        Assert.Contains("not a valid revision", e.Message);
        await Assert.ThrowsAsync<HubException>(() => client.ResolveModelDirectoryAsync(Repo, revision));
        Assert.Throws<HubException>(() => ModelResolver.TryResolveCached(Repo, revision, new HubOptions { CacheDir = _cache }));
        Assert.Empty(_server.Log);
        HubCache.ValidateRevision("refs/pr/1"); // branch-like paths stay valid
        HubCache.ValidateRevision(FakeHubServer.Commit);
    }

    [Theory]
    [InlineData("\"sub/model-00001.safetensors\"", "not a plain file name")]
    [InlineData("\"../model-00001.safetensors\"", "not a plain file name")]
    [InlineData("3", "is a JSON Number, not a shard file name")]
    public async Task Shard_index_the_loader_would_refuse_downloads_no_shard(string shardJson, string problem)
    {
        var index = $"{{\"metadata\": {{}}, \"weight_map\": {{\"bert.pooler.dense.bias\": \"model-00002.safetensors\", \"bert.pooler.dense.weight\": {shardJson}}}}}";
        using var server = new FakeHubServer(Repo, new Dictionary<string, byte[]>
        {
            ["config.json"] = _config,
            ["model.safetensors.index.json"] = System.Text.Encoding.UTF8.GetBytes(index),
            ["sub/model-00001.safetensors"] = _weights,
            ["model-00002.safetensors"] = _weights,
        });
        using var client = Client(endpoint: server.Endpoint);
        var e = await Assert.ThrowsAsync<HubException>(() => client.ResolveModelDirectoryAsync(Repo));
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Contains("'bert.pooler.dense.weight'", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.IsType<Sharpformer.Checkpoints.CheckpointFormatException>(e.InnerException);
        Assert.DoesNotContain(server.Log, l => l.Contains("model-0000", StringComparison.Ordinal));
    }

    /// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
