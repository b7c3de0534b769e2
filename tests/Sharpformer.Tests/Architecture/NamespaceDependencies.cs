using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Sharpformer.Tests.Architecture;

/// <summary>One use of a type from another layer: who uses it (type, and the source file when the PDB says), and what.</summary>
public sealed record NamespaceUse(string FromLayer, string ToLayer, string FromType, string? File, string UsedType)
{
    public override string ToString() => $"{FromLayer} -> {ToLayer}: {FromType} ({File ?? "no PDB"}) uses {UsedType}";
}

/// <summary>
/// Reads the compiled Sharpformer assemblies (not the sources, so relative names such as <c>Training.TrainingRandom</c>
/// inside <c>namespace Sharpformer.Models</c>, fully qualified names and method bodies are all seen) and lists every use
/// of a type in one top-level Sharpformer namespace ("layer") by a type in another.
/// </summary>
/// <remarks>
/// A layer is the namespace segment after <c>Sharpformer.</c> (<c>Sharpformer.Cli.Commands</c> is <c>Cli</c>) except the
/// <see cref="NestedLayers"/> (<c>Training.Workflows</c>); the root namespace <c>Sharpformer</c> is the layer "Sharpformer".
/// Uses are taken from base types, interfaces, generic constraints, field/method/local signatures, custom attributes and
/// every token operand in IL (types, methods, fields, member references, generic instantiations). Compiler-generated
/// nested types (lambdas, iterators, async state machines) count for the type that declares them.
/// </remarks>
public static class NamespaceDependencies
{
    /// <summary>Sub-namespaces that are layers of their own rather than part of their parent's.</summary>
    /// <remarks>Workflows (fine-tuning, evaluation, feature extraction recipes) use pipelines, which sit above training.</remarks>
    public static readonly IReadOnlyList<string> NestedLayers = ["Training.Workflows"];

