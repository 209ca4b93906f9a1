import CSystemd
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Logs natively to the systemd journal with `sd_journal_sendv`: `MESSAGE`, `PRIORITY`,
/// `SYSLOG_IDENTIFIER`, and the record's metadata as upper-case fields (`BACKEND`, `CLIENT`,
/// `EVENT`), so `journalctl EVENT=backend_down` finds every failover.
///
/// If the journal cannot be reached, it says so once on standard error and logs there from
/// then on, so nothing is lost silently.
public final class JournalSink: LogSink {
    private let identifier: String
    private let fallback = FileDescriptorSink.standardError()
    private let failedOver = Atomic<Bool>(false)

    /// The journal's socket. sd_journal_sendv drops messages without an error when it is
    /// missing, so reachability is checked here once, at start-up.
    public static let socketPath = "/run/systemd/journal/socket"

    public init(identifier: String = "tcp-fallback") {
        self.identifier = identifier
        if let problem = Self.reachabilityProblem() { fallBack(problem) }
    }

    public func write(_ record: LogRecord) {
        if !failedOver.load(ordering: .relaxed) {
            let result = send(record)
            if result >= 0 { return }
            fallBack(ConnectFailure.errnoText(-result))
        }
        fallback.write(record)
    }

    /// From now on, standard error; says so once.
    private func fallBack(_ reason: String) {
        guard !failedOver.exchange(true, ordering: .relaxed) else { return }
        fallback.write(LogRecord(level: .warning, message: "the journal cannot be reached (\(reason)); logging to standard error"))
    }

    static func reachabilityProblem() -> String? {
        let fd = socket(AF_UNIX, SocketFlags.datagram | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { return ConnectFailure.errnoText(errno) }
        defer { close(fd) }
        return UnixSocketAddress.connect(fd, to: socketPath) ? nil : "\(socketPath): \(ConnectFailure.errnoText(errno))"
    }

    /// Whether the journal took a record; false after a failure made this sink fall back.
    public var isLoggingToJournal: Bool { !failedOver.load(ordering: .relaxed) }

    private func send(_ record: LogRecord) -> Int32 {
        var fields = [
            "MESSAGE=\(record.message)",
            "PRIORITY=\(SyslogSink.priority(record.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
        ]
        for (key, value) in record.metadata.sorted(by: { $0.key < $1.key }) {
            let name = Self.fieldName(key)
            if !name.isEmpty { fields.append("\(name)=\(value)") }
        }
        // Each field is one iovec; the bytes must stay alive for the call.
        let buffers = fields.map { Array($0.utf8) }
        return Self.withIOVecs(buffers) { vectors in
            sd_journal_sendv(vectors.baseAddress, Int32(vectors.count))
        }
    }

    private static func withIOVecs<R>(_ buffers: [[UInt8]], _ body: (UnsafeBufferPointer<iovec>) -> R) -> R {
        var pinned: [UnsafeMutableRawBufferPointer] = []
        defer { for buffer in pinned { buffer.deallocate() } }
        var vectors: [iovec] = []
        for bytes in buffers {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            copy.copyBytes(from: bytes)
            pinned.append(copy)
            vectors.append(iovec(iov_base: copy.baseAddress, iov_len: bytes.count))
        }
        return vectors.withUnsafeBufferPointer(body)
    }

    /// Journal field names are upper-case letters, digits and underscores, not starting with
    /// an underscore (those are trusted fields the journal sets itself).
    static func fieldName(_ key: String) -> String {
        let name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }).drop(while: { $0 == "_" || $0.isNumber })
        return String(name.prefix(64))
    }

    /// Whether standard error is already connected to the journal: systemd sets
    /// `JOURNAL_STREAM` to the device and inode of that stream.
    public static func standardErrorIsJournal(journalStream: String? = Environment.value("JOURNAL_STREAM")) -> Bool {
        guard let value = journalStream else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }
}
