#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One command sent to a control socket and its answer, with plain blocking calls: for
/// `tcp-fallback ctl` and for an upgrade, which run before (or without) any event loop.
public enum ControlExchange {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// An answer: whether the command succeeded, as the status line says, and its text.
    public struct Answer: Sendable, Equatable {
        public let ok: Bool
        public let text: String
    }

    /// The status lines that end every answer, before its empty line.
    public static let successLine = "ok"
    public static let failureLine = "error"

    /// Sends `line` to the control socket at `path` and returns the answer: its text (without
    /// the status line and the closing empty line) and whether it succeeded. Fails if nothing
    /// answers there within `timeout` seconds.
    public static func send(_ line: String, to path: String, timeout: Int = 30) throws(Failure) -> Answer {
        let fd = socket(AF_UNIX, SocketFlags.stream | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(ConnectFailure.errnoText(errno))") }
        defer { close(fd) }
        guard UnixSocketAddress.connect(fd, to: path) else {
            throw Failure(description: "cannot connect to \(path): \(ConnectFailure.errnoText(errno)) (is tcp-fallback running with -control \(path)?)")
        }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array((line + "\n").utf8)
        guard bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw Failure(description: "cannot send to \(path): \(ConnectFailure.errnoText(errno))")
        }
        shutdown(fd, Int32(SHUT_WR))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "no answer from \(path): \(ConnectFailure.errnoText(errno))")
            }
            answer += buffer[0..<count]
        }
        return parse(String(decoding: answer, as: UTF8.self))
    }

    /// An answer's text and status. A process of a version before the status line (the one an
    /// upgrade takes over from) says failure only in the text: "error:" first, or "ok":false.
    static func parse(_ raw: String) -> Answer {
        var text = raw
        while text.hasSuffix("\n") { text.removeLast() }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let last = lines.last, last == successLine || last == failureLine {
            lines.removeLast()
            return Answer(ok: last == successLine, text: lines.joined(separator: "\n"))
        }
        return Answer(ok: !(text.hasPrefix("error:") || text.hasPrefix("{\"ok\":false")), text: text)
    }

    /// Whether a process answers on the control socket at `path`.
    public static func answers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, SocketFlags.stream | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return UnixSocketAddress.connect(fd, to: path)
    }
}
