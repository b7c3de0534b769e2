using System.Diagnostics;
using Sharpformer.Kernels;

namespace Sharpformer.Tests.Kernels;

public class X64EmitterTests
{
    /// <summary>
    /// Expected bytes produced by GNU as 2.44 from the Intel-syntax line beside each (as --64 t.s; objdump -d -M intel t.o),
    /// chosen to hit every encoding path: zmm16–31 (EVEX R′/X/V′ bits), r8–r15 bases and indexes, compressed disp8 (×64 and
    /// ×4), disp32, rsp/r12 bases (SIB), r13 base with a displacement, embedded broadcast, imm8 and imm32, and the VEX-encoded AMX tile instructions.
    /// </summary>
    public static TheoryData<string, string> Encodings => new()
    {
        { "vpxord zmm23, zmm23, zmm23", "62 a1 45 40 ef ff" },
        { "vpdpbusd zmm3, zmm28, zmm25", "62 92 1d 40 50 d9" },
        { "vdpbf16ps zmm17, zmm29, zmm27", "62 82 16 40 52 cb" },
        { "vfmadd231ps zmm1, zmm2, zmm30", "62 92 6d 48 b8 ce" },
        { "vfmadd231ps zmm9, zmm20, dword ptr [r13+12]{1to16}", "62 52 5d 50 b8 4d 03" },
        { "vpbroadcastd zmm28, dword ptr [r11+rsi*1]", "62 42 7d 48 58 24 33" },
        { "vbroadcastss zmm29, dword ptr [rdi+r10*1]", "62 22 7d 48 18 2c 17" },
        { "vmovdqu32 zmm27, zmmword ptr [rdx+rax*1]", "62 61 7e 48 6f 1c 02" },
        { "vmovdqu32 zmmword ptr [r8+1472], zmm23", "62 c1 7e 48 7f 78 17" },
        { "vmovups zmm4, zmmword ptr [rsp+8256]", "62 f1 7c 48 10 a4 24 40 20 00 00" },
        { "vmovups zmmword ptr [r12-64], zmm16", "62 c1 7c 48 11 44 24 ff" },
        { "lea r10, [rsi+rsi*2]", "4c 8d 14 76" },
        { "add r11, 4", "49 83 c3 04" },
        { "add rdx, 1000", "48 81 c2 e8 03 00 00" },
        { "dec r9", "49 ff c9" },
        { "vzeroupper", "c5 f8 77" },
        { "ldtilecfg [rax]", "c4 e2 78 49 00" },
        { "tilerelease", "c4 e2 78 49 c0" },
        { "tilezero tmm3", "c4 e2 7b 49 d8" },
        { "tileloadd tmm4, [rdi+rsi*1]", "c4 e2 7b 4b 24 37" },
        { "tileloadd tmm5, [r11+r10*1]", "c4 82 7b 4b 2c 13" },
        { "tilestored [r8+r11*1], tmm2", "c4 82 7a 4b 14 18" },
        { "tdpbusd tmm1, tmm4, tmm5", "c4 e2 51 5e cc" },
        { "tdpbf16ps tmm0, tmm4, tmm6", "c4 e2 4a 5c c4" },
        { "mov rax, qword ptr [rsp+8]", "48 8b 44 24 08" },
        { "mov r10, 64", "49 c7 c2 40 00 00 00" },
        { "ret", "c3" },
    };

