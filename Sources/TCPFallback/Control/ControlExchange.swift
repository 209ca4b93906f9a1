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

    /// Sends `line` to the control socket at `path` and returns the answer's text (without
    /// its closing empty line). Fails if nothing answers there within `timeout` seconds.
    public static func send(_ line: String, to path: String, timeout: Int = 30) throws(Failure) -> String {
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
        var text = String(decoding: answer, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// Whether an answer reports a failure (text answers start with "error:", JSON ones say
    /// "ok":false).
    public static func isFailure(_ answer: String) -> Bool {
        answer.hasPrefix("error:") || answer.hasPrefix("{\"ok\":false")
    }

    /// Whether a process answers on the control socket at `path`.
    public static func answers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, SocketFlags.stream | SocketFlags.closeOnExec, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return UnixSocketAddress.connect(fd, to: path)
    }
}
