using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.Tests.Checkpoints;

/// <summary>Builds safetensors images byte by byte, independently of the writer under test.</summary>
internal static class SafeTensorsTestFiles
{
    public static byte[] Build(string headerJson, ReadOnlySpan<byte> data, bool pad = true)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        int n = pad ? (h.Length + 7) / 8 * 8 : h.Length;
        var bytes = new byte[8 + n + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)n);
        h.CopyTo(bytes, 8);
        for (int i = 8 + h.Length; i < 8 + n; i++) bytes[i] = (byte)' ';
        data.CopyTo(bytes.AsSpan(8 + n));
        return bytes;
    }

    public static string SeqClsDir => SharedData.Fixture("bert-tiny-uncased-seqcls");
    public static string SeqClsSafeTensors => Path.Combine(SeqClsDir, "model.safetensors");
    public static string SeqClsBin => Path.Combine(SeqClsDir, "pytorch_model.bin");

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "sharpformer-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
