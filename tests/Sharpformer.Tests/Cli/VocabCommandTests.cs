using System.Text.Json;
using Sharpformer.Cli;
using Sharpformer.Tokenization;

namespace Sharpformer.Tests.Cli;

public class VocabCommandTests
{
    [Fact]
    public void Vocab_verb_trains_on_a_corpus_folder_and_writes_a_loadable_tokenizer()
    {
        var dir = Directory.CreateTempSubdirectory("sharpformer-vocab-").FullName;
        try
        {
            var corpus = Directory.CreateDirectory(Path.Combine(dir, "corpus")).FullName;
            var lines = Enumerable.Range(0, 300).Select(i => $"Line {i}: the tokenizer learns tokens from {i % 7} repeated words, unhappily.").ToList();
            File.WriteAllLines(Path.Combine(corpus, "a.txt"), lines);
            var output = new StringWriter(); var error = new StringWriter();
            int code = CliHost.Invoke(["vocab", "--corpus", corpus, "--vocab-size", "80", "--output", Path.Combine(dir, "tok")], TextReader.Null, output, error);
            Assert.True(code == 0, error.ToString());
            using var summary = JsonDocument.Parse(output.ToString());
            Assert.Equal(80, summary.RootElement.GetProperty("vocab_size").GetInt32());
            // 300 distinct lines, the 100th, 200th and 300th held out and not counted.
            Assert.Equal(297, summary.RootElement.GetProperty("train_lines").GetInt64());
            Assert.Equal(3, summary.RootElement.GetProperty("held_out_lines").GetInt64());
            var tok = BertTokenizer.FromDirectory(Path.Combine(dir, "tok"));
            Assert.Equal(80, tok.VocabSize);
            Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], File.ReadLines(Path.Combine(dir, "tok", "vocab.txt")).Take(5));
            Assert.DoesNotContain(tok.UnkTokenId, tok.Encode(lines[5]).Ids);

            error = new StringWriter();
            Assert.Equal(1, CliHost.Invoke(["vocab", "--output", Path.Combine(dir, "x")], TextReader.Null, new StringWriter(), error));
            Assert.Contains("--corpus", error.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
