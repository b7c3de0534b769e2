namespace Sharpformer.Cli;

/// <summary>Turns library exceptions into one clear line on stderr and a non-zero exit code — never a raw stack trace.</summary>
internal static class CliErrors
{
    public static int Run(Func<int> body, TextWriter? error = null)
    {
        error ??= Console.Error;
        try { return body(); }
        catch (OperationCanceledException) { error.WriteLine("error: cancelled."); return 130; }
        catch (Exception e) when (e is SharpformerException or IOException or UnauthorizedAccessException
                                      or ArgumentException or FormatException or InvalidOperationException or NotSupportedException)
        {
            error.WriteLine($"error: {e.Message}");
            if (Environment.GetEnvironmentVariable("SHARPFORMER_DEBUG") == "1") error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>
    /// Says on stderr which weights a checkpoint did not provide (HF's "Some weights of … are newly initialized" warning), so a
    /// verb run on a mismatched checkpoint never prints random outputs without a word.
    /// </summary>
    public static void WarnAboutLoad(Models.PretrainedModel model, TextWriter error)
    {
        foreach (var line in model.LoadReport?.Warnings(model.Architecture) ?? []) error.WriteLine($"warning: {line}");
    }
}
