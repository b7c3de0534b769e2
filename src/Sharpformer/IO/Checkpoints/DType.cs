namespace Sharpformer.Checkpoints;

/// <summary>Element type of a stored tensor, as named by safetensors (<c>F32</c>, <c>BF16</c>, ...) and torch storages.</summary>
public enum DType
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

/// <summary>Sizes and names of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.I8 or DType.U8 or DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>True for F64/F32/F16/BF16, which <see cref="CheckpointTensor.ToFloat32"/> converts.</summary>
    public static bool IsFloatingPoint(DType dtype) => dtype is DType.F64 or DType.F32 or DType.F16 or DType.BF16;

    /// <summary>The safetensors header spelling (<c>"F32"</c>, <c>"BOOL"</c>, ...).</summary>
    public static string SafeTensorsName(DType dtype) => dtype == DType.Bool ? "BOOL" : dtype.ToString();

    /// <summary>Parses a safetensors dtype name; false for anything else (including the F8 variants, which are not supported).</summary>
    public static bool TryParseSafeTensorsName(string name, out DType dtype)
    {
        switch (name)
        {
            case "F64": dtype = DType.F64; return true;
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "I64": dtype = DType.I64; return true;
            case "I32": dtype = DType.I32; return true;
            case "I16": dtype = DType.I16; return true;
            case "I8": dtype = DType.I8; return true;
            case "U8": dtype = DType.U8; return true;
            case "BOOL": dtype = DType.Bool; return true;
            default: dtype = default; return false;
        }
    }
}
