using System.Buffers.Binary;
using System.Text;

namespace Sharpformer.Checkpoints;

/// <summary>A Python global the unpickler knows; everything else is refused when the pickle names it.</summary>
internal enum PyGlobalKind
{
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    TensorType,
    Storage,
}

internal sealed record PyGlobal(string Module, string Name, PyGlobalKind Kind, DType StorageDType = default)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A torch storage named by a persistent id: <c>('storage', torch.FloatStorage, key, location, numel)</c>.</summary>
internal sealed record TorchStorageRef(string Key, DType DType, long Numel, string Location);

/// <summary>What <c>torch._utils._rebuild_tensor_v2</c> would build: a strided view of a storage.</summary>
internal sealed record TorchTensorRef(TorchStorageRef Storage, long StorageOffset, long[] Size, long[] Stride);

/// <summary>A Python dict (also OrderedDict) with string or int keys, in insertion order.</summary>
/// <remarks>Storage is allocated on the first item: a state dict holds thousands of empty OrderedDicts (backward hooks).</remarks>
internal sealed class PyDict
{
    List<object>? _keys;
    Dictionary<object, object?>? _items;

    public IReadOnlyList<object> Keys => (IReadOnlyList<object>?)_keys ?? [];
    public object? this[object key] => _items![key];

    public void Set(object key, object? value)
    {
        _items ??= [];
        _keys ??= [];
        if (!_items.ContainsKey(key)) _keys.Add(key);
        _items[key] = value;
    }
}

/// <summary>
/// A pickle reader that understands only the opcodes and globals a PyTorch state dict uses. It never imports or calls
/// anything: "calls" (REDUCE) of the few allowed globals are interpreted here; any other global is refused with
/// <see cref="UnsafePickleException"/> the moment the pickle names it.
/// </summary>
/// <remarks>Opcode semantics follow CPython's <c>Lib/pickle.py</c> (protocols 2–5, binary opcodes only).</remarks>
internal sealed class RestrictedUnpickler
{
    readonly byte[] _data;
    readonly string _file;
    readonly Func<object?[], TorchStorageRef> _persistentLoad;
    readonly List<object?> _stack = [];
    readonly List<int> _marks = [];
    readonly Dictionary<long, object?> _memo = [];
    int _pos;
    // Estimated bytes of everything built so far (cumulative: freed objects still count), against _budget.
    long _spent;
    readonly long _budget;

    static readonly Dictionary<string, PyGlobal> Allowed = BuildAllowed();

    /// <summary>Estimated bytes of the objects built so far (what the budget is charged).</summary>
    internal long SpentBytes => _spent;

    // maxObjectBytes caps the estimated memory of built objects; the pickle's own size lowers it further
    // (TorchCheckpointLimits.UnpickledBytesPerPickleByte).
    public RestrictedUnpickler(byte[] data, string file, Func<object?[], TorchStorageRef> persistentLoad, long maxObjectBytes)
    {
        _data = data;
        _file = file;
        _persistentLoad = persistentLoad;
        _budget = Math.Min(maxObjectBytes, Math.Max(1L << 20, (long)TorchCheckpointLimits.UnpickledBytesPerPickleByte * data.Length));
    }

    // Rough 64-bit CLR sizes: object header 16 B, a reference 8 B, array header 24 B.
    const long SlotBytes = 16; // a stack, list or tuple slot, with room for List growth
    const long BoxBytes = 24;  // a boxed long/double/bool, or a small record
    const long DictItemBytes = 48;

    /// <summary>Accounts for memory about to be allocated; refuses the pickle once it has cost more than its budget.</summary>
    void Spend(long bytes)
    {
        _spent += bytes;
        if (_spent > _budget)
            throw new CheckpointLimitException(_file, CheckpointLimit.UnpickledObjects, _budget,
                $"pickle data.pkl builds more objects than a {_data.Length}-byte state dict can (stopped at byte {_pos})",
                "A state dict pickle needs a few bytes of objects per byte; this one is a memory bomb. " +
                "If the file is trusted, raise TorchCheckpointLimits.MaxUnpickledBytes or convert it to safetensors in Python.");
    }

    static long SizeOf(object? o) => o switch
    {
        null => 0,
        string s => 24 + 2L * s.Length,
        byte[] b => 24 + b.Length,
        object?[] t => 24 + SlotBytes * t.Length,
        List<object?> l => 32 + 24 + SlotBytes * l.Count,
        PyDict => 32,
        TorchTensorRef t => 48 + 2 * (24 + 8L * t.Size.Length),
        long v when v is >= 0 and < SmallInts => 0, // boxed once, see Box
        _ => BoxBytes,
    };

