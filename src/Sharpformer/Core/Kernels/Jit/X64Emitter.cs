using System.Globalization;
using System.Text;

namespace Sharpformer.Kernels;

/// <summary>x86-64 general-purpose registers, numbered as ModRM/REX encode them.</summary>
internal enum Gpr : byte { Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15 }

/// <summary>A memory operand [base + index·scale + disp].</summary>
internal readonly record struct Mem(Gpr Base, Gpr? Index = null, int Scale = 1, int Disp = 0)
{
    public override string ToString()
    {
        var s = new StringBuilder("[").Append(Name(Base));
        if (Index is { } i) s.Append('+').Append(Name(i)).Append('*').Append(Scale);
        if (Disp != 0) s.Append(Disp > 0 ? "+" : "-").Append(Math.Abs(Disp).ToString(CultureInfo.InvariantCulture));
        return s.Append(']').ToString();
    }

    internal static string Name(Gpr r) => r.ToString().ToLowerInvariant();
}

/// <summary>
/// A minimal x86-64 assembler for the GEMM micro-kernels emitted at run time: only the instructions they use, every
/// vector one EVEX-encoded at 512 bits (Intel SDM vol. 2, §2.7), the general-purpose ones with REX.W. Next to the bytes it
/// keeps the same program as GNU-as Intel-syntax text (<see cref="Listing"/>), so tests can assemble that text with a
/// real assembler and compare the bytes.
/// </summary>
/// <remarks>
/// EVEX is 62 P0 P1 P2: P0 = R̄ X̄ B̄ R̄′ 0 0 m m (inverted register-number high bits, opcode map 0F/0F38/0F3A), P1 = W v̄v̄v̄v̄ 1 p p
/// (inverted second source, implied 66/F3/F2 prefix), P2 = z L′L b V̄′ a a a (vector length 10 = 512 bits, embedded
/// broadcast, masking). An 8-bit displacement is scaled by the operand's size N (64 for a full zmm, 4 for a dword
/// broadcast), which is why <see cref="ModRm"/> takes N.
/// </remarks>
internal sealed class X64Emitter
{
    readonly List<byte> code = [];
    readonly StringBuilder listing = new(".intel_syntax noprefix\n");
    readonly List<int> labels = [];

    public int Length => code.Count;
    public byte[] ToArray() => [.. code];
    /// <summary>The emitted program as GNU as input (Intel syntax).</summary>
    public string Listing => listing.ToString();

    // ---- AVX-512 (EVEX, 512-bit) ----

    /// <summary>vpxord z, z, z: zeroes an accumulator.</summary>
    public void VpxordZero(int z) { EvexReg(map: 1, pp: 1, 0xEF, z, z, z); Text($"vpxord zmm{z}, zmm{z}, zmm{z}"); }

    /// <summary>vpdpbusd acc, u8, s8: acc.i32[j] += Σ₄ u8[4j+t]·s8[4j+t] (AVX512_VNNI).</summary>
    public void Vpdpbusd(int acc, int unsignedBytes, int signedBytes) { EvexReg(map: 2, pp: 1, 0x50, acc, unsignedBytes, signedBytes); Text($"vpdpbusd zmm{acc}, zmm{unsignedBytes}, zmm{signedBytes}"); }

    /// <summary>vdpbf16ps acc, a, b: acc.f32[j] += a.bf16[2j+1]·b.bf16[2j+1] + a.bf16[2j]·b.bf16[2j] (AVX512_BF16).</summary>
    public void Vdpbf16ps(int acc, int a, int b) { EvexReg(map: 2, pp: 2, 0x52, acc, a, b); Text($"vdpbf16ps zmm{acc}, zmm{a}, zmm{b}"); }

    /// <summary>vfmadd231ps acc, a, b: acc += a·b (AVX512F).</summary>
    public void Vfmadd231ps(int acc, int a, int b) { EvexReg(map: 2, pp: 1, 0xB8, acc, a, b); Text($"vfmadd231ps zmm{acc}, zmm{a}, zmm{b}"); }