    static void EmitLine(X64Emitter e, string line)
    {
        switch (line)
        {
            case "vpxord zmm23, zmm23, zmm23": e.VpxordZero(23); break;
            case "vpdpbusd zmm3, zmm28, zmm25": e.Vpdpbusd(3, 28, 25); break;
            case "vdpbf16ps zmm17, zmm29, zmm27": e.Vdpbf16ps(17, 29, 27); break;
            case "vfmadd231ps zmm1, zmm2, zmm30": e.Vfmadd231ps(1, 2, 30); break;
            case "vfmadd231ps zmm9, zmm20, dword ptr [r13+12]{1to16}": e.Vfmadd231psBroadcast(9, 20, new Mem(Gpr.R13, Disp: 12)); break;
            case "vpbroadcastd zmm28, dword ptr [r11+rsi*1]": e.Vpbroadcastd(28, new Mem(Gpr.R11, Gpr.Rsi)); break;
            case "vbroadcastss zmm29, dword ptr [rdi+r10*1]": e.Vbroadcastss(29, new Mem(Gpr.Rdi, Gpr.R10)); break;
            case "vmovdqu32 zmm27, zmmword ptr [rdx+rax*1]": e.Vmovdqu32Load(27, new Mem(Gpr.Rdx, Gpr.Rax)); break;
            case "vmovdqu32 zmmword ptr [r8+1472], zmm23": e.Vmovdqu32Store(new Mem(Gpr.R8, Disp: 1472), 23); break;
            case "vmovups zmm4, zmmword ptr [rsp+8256]": e.VmovupsLoad(4, new Mem(Gpr.Rsp, Disp: 8256)); break;
            case "vmovups zmmword ptr [r12-64], zmm16": e.VmovupsStore(new Mem(Gpr.R12, Disp: -64), 16); break;
            case "lea r10, [rsi+rsi*2]": e.Lea(Gpr.R10, new Mem(Gpr.Rsi, Gpr.Rsi, 2)); break;
            case "add r11, 4": e.Add(Gpr.R11, 4); break;
            case "add rdx, 1000": e.Add(Gpr.Rdx, 1000); break;
            case "dec r9": e.Dec(Gpr.R9); break;
            case "vzeroupper": e.Vzeroupper(); break;
            case "ldtilecfg [rax]": e.Ldtilecfg(new Mem(Gpr.Rax)); break;
            case "tilerelease": e.Tilerelease(); break;
            case "tilezero tmm3": e.Tilezero(3); break;
            case "tileloadd tmm4, [rdi+rsi*1]": e.Tileloadd(4, new Mem(Gpr.Rdi, Gpr.Rsi)); break;
            case "tileloadd tmm5, [r11+r10*1]": e.Tileloadd(5, new Mem(Gpr.R11, Gpr.R10)); break;
            case "tilestored [r8+r11*1], tmm2": e.Tilestored(new Mem(Gpr.R8, Gpr.R11), 2); break;
            case "tdpbusd tmm1, tmm4, tmm5": e.Tdpbusd(1, 4, 5); break;
            case "tdpbf16ps tmm0, tmm4, tmm6": e.Tdpbf16ps(0, 4, 6); break;
            case "mov rax, qword ptr [rsp+8]": e.Mov(Gpr.Rax, new Mem(Gpr.Rsp, Disp: 8)); break;
            case "mov r10, 64": e.Mov(Gpr.R10, 64); break;
            case "ret": e.Ret(); break;
            default: throw new ArgumentException(line);
        }
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void EachInstructionEncodesToTheBytesGnuAsProduces(string line, string hex)
    {
        var e = new X64Emitter();
        EmitLine(e, line);
        Assert.Equal(hex, Convert.ToHexString(e.ToArray()).ToLowerInvariant().Chunk(2).Select(c => new string(c)).Aggregate((a, b) => a + " " + b));
    }

    [Fact]
    public void BackwardJumpsTakeRel8WhenTheTargetIsNearAndRel32Otherwise()
    {
        var e = new X64Emitter();
        int near = e.Label();
        e.Dec(Gpr.R9);
        e.JnzBack(near); // 3 bytes of dec + 2 of jnz back: rel8 −5
        Assert.Equal([0x49, 0xFF, 0xC9, 0x75, 0xFB], e.ToArray());
        var far = new X64Emitter();
        int top = far.Label();
        for (int i = 0; i < 30; i++) far.Vpdpbusd(0, 28, 24); // 180 bytes
        far.JnzBack(top);
        Assert.Equal([0x0F, 0x85], far.ToArray()[180..182]);
        Assert.Equal(-186, BitConverter.ToInt32(far.ToArray(), 182));
    }

    /// <summary>Every emitted GEMM kernel, whole: the emitter's own listing assembled by GNU as must give the same bytes.</summary>
    [AssemblerFact]
    public void EveryEmittedMicroKernelAssemblesToTheSameBytesUnderGnuAs()
    {
        foreach (var ins in new[] { DotInstruction.Vpdpbusd, DotInstruction.Vdpbf16ps })
        {
            var e = JitDotKernels.EmitAll(ins, out var offsets);
            Assert.Equal(24, offsets.Length);
            Assert.Equal(Convert.ToHexString(Assemble(e.Listing)), Convert.ToHexString(e.ToArray()));
        }
        var amx = AmxKernels.EmitAll(out var amxOffsets);
        Assert.Equal(4, amxOffsets.Length);
        Assert.Equal(Convert.ToHexString(Assemble(amx.Listing)), Convert.ToHexString(amx.ToArray()));
    }

    static byte[] Assemble(string source)
    {
        var dir = Directory.CreateTempSubdirectory("sf-as-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "k.s"), source);
            Run("/usr/bin/as", "--64", "-o", Path.Combine(dir, "k.o"), Path.Combine(dir, "k.s"));
            Run("/usr/bin/objcopy", "-O", "binary", "--only-section=.text", Path.Combine(dir, "k.o"), Path.Combine(dir, "k.bin"));
            return File.ReadAllBytes(Path.Combine(dir, "k.bin"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static void Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{exe} failed: {err}");
    }
}