    // Sizes, strides, offsets and storage keys are small ints; boxing each occurrence would be most of a pickle's garbage.
    const int SmallInts = 1024;
    static readonly object[] SmallBoxes = Enumerable.Range(0, SmallInts).Select(i => (object)(long)i).ToArray();
    static object Box(long v) => v is >= 0 and < SmallInts ? SmallBoxes[v] : v;

    static Dictionary<string, PyGlobal> BuildAllowed()
    {
        var list = new List<PyGlobal>
        {
            new("collections", "OrderedDict", PyGlobalKind.OrderedDict),
            new("torch._utils", "_rebuild_tensor_v2", PyGlobalKind.RebuildTensorV2),
            new("torch._utils", "_rebuild_parameter", PyGlobalKind.RebuildParameter),
            new("torch._utils", "_rebuild_parameter_with_state", PyGlobalKind.RebuildParameterWithState),
            new("torch._tensor", "_rebuild_from_type_v2", PyGlobalKind.RebuildFromTypeV2),
            new("torch", "Tensor", PyGlobalKind.TensorType),
            new("torch.nn.parameter", "Parameter", PyGlobalKind.TensorType),
        };
        (string, DType)[] storages =
        [
            ("DoubleStorage", DType.F64), ("FloatStorage", DType.F32), ("HalfStorage", DType.F16), ("BFloat16Storage", DType.BF16),
            ("LongStorage", DType.I64), ("IntStorage", DType.I32), ("ShortStorage", DType.I16), ("CharStorage", DType.I8),
            ("ByteStorage", DType.U8), ("BoolStorage", DType.Bool),
        ];
        foreach (var (name, dt) in storages) list.Add(new("torch", name, PyGlobalKind.Storage, dt));
        return list.ToDictionary(g => g.FullName, StringComparer.Ordinal);
    }