    /// <summary>vfmadd231ps acc, a, dword [m]{1to16}: acc += a·broadcast(m) with the broadcast embedded in the instruction.</summary>
    public void Vfmadd231psBroadcast(int acc, int a, Mem m) { EvexMem(map: 2, pp: 1, 0xB8, acc, a, m, n: 4, broadcast: true); Text($"vfmadd231ps zmm{acc}, zmm{a}, dword ptr {m}{{1to16}}"); }

    /// <summary>vpbroadcastd z, dword [m].</summary>
    public void Vpbroadcastd(int z, Mem m) { EvexMem(map: 2, pp: 1, 0x58, z, 0, m, n: 4); Text($"vpbroadcastd zmm{z}, dword ptr {m}"); }

    /// <summary>vbroadcastss z, dword [m].</summary>
    public void Vbroadcastss(int z, Mem m) { EvexMem(map: 2, pp: 1, 0x18, z, 0, m, n: 4); Text($"vbroadcastss zmm{z}, dword ptr {m}"); }

    /// <summary>vmovdqu32 z, zmmword [m].</summary>
    public void Vmovdqu32Load(int z, Mem m) { EvexMem(map: 1, pp: 2, 0x6F, z, 0, m, n: 64); Text($"vmovdqu32 zmm{z}, zmmword ptr {m}"); }

    /// <summary>vmovdqu32 zmmword [m], z.</summary>
    public void Vmovdqu32Store(Mem m, int z) { EvexMem(map: 1, pp: 2, 0x7F, z, 0, m, n: 64); Text($"vmovdqu32 zmmword ptr {m}, zmm{z}"); }

    /// <summary>vmovups z, zmmword [m].</summary>
    public void VmovupsLoad(int z, Mem m) { EvexMem(map: 1, pp: 0, 0x10, z, 0, m, n: 64); Text($"vmovups zmm{z}, zmmword ptr {m}"); }

    /// <summary>vmovups zmmword [m], z.</summary>
    public void VmovupsStore(Mem m, int z) { EvexMem(map: 1, pp: 0, 0x11, z, 0, m, n: 64); Text($"vmovups zmmword ptr {m}, zmm{z}"); }

    /// <summary>vzeroupper: leaves the upper vector state clean for the managed caller's SSE/AVX code.</summary>
    public void Vzeroupper() { Bytes(0xC5, 0xF8, 0x77); Text("vzeroupper"); }

    // ---- AMX (VEX-encoded; tmm0–7) ----

    /// <summary>ldtilecfg [m]: loads the 64-byte tile configuration (palette 1, bytes per row and rows of each tile).</summary>
    public void Ldtilecfg(Mem m) { Vex3(map: 2, pp: 0, 0, 0, m); Bytes(0x49); ModRm(0, m, 1); Text($"ldtilecfg {m}"); }

    /// <summary>tilerelease: returns the tile state to init (required before the thread runs other AMX users' code).</summary>
    public void Tilerelease() { Bytes(0xC4, 0xE2, 0x78, 0x49, 0xC0); Text("tilerelease"); }

    /// <summary>tilezero t.</summary>
    public void Tilezero(int t) { Vex3Reg(pp: 3, vvvv: 0); Bytes(0x49, (byte)(0xC0 | (t << 3))); Text($"tilezero tmm{t}"); }

    /// <summary>tileloadd t, [base + stride·1]: the tile's rows from base, stride bytes apart (the index register is the stride).</summary>
    public void Tileloadd(int t, Mem m) { Vex3(map: 2, pp: 3, t, 0, m); Bytes(0x4B); ModRm(t, m, 1); Text($"tileloadd tmm{t}, {m}"); }

    /// <summary>tilestored [base + stride·1], t.</summary>
    public void Tilestored(Mem m, int t) { Vex3(map: 2, pp: 2, t, 0, m); Bytes(0x4B); ModRm(t, m, 1); Text($"tilestored {m}, tmm{t}"); }

