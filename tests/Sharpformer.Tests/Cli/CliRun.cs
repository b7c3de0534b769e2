using Sharpformer.Cli;

namespace Sharpformer.Tests.Cli;

/// <summary>Runs the CLI in process with empty stdin and captured stdout/stderr.</summary>
static class CliRun
{
    public static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var output = new StringWriter(); var error = new StringWriter();
        int code = CliHost.Invoke(args, new StringReader(""), output, error);
        return (code, output.ToString(), error.ToString());
    }
}
