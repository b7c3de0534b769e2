using System.CommandLine;
using Sharpformer.Hub;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer download &lt;model-id&gt;</c>: fetch a model into the Hugging Face cache and print its directory.</summary>
internal static class DownloadCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("model") { Description = "Hub model id (e.g. bert-base-uncased or org/name)." };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit hash.", DefaultValueFactory = _ => "main" };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Cache root (default: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)." };
        var offline = new Option<bool>("--offline") { Description = "Only look in the cache (same as HF_HUB_OFFLINE=1)." };
        var cmd = new Command("download", "Download a model's config, tokenizer files and weights into the Hugging Face cache; print the snapshot directory.");
        cmd.Arguments.Add(id);
        cmd.Options.Add(revision);
        cmd.Options.Add(cacheDir);
        cmd.Options.Add(offline);
        // CliErrors here too: System.CommandLine's default handler would otherwise print a stack trace before Program sees it.
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var options = HubOptions.FromEnvironment();
            if (parse.GetValue(cacheDir) is { } dir) options = options with { CacheDir = dir };
            if (parse.GetValue(offline)) options = options with { Offline = true };
            var progress = new ConsoleProgress();
            var path = ModelResolver.Resolve(parse.GetValue(id)!, parse.GetValue(revision)!, options, progress);
            progress.Finish();
            Console.WriteLine(path);
            return 0;
        }));
        return cmd;
    }

    /// <summary>One updating stderr line per file, so stdout stays just the path.</summary>
    sealed class ConsoleProgress : IProgress<DownloadProgress>
    {
        string? _file;

        public void Report(DownloadProgress p)
        {
            if (_file is not null && _file != p.FileName) Console.Error.WriteLine();
            _file = p.FileName;
            var total = p.TotalBytes is long t && t > 0 ? $" / {t / 1e6:F1} MB ({100.0 * p.BytesDownloaded / t:F0}%)" : "";
            Console.Error.Write($"\r{p.FileName}: {p.BytesDownloaded / 1e6:F1} MB{total}   ");
        }

        public void Finish()
        {
            if (_file is not null) Console.Error.WriteLine();
        }
    }
}