    CheckpointFormatException Fail(string problem) => new(_file, $"pickle data.pkl at byte {_pos}: {problem}");

    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Fail("ended without a STOP opcode (truncated?)");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                {
                    byte proto = ReadByte();
                    if (proto > 5) throw Fail($"unsupported pickle protocol {proto}");
                    break;
                }
                case 0x95: ReadBytes(8); break; // FRAME: framing is only a read-ahead hint
                case (byte)'.': // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Fail($"STOP with {_stack.Count} values on the stack, expected exactly 1");
                    return _stack[0];
                case (byte)'(': _marks.Add(_stack.Count); break; // MARK
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP: a reference, no new object
                case (byte)'N': Push(null); break;
                case 0x88: Push(True); break;
                case 0x89: Push(False); break;
                case (byte)'J': PushNew(Box(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)))); break;
                case (byte)'K': PushNew(Box(ReadByte())); break;
                case (byte)'M': PushNew(Box(BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2)))); break;
                case 0x8a: PushNew(Box(ReadLong(ReadByte()))); break; // LONG1
                case 0x8b: // LONG4
                {
                    int n = BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));
                    if (n < 0) throw Fail("negative LONG4 length");
                    PushNew(Box(ReadLong(n)));
                    break;
                }
                case (byte)'G': PushNew(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT
                case (byte)'X': PushNew(ReadUtf8(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // BINUNICODE
                case 0x8c: PushNew(ReadUtf8(ReadByte())); break; // SHORT_BINUNICODE
                case 0x8d: PushNew(ReadUtf8(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))); break; // BINUNICODE8
                case (byte)'B': PushNew(ReadBytes(CheckLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))).ToArray()); break; // BINBYTES
                case (byte)'C': PushNew(ReadBytes(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: PushNew(ReadBytes(CheckLength(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))).ToArray()); break; // BINBYTES8
                case (byte)'}': PushNew(new PyDict()); break; // EMPTY_DICT
                case (byte)'d': // DICT
                {
                    var items = PopMark();
                    var dict = new PyDict();
                    if (items.Length % 2 != 0) throw Fail("DICT with an odd number of items");
                    Spend(DictItemBytes * (items.Length / 2));
                    for (int i = 0; i < items.Length; i += 2) dict.Set(Key(items[i]), items[i + 1]);
                    PushNew(dict);
                    break;
                }
                case (byte)']': PushNew(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': PushNew(new List<object?>(PopMark())); break; // LIST
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE: shared, no new object
                case (byte)'t': Push(PopMark()); break; // TUPLE (PopMark paid for the array)
                case 0x85: { var a = Pop(); PushNew(new[] { a }); break; }
                case 0x86: { var b = Pop(); var a = Pop(); PushNew(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); PushNew(new[] { a, b, c }); break; }
                case (byte)'a': { var v = Pop(); Spend(SlotBytes); As<List<object?>>(Peek(), "APPEND target").Add(v); break; }
                case (byte)'e': { var items = PopMark(); Spend(SlotBytes * items.Length); As<List<object?>>(Peek(), "APPENDS target").AddRange(items); break; }
                case (byte)'s': // SETITEM
                {
                    var v = Pop();
                    var k = Pop();
                    Spend(DictItemBytes);
                    As<PyDict>(Peek(), "SETITEM target").Set(Key(k), v);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark();
                    var dict = As<PyDict>(Peek(), "SETITEMS target");
                    if (items.Length % 2 != 0) throw Fail("SETITEMS with an odd number of items");
                    Spend(DictItemBytes * (items.Length / 2));
                    for (int i = 0; i < items.Length; i += 2) dict.Set(Key(items[i]), items[i + 1]);
                    break;
                }
                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))); break; // LONG_BINPUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(MemoGet(ReadByte())); break; // BINGET
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET
                case (byte)'c': // GLOBAL "module\nname\n"
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(ResolveGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = As<string>(Pop(), "STACK_GLOBAL name");
                    var module = As<string>(Pop(), "STACK_GLOBAL module");
                    Push(ResolveGlobal(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = As<object?[]>(Pop(), "REDUCE arguments");
                    var callable = As<PyGlobal>(Pop(), "REDUCE callable");
                    PushNew(Call(callable, args, 0));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    Pop(); // state
                    // OrderedDict state carries `_metadata` (module versions); tensors never get BUILD in a state dict.
                    if (Peek() is not PyDict) throw Fail($"BUILD on a {Describe(Peek())}; only dict state is supported");
                    break;
                }
                case (byte)'Q': // BINPERSID
                {
                    var pid = As<object?[]>(Pop(), "persistent id");
                    PushNew(_persistentLoad(pid));
                    break;
                }
                default:
                    throw Fail($"unsupported pickle opcode 0x{op:x2}{OpName(op)}; this is not a PyTorch state dict this reader understands");
            }
        }
    }

    static string OpName(byte op) => op switch
    {
        0x81 => " (NEWOBJ)", 0x92 => " (NEWOBJ_EX)", (byte)'i' => " (INST)", (byte)'o' => " (OBJ)", (byte)'P' => " (PERSID)",
        0x82 or 0x83 or 0x84 => " (EXT)", (byte)'S' or (byte)'T' or (byte)'U' => " (Python 2 string)", (byte)'I' or (byte)'L' or (byte)'F' => " (text protocol 0)",
        _ => "",
    };

    object ResolveGlobal(string module, string name)
    {
        var full = $"{module}.{name}";
        if (Allowed.TryGetValue(full, out var g)) return g;
        if (KnownUnsupported.Contains(full))
            throw new NotSupportedException($"'{_file}' contains a tensor built by {full} (quantized, sparse, meta or subclass tensors), " +
                "which Sharpformer does not load. Save a plain float state dict (e.g. dequantize / to_dense first) or use model.safetensors.");
        throw new UnsafePickleException(_file, full);
    }

    /// <summary>Real torch rebuild functions for tensor kinds a BERT state dict never has: refused as unsupported, not as unsafe.</summary>
    static readonly HashSet<string> KnownUnsupported = new(StringComparer.Ordinal)
    {
        "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_sparse_csr_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_xla_tensor", "torch._utils._rebuild_mlc_tensor", "torch._utils._rebuild_tensor",
        "torch.QUInt8Storage", "torch.QInt8Storage", "torch.QInt32Storage", "torch.QUInt4x2Storage", "torch.QUInt2x4Storage",
        "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage",
    };

    object? Call(PyGlobal callable, object?[] args, int depth)
    {
        switch (callable.Kind)
        {
            case PyGlobalKind.OrderedDict:
                if (args.Length != 0) throw Fail("OrderedDict called with arguments");
                return new PyDict();
            case PyGlobalKind.RebuildTensorV2:
            {
                // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args.Length is < 6 or > 7) throw Fail($"_rebuild_tensor_v2 called with {args.Length} arguments, expected 6 or 7");
                var storage = As<TorchStorageRef>(args[0], "tensor storage");
                long offset = As<long>(args[1], "storage offset");
                var size = LongTuple(args[2], "tensor size");
                var stride = LongTuple(args[3], "tensor stride");
                if (size.Length != stride.Length) throw Fail($"tensor size has {size.Length} dimensions but stride has {stride.Length}");
                return new TorchTensorRef(storage, offset, size, stride);
            }
            case PyGlobalKind.RebuildParameter:
                if (args.Length != 3) throw Fail($"_rebuild_parameter called with {args.Length} arguments, expected 3");
                return As<TorchTensorRef>(args[0], "parameter data");
            case PyGlobalKind.RebuildParameterWithState:
                if (args.Length != 4) throw Fail($"_rebuild_parameter_with_state called with {args.Length} arguments, expected 4");
                return As<TorchTensorRef>(args[0], "parameter data");
            case PyGlobalKind.RebuildFromTypeV2:
            {
                // _rebuild_from_type_v2(func, new_type, args, state): func(*args), then cast to new_type (Tensor/Parameter here).
                if (args.Length != 4 || depth > 0) throw Fail("malformed _rebuild_from_type_v2 call");
                var func = As<PyGlobal>(args[0], "_rebuild_from_type_v2 function");
                var type = As<PyGlobal>(args[1], "_rebuild_from_type_v2 type");
                if (type.Kind != PyGlobalKind.TensorType) throw Fail($"_rebuild_from_type_v2 to {type.FullName}");
                return As<TorchTensorRef>(Call(func, As<object?[]>(args[2], "_rebuild_from_type_v2 arguments"), depth + 1), "rebuilt tensor");
            }
            default:
                throw Fail($"{callable.FullName} is not callable");
        }
    }

    long[] LongTuple(object? o, string what)
    {
        var items = As<object?[]>(o, what);
        var r = new long[items.Length];
        for (int i = 0; i < items.Length; i++) r[i] = As<long>(items[i], what);
        return r;
    }

    object Key(object? k) => k switch
    {
        string or long or bool => k,
        _ => throw Fail($"dict key of type {Describe(k)} (state dict keys are strings)"),
    };

    T As<T>(object? o, string what) => o is T t ? t : throw Fail($"{what} is a {Describe(o)}, expected {typeof(T).Name}");

    static string Describe(object? o) => o switch
    {
        null => "None",
        string => "str",
        long => "int",
        double => "float",
        bool => "bool",
        byte[] => "bytes",
        object?[] => "tuple",
        List<object?> => "list",
        PyDict => "dict",
        PyGlobal g => g.FullName,
        TorchStorageRef => "storage",
        TorchTensorRef => "tensor",
        _ => o.GetType().Name,
    };

    /// <summary>Pushes a reference to an existing object (or None); only a new stack slot costs.</summary>
    void Push(object? o)
    {
        if (_stack.Count == _stackHighWater)
        {
            Spend(SlotBytes);
            _stackHighWater++;
        }
        _stack.Add(o);
    }

    int _stackHighWater;
    static readonly object True = true, False = false;

    /// <summary>Pushes an object the current opcode just built.</summary>
    void PushNew(object? o)
    {
        Spend(SizeOf(o));
        Push(o);
    }

    void Memoize(long index)
    {
        if (!_memo.ContainsKey(index)) Spend(DictItemBytes);
        _memo[index] = Peek();
    }

    object? Pop()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Fail("stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Fail("stack underflow");
        return _stack[^1];
    }

    object?[] PopMark()
    {
        if (_marks.Count == 0) throw Fail("no MARK to pop to");
        int m = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = new object?[_stack.Count - m];
        Spend(24 + SlotBytes * items.Length);
        _stack.CopyTo(m, items, 0, items.Length);
        _stack.RemoveRange(m, items.Length);
        return items;
    }

    object? MemoGet(long index) => _memo.TryGetValue(index, out var v) ? v : throw Fail($"memo entry {index} was never stored");

    byte ReadByte()
    {
        if (_pos >= _data.Length) throw Fail("unexpected end of data");
        return _data[_pos++];
    }

    ReadOnlySpan<byte> ReadBytes(int n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Fail($"needs {n} more bytes but only {_data.Length - _pos} remain (truncated?)");
        var s = _data.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    int CheckLength(ulong n) => n > (ulong)(_data.Length - _pos) ? throw Fail($"length {n} runs past the end of the data") : (int)n;

    string ReadUtf8(ulong n)
    {
        var bytes = ReadBytes(CheckLength(n));
        try
        {
            return Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Fail("string is not valid UTF-8");
        }
    }

    static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos, Math.Min(257, _data.Length - _pos));
        if (end < 0) throw Fail("GLOBAL name is not terminated by a newline");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    long ReadLong(int n)
    {
        // Little-endian two's complement of n bytes (pickle LONG1/LONG4).
        var b = ReadBytes(n);
        if (n == 0) return 0;
        if (n > 8)
        {
            // Accept wider encodings only if the value still fits in 64 bits.
            byte fill = (b[n - 1] & 0x80) != 0 ? (byte)0xFF : (byte)0;
            for (int i = 8; i < n; i++)
                if (b[i] != fill) throw Fail("integer does not fit in 64 bits");
            if (((b[7] & 0x80) != 0) != (fill == 0xFF)) throw Fail("integer does not fit in 64 bits");
            n = 8;
        }
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }
}