    /// <summary>The layer of a namespace, or null outside Sharpformer: the segment after <c>Sharpformer.</c>, or a nested layer.</summary>
    public static string? LayerOf(string ns)
    {
        if (ns == "Sharpformer") return "Sharpformer";
        if (!ns.StartsWith("Sharpformer.", StringComparison.Ordinal)) return null;
        var rest = ns["Sharpformer.".Length..];
        foreach (var nested in NestedLayers)
            if (rest == nested || rest.StartsWith(nested + ".", StringComparison.Ordinal)) return nested;
        int dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    /// <summary>The product assemblies beside the test binaries (everything named Sharpformer*.dll but the tests).</summary>
    public static IReadOnlyList<string> ProductAssemblies() =>
        Directory.GetFiles(AppContext.BaseDirectory, "Sharpformer*.dll")
            .Where(p => !Path.GetFileName(p).StartsWith("Sharpformer.Tests", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToArray();

    /// <summary>Every cross-layer use in the given assemblies (uses inside one layer are left out).</summary>
    public static IReadOnlyList<NamespaceUse> Read(IEnumerable<string> assemblyPaths)
    {
        var uses = new List<NamespaceUse>();
        foreach (var path in assemblyPaths) uses.AddRange(new AssemblyScan(path).CrossLayerUses());
        return uses;
    }

    /// <summary>All layers that types are declared in.</summary>
    public static IReadOnlySet<string> DeclaredLayers(IEnumerable<string> assemblyPaths)
    {
        var layers = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var path in assemblyPaths)
        {
            using var pe = new PEReader(File.OpenRead(path));
            var md = pe.GetMetadataReader();
            foreach (var h in md.TypeDefinitions)
                if (LayerOf(md.GetString(md.GetTypeDefinition(h).Namespace)) is { } layer) layers.Add(layer);
        }
        return layers;
    }

    /// <summary>Opcode value → operand type, from System.Reflection.Emit's table, to walk IL without a disassembler.</summary>
    static readonly Dictionary<short, OperandType> OperandTypes = typeof(OpCodes)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(op => op.Value, op => op.OperandType);

    sealed class AssemblyScan
    {
        readonly MetadataReader _md;
        readonly PEReader _pe;
        readonly MetadataReader? _pdb;
        readonly TypeNames _names;

        public AssemblyScan(string path)
        {
            _pe = new PEReader(new MemoryStream(File.ReadAllBytes(path)));
            _md = _pe.GetMetadataReader();
            var pdbPath = Path.ChangeExtension(path, ".pdb");
            if (File.Exists(pdbPath))
                _pdb = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(File.ReadAllBytes(pdbPath))).GetMetadataReader();
            _names = new TypeNames(_md);
        }

        public IEnumerable<NamespaceUse> CrossLayerUses()
        {
            foreach (var th in _md.TypeDefinitions)
            {
                var type = _md.GetTypeDefinition(th);
                if (!type.GetDeclaringType().IsNil) continue;   // nested types are read with the type that declares them
                var from = _names.Of(th);
                if (LayerOf(from.Namespace) is not { } fromLayer) continue;
                var typeFile = FileOf(FirstMethod(th)) ?? DeclaredFile(th);
                var seen = new HashSet<(string, string?)>();
                foreach (var (used, site) in UsesOf(type))
                {
                    if (LayerOf(used.Namespace) is not { } toLayer || toLayer == fromLayer) continue;
                    var file = site is { } m ? FileOf(m) ?? typeFile : typeFile;
                    if (seen.Add((used.FullName, file)))
                        yield return new NamespaceUse(fromLayer, toLayer, from.FullName, file, used.FullName);
                }
            }
        }

        MethodDefinitionHandle? FirstMethod(TypeDefinitionHandle h)
        {
            foreach (var m in _md.GetTypeDefinition(h).GetMethods())
                if (FileOf(m) != null) return m;
            foreach (var nested in _md.GetTypeDefinition(h).GetNestedTypes())
                if (FirstMethod(nested) is { } m) return m;
            return null;
        }

        /// <summary>Roslyn's "type definition documents" record: where types without method bodies (interfaces) are declared.</summary>
        static readonly Guid TypeDefinitionDocuments = new("932E74BC-DBA9-4478-8D46-0F32A7BAB3D3");

        string? DeclaredFile(TypeDefinitionHandle h)
        {
            if (_pdb == null) return null;
            foreach (var ch in _pdb.GetCustomDebugInformation(h))
            {
                var info = _pdb.GetCustomDebugInformation(ch);
                if (_pdb.GetGuid(info.Kind) != TypeDefinitionDocuments) continue;
                var blob = _pdb.GetBlobReader(info.Value);
                if (blob.RemainingBytes > 0) return DocumentName(MetadataTokens.DocumentHandle(blob.ReadCompressedInteger()));
            }
            return null;
        }

        string DocumentName(DocumentHandle doc)
        {
            var name = _pdb!.GetString(_pdb.GetDocument(doc).Name).Replace('\\', '/');
            int src = name.LastIndexOf("/src/", StringComparison.Ordinal);
            return src >= 0 ? name[(src + 1)..] : name;
        }

        string? FileOf(MethodDefinitionHandle? method)
        {
            if (_pdb == null || method is not { } m) return null;
            var info = _pdb.GetMethodDebugInformation(m);
            var doc = info.Document;
            if (doc.IsNil)
                foreach (var sp in info.GetSequencePoints()) { doc = sp.Document; break; }
            return doc.IsNil ? null : DocumentName(doc);
        }

        IEnumerable<(TypeName Used, MethodDefinitionHandle? Site)> UsesOf(TypeDefinition type)
        {
            if (!type.BaseType.IsNil) foreach (var t in _names.OfEntity(type.BaseType)) yield return (t, null);
            foreach (var ih in type.GetInterfaceImplementations())
                foreach (var t in _names.OfEntity(_md.GetInterfaceImplementation(ih).Interface)) yield return (t, null);
            foreach (var t in AttributeTypes(type.GetCustomAttributes())) yield return (t, null);
            foreach (var gp in type.GetGenericParameters())
                foreach (var ch in _md.GetGenericParameter(gp).GetConstraints())
                    foreach (var t in _names.OfEntity(_md.GetGenericParameterConstraint(ch).Type)) yield return (t, null);
            foreach (var fh in type.GetFields())
            {
                var field = _md.GetFieldDefinition(fh);
                foreach (var t in field.DecodeSignature(_names, null)) yield return (t, null);
                foreach (var t in AttributeTypes(field.GetCustomAttributes())) yield return (t, null);
            }
            foreach (var mh in type.GetMethods())
            {
                var method = _md.GetMethodDefinition(mh);
                var sig = method.DecodeSignature(_names, null);
                foreach (var t in sig.ReturnType.Concat(sig.ParameterTypes.SelectMany(p => p))) yield return (t, mh);
                foreach (var t in AttributeTypes(method.GetCustomAttributes())) yield return (t, mh);
                foreach (var gp in method.GetGenericParameters())
                    foreach (var ch in _md.GetGenericParameter(gp).GetConstraints())
                        foreach (var t in _names.OfEntity(_md.GetGenericParameterConstraint(ch).Type)) yield return (t, mh);
                if (method.RelativeVirtualAddress == 0) continue;
                var body = _pe.GetMethodBody(method.RelativeVirtualAddress);
                if (!body.LocalSignature.IsNil)
                    foreach (var local in _md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(_names, null))
                        foreach (var t in local) yield return (t, mh);
                foreach (var token in TokensIn(body.GetILBytes()!))
                    foreach (var t in _names.OfEntity(MetadataTokens.EntityHandle(token))) yield return (t, mh);
            }
            foreach (var nested in type.GetNestedTypes())
                foreach (var use in UsesOf(_md.GetTypeDefinition(nested))) yield return use;
        }

        IEnumerable<TypeName> AttributeTypes(CustomAttributeHandleCollection attributes)
        {
            foreach (var ah in attributes)
                foreach (var t in _names.OfEntity(_md.GetCustomAttribute(ah).Constructor)) yield return t;
        }

        static IEnumerable<int> TokensIn(byte[] il)
        {
            for (int i = 0; i < il.Length;)
            {
                short code = il[i++];
                if (code == 0xFE) code = unchecked((short)(0xFE00 | il[i++]));
                switch (OperandTypes[code])
                {
                    case OperandType.InlineNone: break;
                    case OperandType.ShortInlineBrTarget: case OperandType.ShortInlineI: case OperandType.ShortInlineVar: i += 1; break;
                    case OperandType.InlineVar: i += 2; break;
                    case OperandType.InlineBrTarget: case OperandType.InlineI: case OperandType.ShortInlineR: case OperandType.InlineString: case OperandType.InlineSig: i += 4; break;
                    case OperandType.InlineI8: case OperandType.InlineR: i += 8; break;
                    case OperandType.InlineSwitch: i += 4 + 4 * BitConverter.ToInt32(il, i); break;
                    case OperandType.InlineField: case OperandType.InlineMethod: case OperandType.InlineTok: case OperandType.InlineType:
                        yield return BitConverter.ToInt32(il, i);
                        i += 4;
                        break;
                    default: throw new InvalidOperationException($"Unknown IL operand type at offset {i}.");
                }
            }
        }
    }

    public readonly record struct TypeName(string Namespace, string Name)
    {
        public string FullName => Namespace.Length == 0 ? Name : $"{Namespace}.{Name}";
    }

    /// <summary>Names the types behind metadata handles and signatures (a generic instantiation names all its parts).</summary>
    sealed class TypeNames(MetadataReader md) : ISignatureTypeProvider<ImmutableArray<TypeName>, object?>
    {
        static readonly ImmutableArray<TypeName> None = [];

        public TypeName Of(TypeDefinitionHandle h)
        {
            var t = md.GetTypeDefinition(h);
            var declaring = t.GetDeclaringType();
            if (!declaring.IsNil) { var outer = Of(declaring); return outer with { Name = $"{outer.Name}+{md.GetString(t.Name)}" }; }
            return new TypeName(md.GetString(t.Namespace), md.GetString(t.Name));
        }

        TypeName Of(TypeReferenceHandle h)
        {
            var t = md.GetTypeReference(h);
            if (t.ResolutionScope.Kind == HandleKind.TypeReference)
            {
                var outer = Of((TypeReferenceHandle)t.ResolutionScope);
                return outer with { Name = $"{outer.Name}+{md.GetString(t.Name)}" };
            }
            return new TypeName(md.GetString(t.Namespace), md.GetString(t.Name));
        }

        /// <summary>The types a type, member or instantiation token refers to (a member counts for its declaring type).</summary>
        public ImmutableArray<TypeName> OfEntity(EntityHandle h) => h.Kind switch
        {
            HandleKind.TypeDefinition => [Of((TypeDefinitionHandle)h)],
            HandleKind.TypeReference => [Of((TypeReferenceHandle)h)],
            HandleKind.TypeSpecification => md.GetTypeSpecification((TypeSpecificationHandle)h).DecodeSignature(this, null),
            HandleKind.MethodDefinition => [Of(md.GetMethodDefinition((MethodDefinitionHandle)h).GetDeclaringType())],
            HandleKind.FieldDefinition => [Of(md.GetFieldDefinition((FieldDefinitionHandle)h).GetDeclaringType())],
            HandleKind.MemberReference => OfEntity(md.GetMemberReference((MemberReferenceHandle)h).Parent),
            HandleKind.MethodSpecification => MethodSpecification((MethodSpecificationHandle)h),
            _ => None,   // module references, standalone signatures: no Sharpformer type
        };

        ImmutableArray<TypeName> MethodSpecification(MethodSpecificationHandle h)
        {
            var spec = md.GetMethodSpecification(h);
            return [.. OfEntity(spec.Method), .. spec.DecodeSignature(this, null).SelectMany(a => a)];
        }

        public ImmutableArray<TypeName> GetPrimitiveType(PrimitiveTypeCode typeCode) => None;
        public ImmutableArray<TypeName> GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => [Of(handle)];
        public ImmutableArray<TypeName> GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => [Of(handle)];
        public ImmutableArray<TypeName> GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);
        public ImmutableArray<TypeName> GetSZArrayType(ImmutableArray<TypeName> elementType) => elementType;
        public ImmutableArray<TypeName> GetArrayType(ImmutableArray<TypeName> elementType, ArrayShape shape) => elementType;
        public ImmutableArray<TypeName> GetByReferenceType(ImmutableArray<TypeName> elementType) => elementType;
        public ImmutableArray<TypeName> GetPointerType(ImmutableArray<TypeName> elementType) => elementType;
        public ImmutableArray<TypeName> GetPinnedType(ImmutableArray<TypeName> elementType) => elementType;
        public ImmutableArray<TypeName> GetGenericInstantiation(ImmutableArray<TypeName> genericType, ImmutableArray<ImmutableArray<TypeName>> typeArguments) =>
            [.. genericType, .. typeArguments.SelectMany(a => a)];
        public ImmutableArray<TypeName> GetGenericTypeParameter(object? genericContext, int index) => None;
        public ImmutableArray<TypeName> GetGenericMethodParameter(object? genericContext, int index) => None;
        public ImmutableArray<TypeName> GetFunctionPointerType(MethodSignature<ImmutableArray<TypeName>> signature) =>
            [.. signature.ReturnType, .. signature.ParameterTypes.SelectMany(p => p)];
        public ImmutableArray<TypeName> GetModifiedType(ImmutableArray<TypeName> modifier, ImmutableArray<TypeName> unmodifiedType, bool isRequired) => unmodifiedType;
    }
}
