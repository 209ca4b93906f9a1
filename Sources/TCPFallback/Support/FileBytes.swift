#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whole-file reads and atomic writes, without Foundation.
public enum FileBytes {
    public static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes += chunk[0..<n]
            } else if n == 0 {
                return bytes
            } else if errno != EINTR {
                return nil
            }
        }
    }

    /// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so a
    /// reader never sees half a file. Throws a message naming the file.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileError) {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, reason: ConnectFailure.errnoText(errno)) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = ConnectFailure.errnoText(errno)
                close(fd)
                unlink(temporary)
                throw FileError(path: path, reason: reason)
            }
            offset += n
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = ConnectFailure.errnoText(errno)
            unlink(temporary)
            throw FileError(path: path, reason: reason)
        }
    }

    /// Whether `path` can be created or written, checked before a long profile starts.
    static func checkWritable(_ path: String) throws(FileError) {
        let existed = access(path, F_OK) == 0
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, reason: ConnectFailure.errnoText(errno)) }
        close(fd)
        if !existed { unlink(path) }
    }

    struct FileError: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "cannot write \"\(path)\": \(reason)" }
    }
}