    /// <summary>tdpbusd c, a, b: c.i32[m][n] += Σ_k a.u8[m][4k..4k+3]·b.s8[k][4n..4n+3] (AMX-INT8).</summary>
    public void Tdpbusd(int c, int a, int b) { Vex3Reg(pp: 1, vvvv: b); Bytes(0x5E, (byte)(0xC0 | (c << 3) | a)); Text($"tdpbusd tmm{c}, tmm{a}, tmm{b}"); }

    /// <summary>tdpbf16ps c, a, b: c.f32[m][n] += Σ_k a.bf16[m][2k..2k+1]·b.bf16[k][2n..2n+1] (AMX-BF16).</summary>
    public void Tdpbf16ps(int c, int a, int b) { Vex3Reg(pp: 2, vvvv: b); Bytes(0x5C, (byte)(0xC0 | (c << 3) | a)); Text($"tdpbf16ps tmm{c}, tmm{a}, tmm{b}"); }

    // ---- general purpose ----

    /// <summary>mov r, qword [m].</summary>
    public void Mov(Gpr r, Mem m) { Rex(true, (int)r, m.Index is { } i ? (int)i : 0, (int)m.Base); Bytes(0x8B); ModRm((int)r, m, 1); Text($"mov {Mem.Name(r)}, qword ptr {m}"); }

    /// <summary>mov r, imm32 (sign-extended).</summary>
    public void Mov(Gpr r, int imm) { Rex(true, 0, 0, (int)r); Bytes(0xC7, (byte)(0xC0 | ((int)r & 7))); Int32(imm); Text($"mov {Mem.Name(r)}, {imm}"); }

    /// <summary>lea r, [m].</summary>
    public void Lea(Gpr r, Mem m) { Rex(true, (int)r, m.Index is { } i ? (int)i : 0, (int)m.Base); Bytes(0x8D); ModRm((int)r, m, 1); Text($"lea {Mem.Name(r)}, {m}"); }

    /// <summary>add r, imm (imm8 when it fits, sign-extended; else imm32).</summary>
    public void Add(Gpr r, int imm)
    {
        Rex(true, 0, 0, (int)r);
        if (imm is >= -128 and <= 127) { Bytes(0x83, (byte)(0xC0 | ((int)r & 7)), (byte)imm); }
        else { Bytes(0x81, (byte)(0xC0 | ((int)r & 7))); Int32(imm); }
        Text($"add {Mem.Name(r)}, {imm}");
    }

    /// <summary>dec r (sets ZF for the loop's jnz).</summary>
    public void Dec(Gpr r) { Rex(true, 0, 0, (int)r); Bytes(0xFF, (byte)(0xC8 | ((int)r & 7))); Text($"dec {Mem.Name(r)}"); }

    public void Ret() { Bytes(0xC3); Text("ret"); }

    /// <summary>Marks the current position as a backward-jump target and returns its id.</summary>
    public int Label()
    {
        labels.Add(code.Count);
        listing.Append(CultureInfo.InvariantCulture, $".L{labels.Count - 1}:\n");
        return labels.Count - 1;
    }

    /// <summary>jnz to an earlier label: rel8 when it reaches, else rel32 (what an assembler picks too).</summary>
    public void JnzBack(int label)
    {
        int target = labels[label];
        int rel8 = target - (code.Count + 2);
        if (rel8 >= -128) Bytes(0x75, (byte)(sbyte)rel8);
        else { Bytes(0x0F, 0x85); Int32(target - (code.Count + 4)); }
        Text($"jnz .L{label}");
    }

    // ---- encoding ----

    void EvexReg(int map, int pp, byte opcode, int reg, int vvvv, int rm)
    {
        Evex(map, pp, reg, vvvv, x: (rm >> 4) & 1, b: (rm >> 3) & 1, broadcast: false);
        Bytes(opcode, (byte)(0xC0 | ((reg & 7) << 3) | (rm & 7)));
    }

