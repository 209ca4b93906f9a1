import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes lines to a file descriptor: standard error, or a log file that SIGHUP reopens.
///
/// Each line is written whole with one `write(2)` under a lock, so lines from several event
/// loops never interleave, and an `O_APPEND` file stays correct when rotated underneath.
public final class FileDescriptorSink: LogSink {
    private let path: String?
    private let descriptor: Locked<Int32>

    /// Why a log file could not be opened; names the file.
    public struct OpenError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot open log file \"\(path)\": \(reason)" }
    }

    /// Logs to standard error.
    public static func standardError() -> FileDescriptorSink {
        FileDescriptorSink(path: nil, descriptor: STDERR_FILENO)
    }

    /// Appends to `path`, creating it with mode 0640.
    public convenience init(appendingTo path: String) throws(OpenError) {
        self.init(path: path, descriptor: try Self.open(path))
    }

    private init(path: String?, descriptor: Int32) {
        self.path = path
        self.descriptor = Locked(descriptor)
    }

    deinit {
        if path != nil { descriptor.withLock { _ = close($0) } }
    }

    /// Whether this sink is standard error rather than a file.
    public var isStandardError: Bool { path == nil }

    public func write(_ record: LogRecord) {
        writeLine(LogLine.format(record))
    }

    /// Writes `line` as it is, with a newline.
    public func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        descriptor.withLock { fd in
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // nowhere left to report a failing log
                    }
                }
            }
        }
    }

    /// Opens the file anew and closes the old descriptor; on failure the old one stays.
    public func reopen() throws {
        guard let path else { return }
        let fresh = try Self.open(path)
        let old = descriptor.withLock { fd in
            defer { fd = fresh }
            return fd
        }
        close(old)
    }

    private static func open(_ path: String) throws(OpenError) -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw OpenError(path: path, reason: ConnectFailure.errnoText(errno)) }
        return fd
    }
}
