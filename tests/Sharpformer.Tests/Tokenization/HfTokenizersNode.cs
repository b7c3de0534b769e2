using System.Diagnostics;

namespace Sharpformer.Tests.Tokenization;

/// <summary>A [Fact] skipped, with a message, where node or the npm <c>tokenizers</c> package is not installed.</summary>
public sealed class HfTokenizersFactAttribute : FactAttribute
{
    public HfTokenizersFactAttribute()
    {
        if (HfTokenizersNode.ModulesPath is null)
            Skip = "node with the npm tokenizers package is not installed (see ../shared/peers/setup.sh: npm install tokenizers@0.23.2 " +
                   "into a folder, then set NODE_PATH to its node_modules); the live HF tokenizers comparison cannot run here.";
    }
}

/// <summary>Runs small scripts against HF tokenizers' npm binding (the reference the shared fixtures were made with).</summary>
public static class HfTokenizersNode
{
    /// <summary>A node_modules folder holding <c>tokenizers</c>: NODE_PATH entries, then /tmp/peers and peers-cache beside shared/.</summary>
    public static string? ModulesPath { get; } = Find();

    static string? Find()
    {
        if (!new[] { "/usr/bin/node", "/usr/local/bin/node" }.Any(File.Exists)) return null;
        var candidates = (Environment.GetEnvironmentVariable("NODE_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).ToList();
        candidates.Add("/tmp/peers/node_modules");
        try { candidates.Add(Path.Combine(Path.GetDirectoryName(SharedData.Root)!, "peers-cache", "node_modules")); } catch (DirectoryNotFoundException) { }
        return candidates.FirstOrDefault(c => File.Exists(Path.Combine(c, "tokenizers", "index.js")));
    }

    /// <summary>
    /// Trains with the binding's only trainer, <c>Tokenizer.train(files)</c> — the model's default WordPieceTrainer
    /// (vocab 30000, min_frequency 0, no special tokens, no alphabet limit) — over a BertNormalizer (lowercase) +
    /// BertPreTokenizer pipeline, and writes the vocabulary in id order, one token per line, to argv[3].
    /// </summary>
    public const string TrainScript = """
        const { Tokenizer } = require('tokenizers');
        const spec = { version: '1.0', truncation: null, padding: null, added_tokens: [],
          normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
          pre_tokenizer: { type: 'BertPreTokenizer' }, post_processor: null, decoder: null,
          model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: {} } };
        const t = Tokenizer.fromString(JSON.stringify(spec));
        t.train([process.argv[2]]);
        const list = Object.entries(t.getVocab(false)).sort((a, b) => a[1] - b[1]).map(e => e[0]);
        require('fs').writeFileSync(process.argv[3], list.join('\n') + '\n');
        """;

    /// <summary>Loads tokenizer.json argv[2], encodes each line of argv[3] (with special tokens) and writes ids and offsets as JSON lines to argv[4].</summary>
    public const string EncodeScript = """
        const { Tokenizer } = require('tokenizers');
        const fs = require('fs');
        (async () => {
          const t = Tokenizer.fromFile(process.argv[2]);
          const lines = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter(l => l.length > 0);
          const out = [];
          for (const line of lines) {
            const e = await t.encode(line);
            out.push(JSON.stringify({ ids: Array.from(e.getIds()), offsets: e.getOffsets() }));
          }
          fs.writeFileSync(process.argv[4], out.join('\n') + '\n');
        })().catch(e => { console.error(e); process.exit(1); });
        """;

    /// <summary>Runs <paramref name="script"/> with node and the given arguments; throws with node's stderr on failure.</summary>
    public static void Run(string script, params string[] args)
    {
        var dir = Directory.CreateTempSubdirectory("sharpformer-node-").FullName;
        try
        {
            var file = Path.Combine(dir, "script.js");
            File.WriteAllText(file, script);
            var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(file);
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.Environment["NODE_PATH"] = ModulesPath;
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            _ = stdout.Result; // the trainer's progress bar goes to stdout
            if (p.ExitCode != 0) throw new InvalidOperationException($"node exited with {p.ExitCode}: {stderr}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