    void EvexMem(int map, int pp, byte opcode, int reg, int vvvv, Mem m, int n, bool broadcast = false)
    {
        Evex(map, pp, reg, vvvv, x: m.Index is { } i ? ((int)i >> 3) & 1 : 0, b: ((int)m.Base >> 3) & 1, broadcast);
        Bytes(opcode);
        ModRm(reg, m, n);
    }

    /// <summary>62 P0 P1 P2 for a 512-bit, W0, unmasked instruction.</summary>
    void Evex(int map, int pp, int reg, int vvvv, int x, int b, bool broadcast)
    {
        if ((uint)reg > 31 || (uint)vvvv > 31) throw new ArgumentOutOfRangeException(nameof(reg), "zmm registers are 0–31.");
        int p0 = ((~reg >> 3 & 1) << 7) | ((~x & 1) << 6) | ((~b & 1) << 5) | ((~reg >> 4 & 1) << 4) | map;
        int p1 = ((~vvvv & 15) << 3) | 0x04 | pp;
        int p2 = 0x40 | (broadcast ? 0x10 : 0) | ((~vvvv >> 4 & 1) << 3);
        Bytes(0x62, (byte)p0, (byte)p1, (byte)p2);
    }

    /// <summary>C4 [R̄ X̄ B̄ m-mmmm] [W0 v̄v̄v̄v̄ L0 pp] for a memory operand.</summary>
    void Vex3(int map, int pp, int reg, int vvvv, Mem m) =>
        Bytes(0xC4, (byte)(((~reg >> 3 & 1) << 7) | ((~(m.Index is { } i ? (int)i : 0) >> 3 & 1) << 6) | ((~(int)m.Base >> 3 & 1) << 5) | map),
            (byte)(((~vvvv & 15) << 3) | pp));

    /// <summary>The VEX3 prefix of a register-only AMX instruction (map 0F38; tmm numbers need no extension bits).</summary>
    void Vex3Reg(int pp, int vvvv) => Bytes(0xC4, 0xE2, (byte)(((~vvvv & 15) << 3) | pp));

    void Rex(bool w, int reg, int index, int rm) => Bytes((byte)(0x40 | (w ? 8 : 0) | ((reg >> 3 & 1) << 2) | ((index >> 3 & 1) << 1) | (rm >> 3 & 1)));

    /// <summary>ModRM, SIB and displacement of a memory operand; <paramref name="n"/> is EVEX's disp8 scale (1 for legacy).</summary>
    void ModRm(int reg, Mem m, int n)
    {
        int baseLow = (int)m.Base & 7;
        if (m.Index == Gpr.Rsp) throw new ArgumentException("rsp cannot be an index register.");
        bool sib = m.Index != null || baseLow == 4;
        int mod = m.Disp == 0 && baseLow != 5 ? 0
            : m.Disp % n == 0 && m.Disp / n is >= -128 and <= 127 ? 1 : 2;
        Bytes((byte)((mod << 6) | ((reg & 7) << 3) | (sib ? 4 : baseLow)));
        if (sib)
        {
            int ss = m.Scale switch { 1 => 0, 2 => 1, 4 => 2, 8 => 3, _ => throw new ArgumentException($"scale {m.Scale} is not 1, 2, 4 or 8.") };
            Bytes((byte)((ss << 6) | (((m.Index is { } i ? (int)i : 4) & 7) << 3) | baseLow));
        }
        if (mod == 1) Bytes((byte)(sbyte)(m.Disp / n));
        else if (mod == 2) Int32(m.Disp);
    }

    void Int32(int v) { for (int i = 0; i < 4; i++) code.Add((byte)(v >> (8 * i))); }

    void Bytes(params ReadOnlySpan<byte> b) { foreach (var x in b) code.Add(x); }

    void Text(string line) => listing.Append(line).Append('\n');
}
