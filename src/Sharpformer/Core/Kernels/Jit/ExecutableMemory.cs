using System.Runtime.InteropServices;

namespace Sharpformer.Kernels;

/// <summary>
/// Pages holding machine code emitted at run time, W^X: mapped read+write, filled, then switched to read+execute with
/// mprotect before anything runs, so no page is ever writable and executable at once. Linux only (mmap/mprotect from
/// libc); the pages live as long as the process, since the kernels are emitted once per process.
/// </summary>
internal static unsafe partial class ExecutableMemory
{
    const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;
    const int MapPrivate = 0x02, MapAnonymous = 0x20;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mprotect(nint addr, nuint length, int prot);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);

    /// <summary>Copies <paramref name="code"/> into fresh pages and makes them read+execute; returns their address.</summary>
    /// <exception cref="PlatformNotSupportedException">Not Linux, or the kernel refused the mapping (e.g. a policy forbidding executable anonymous memory).</exception>
    public static nint Load(ReadOnlySpan<byte> code)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("Run-time code emission needs Linux (mmap/mprotect).");
        nuint length = (nuint)((code.Length + 4095) & ~4095);
        nint p = mmap(0, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (p == -1) throw new PlatformNotSupportedException($"mmap of {length} bytes for emitted code failed (errno {Marshal.GetLastPInvokeError()}).");
        code.CopyTo(new Span<byte>((void*)p, code.Length));
        if (mprotect(p, length, ProtRead | ProtExec) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            munmap(p, length);
            throw new PlatformNotSupportedException($"mprotect(read+exec) of emitted code failed (errno {errno}).");
        }
        return p;
    }
}
