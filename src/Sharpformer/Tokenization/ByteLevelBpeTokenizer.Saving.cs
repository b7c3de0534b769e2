using System.Text;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tokenization;

public sealed partial class ByteLevelBpeTokenizer
{
    /// <summary>
    /// Writes <c>tokenizer.json</c> (compact, byte for byte as the Rust <c>Tokenizer.save</c> writes it), <c>vocab.json</c>
    /// and <c>merges.txt</c> (as the Rust <c>BPE.save</c> / GPT-2 layout) into <paramref name="directory"/>, each atomically.
    /// Only tokenizers without a template (ByteLevel post-processor) and without truncation/padding defaults can be saved.
    /// </summary>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (_singleTemplate.Any(p => p.SequenceIndex < 0) || _pairTemplate.Any(p => p.SequenceIndex < 0))
            throw new NotSupportedException($"saving a byte-level BPE tokenizer with a TemplateProcessing post-processor is not supported yet ({Source}).");
        if (DefaultOptions != EncodeOptions.Default)
            throw new NotSupportedException($"saving truncation/padding defaults in tokenizer.json is not supported yet ({Source}).");
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, "tokenizer.json"), TokenizerJson());
        AtomicFile.WriteAllText(Path.Combine(directory, "vocab.json"), VocabJson());
        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var (l, r) in Merges) merges.Append(_idToToken[l]).Append(' ').Append(_idToToken[r]).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(directory, "merges.txt"), merges.ToString());
    }

    string VocabJson()
    {
        var sb = new StringBuilder("{");
        bool first = true;
        foreach (var (tok, id) in _vocab.OrderBy(p => p.Value))
        {
            if (!first) sb.Append(',');
            first = false;
            JsonString(sb, tok).Append(':').Append(id);
        }
        return sb.Append('}').ToString();
    }

    string TokenizerJson()
    {
        var sb = new StringBuilder();
        sb.Append("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
        bool first = true;
        foreach (var t in AddedTokens.OrderBy(t => t.Id))
        {
            if (!first) sb.Append(',');
            first = false;
            sb.Append("{\"id\":").Append(t.Id).Append(",\"content\":");
            JsonString(sb, t.Content);
            sb.Append(",\"single_word\":").Append(Bool(t.SingleWord)).Append(",\"lstrip\":").Append(Bool(t.LStrip))
              .Append(",\"rstrip\":").Append(Bool(t.RStrip)).Append(",\"normalized\":").Append(Bool(t.Normalized))
              .Append(",\"special\":").Append(Bool(t.Special)).Append('}');
        }
        sb.Append("],\"normalizer\":null,");
        sb.Append("\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},");
        sb.Append("\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false,\"use_regex\":true},");
        sb.Append("\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},");
        sb.Append("\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":");
        if (UnkToken is null) sb.Append("null"); else JsonString(sb, UnkToken);
        sb.Append(",\"continuing_subword_prefix\":\"\",\"end_of_word_suffix\":\"\",\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":");
        sb.Append(VocabJson()).Append(",\"merges\":[");
        for (int i = 0; i < Merges.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append('[');
            JsonString(sb, _idToToken[Merges[i].Left]).Append(',');
            JsonString(sb, _idToToken[Merges[i].Right]).Append(']');
        }
        return sb.Append("]}}").ToString();
    }

    static string Bool(bool b) => b ? "true" : "false";

    static StringBuilder JsonString(StringBuilder sb, string s)
    {
        PyJson.AppendString(sb, s, ensureAscii: false); // serde_json's escaping
        return sb;
    }
}
