import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A raw client of a unix stream socket.
public final class UnixClient: @unchecked Sendable {
    public let fd: Int32

    public init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = withUnixAddress(path) { connect(fd, $0, $1) }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw TestSocket.SocketError(operation: "connect \(path)", code: code)
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                // The proxy may close after answering a line that is too long.
                if errno == EPIPE || errno == ECONNRESET { return }
                throw TestSocket.SocketError(operation: "send", code: errno)
            }
            offset += n
        }
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    public func receiveToEnd() throws -> String {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == ECONNRESET { break }
                throw TestSocket.SocketError(operation: "recv", code: errno)
            }
            all += buffer[0..<n]
        }
        return String(decoding: all, as: UTF8.self)
    }
}
