using System.Diagnostics;
using System.Xml.Linq;
using Sharpformer.Cli;
using Sharpformer.Cli.Commands;
using Sharpformer.Data;

namespace Sharpformer.Tests.Cli;

/// <summary>Parsing rules every verb shares, the launcher script and the package metadata.</summary>
public class CliUsageTests
{
    static (int Code, string Out, string Err) Cli(string stdin, params string[] args)
    {
        var output = new StringWriter(); var error = new StringWriter();
        int code = CliHost.Invoke(args, new StringReader(stdin), output, error);
        return (code, output.ToString(), error.ToString());
    }

    static string Seqcls => SharedData.Fixture("bert-tiny-uncased-seqcls");

    [Theory]
    [InlineData("--top-k", "classify", "--model", "{m}", "--topk", "3", "hello")]
    [InlineData("--batch-size", "embed", "--model", "{m}", "hello", "--batchsize", "2")]
    [InlineData("--outputs", "forward", "--model", "{m}", "--output", "logits", "hello")]
    [InlineData(null, "summary", "--model", "{m}", "--frobnicate")]
    public void UnknownOption_IsRejectedByName_WithASuggestion(string? suggestion, params string[] args)
    {
        var (code, stdout, stderr) = Cli("", args.Select(a => a.Replace("{m}", Seqcls)).ToArray());
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        string unknown = args.SkipWhile(a => a != "--model").Skip(2).First(a => a.StartsWith("--", StringComparison.Ordinal));
        Assert.StartsWith($"error: unknown option '{unknown}'", line);
        if (suggestion is null) Assert.DoesNotContain("did you mean", line);
        else Assert.Contains($"(did you mean {suggestion}?)", line);
    }

    [Fact]
    public void TextAfterDoubleDash_MayStartWithADash()
    {
        var (code, stdout, stderr) = Cli("", "classify", "--model", Seqcls, "--", "--not-an-option");
        Assert.True(code == 0, stderr);
        Assert.StartsWith("  ", stdout);
    }

    [Fact]
    public void BadOptionValue_IsOneLine_NotTheHelp()
    {
        var (code, stdout, stderr) = Cli("", "train", "text-classifier", "--train", "x.csv", "--output", "o", "--architecture", "seed-transformer", "--epochs", "abc");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("abc", line);
        Assert.Contains("--epochs", line);
        Assert.DoesNotContain("Usage", stderr);
    }

    [Fact]
    public void Help_NamesTheToolSharpformer()
    {
        var (code, stdout, _) = Cli("", "classify", "--help");
        Assert.Equal(0, code);
        Assert.Contains("sharpformer classify", stdout);
        Assert.DoesNotContain("Sharpformer.Cli", stdout);
    }

    [Fact]
    public void TextClassifier_Limit_TrainsOnTheFirstNTexts()
    {
        var dir = Directory.CreateTempSubdirectory("sf-limit-").FullName;
        var train = Path.Combine(dir, "train.txt");
        File.WriteAllLines(train, File.ReadLines(SharedData.DataFile("emotion", "train.txt")).Take(50));
        var r = Cli("", "train", "text-classifier", "--train", train, "--architecture", "seed-transformer", "--output", Path.Combine(dir, "m"),
            "--epochs", "1", "--batch-size", "8", "--limit", "16", "--no-progress", "--json");
        Assert.True(r.Code == 0, r.Err);
        // 16 texts at batch 8 = 2 steps (the whole file would take 7).
        var end = File.ReadAllLines(Path.Combine(dir, "m", "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Single(e => e.GetProperty("kind").GetString() == "train_end");
        Assert.Equal(2, end.GetProperty("step").GetInt32());
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void Forward_ReadsJsonLinesFromRedirectedStdin_WithoutJsonl_AndTextsFromArguments()
    {
        var (code, stdout, stderr) = Cli("{\"text\": \"hello world\"}\n", "forward", "--model", Seqcls);
        Assert.True(code == 0, stderr);
        var fromStdin = Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var (code2, stdout2, stderr2) = Cli("", "forward", "--model", Seqcls, "hello world");
        Assert.True(code2 == 0, stderr2);
        Assert.Equal(fromStdin, Assert.Single(stdout2.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Contains("\"logits\":[", fromStdin);
    }

    [Fact]
    public void DataFolder_IsFoundAsSharedDataAboveAStartFolder_AndByDefault()
    {
        var root = Directory.CreateTempSubdirectory("sf-data-").FullName;
        try
        {
            var data = Directory.CreateDirectory(Path.Combine(root, "shared", "data")).FullName;
            var clone = Directory.CreateDirectory(Path.Combine(root, "clone", "sub")).FullName;
            Assert.Equal(data, DataFolder.Search(clone));
        }
        finally { Directory.Delete(root, recursive: true); }
        // baseline and train seed-agnews both call DataFolder.Resolve: without --data or the variable it finds ../shared/data
        // above the test binaries, as above a clone.
        var env = Environment.GetEnvironmentVariable(DataFolder.EnvironmentVariable);
        Assert.Equal(Path.GetFullPath(string.IsNullOrEmpty(env) ? SharedData.Data : env), Path.GetFullPath(DataFolder.Resolve(null)));
    }


    [Theory]
    [InlineData("src/Sharpformer/Sharpformer.csproj")]
    [InlineData("src/Sharpformer.Serving/Sharpformer.Serving.csproj")]
    [InlineData("src/Sharpformer.Cli/Sharpformer.Cli.csproj")]
    public void Package_HasDescriptionAndReadme(string project)
    {
        var root = Repository.Root;
        var doc = XDocument.Load(Path.Combine(root, project));
        Assert.True((doc.Descendants("Description").SingleOrDefault()?.Value.Length ?? 0) > 40, "Description missing or too short");
        Assert.Equal("README.md", doc.Descendants("PackageReadmeFile").Single().Value);
        var readme = doc.Descendants("None").Single(e => (string?)e.Attribute("Pack") == "true");
        Assert.True(File.Exists(Path.GetFullPath(Path.Combine(root, Path.GetDirectoryName(project)!, readme.Attribute("Include")!.Value))));
    }

    /// <summary>
    /// The launcher in a fake clone with a stand-in <c>dotnet</c> that logs its calls: build output under obj/ (a Debug
    /// build's generated .cs) does not trigger a rebuild; a changed .csproj does, with a one-line notice and no MSBuild chatter.
    /// </summary>
    [Fact]
    public void Launcher_RebuildsOnlyForReleaseSources_WithAOneLineNotice()
    {
        if (OperatingSystem.IsWindows()) return;
        var clone = Directory.CreateTempSubdirectory("sf-launcher-").FullName;
        try
        {
            File.Copy(Path.Combine(Repository.Root, "sharpformer"), Path.Combine(clone, "sharpformer"));
            var cli = Directory.CreateDirectory(Path.Combine(clone, "src", "Sharpformer.Cli")).FullName;
            File.WriteAllText(Path.Combine(cli, "Program.cs"), "// source\n");
            File.WriteAllText(Path.Combine(cli, "Sharpformer.Cli.csproj"), "<Project />\n");
            var bin = Directory.CreateDirectory(Path.Combine(clone, "fakebin")).FullName;
            var log = Path.Combine(clone, "dotnet.log");
            var dll = Path.Combine(cli, "bin", "Release", "net10.0", "Sharpformer.Cli.dll");
            File.WriteAllText(Path.Combine(bin, "dotnet"),
                $"#!/usr/bin/env bash\necho \"$1\" >> '{log}'\nif [ \"$1\" = build ]; then echo 'MSBuild chatter'; mkdir -p '{Path.GetDirectoryName(dll)}'; touch '{dll}'; fi\n");
            File.SetUnixFileMode(Path.Combine(bin, "dotnet"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

            (string Err, string[] Calls) Run()
            {
                File.WriteAllText(log, "");
                var psi = new ProcessStartInfo("bash", [Path.Combine(clone, "sharpformer"), "info"]) { RedirectStandardError = true, RedirectStandardOutput = true };
                psi.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
                using var p = Process.Start(psi)!;
                var err = p.StandardError.ReadToEnd();
                var output = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                Assert.True(p.ExitCode == 0, err + output);
                Assert.DoesNotContain("MSBuild chatter", output + err);
                return (err, File.ReadAllLines(log));
            }

            var first = Run();
            Assert.Equal("building sharpformer (first run)…\n", first.Err);
            Assert.Equal(["build", Path.GetFullPath(dll)], first.Calls);

            Thread.Sleep(1100);   // file times of 1 s resolution on some file systems
            var obj = Directory.CreateDirectory(Path.Combine(cli, "obj", "Debug", "net10.0")).FullName;
            File.WriteAllText(Path.Combine(obj, "Sharpformer.Cli.AssemblyInfo.cs"), "// generated by a Debug build\n");
            var again = Run();
            Assert.Equal("", again.Err);
            Assert.Equal([Path.GetFullPath(dll)], again.Calls);

            File.AppendAllText(Path.Combine(cli, "Sharpformer.Cli.csproj"), "<!-- changed -->\n");
            var rebuilt = Run();
            Assert.Single(rebuilt.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal("build", rebuilt.Calls[0]);
        }
        finally { Directory.Delete(clone, recursive: true); }
    }
}
