import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP socket on 127.0.0.1 with a receive timeout: the tests' client, and the
/// server side of test backends. Independent of the code under test on purpose.
public final class TestSocket: @unchecked Sendable {
    public let fd: Int32
    private let closed = NSLock()
    private var isClosed = false

    public struct SocketError: Error, CustomStringConvertible {
        public let operation: String
        public let code: Int32

        public init(operation: String, code: Int32) {
            self.operation = operation
            self.code = code
        }

        public var description: String { "\(operation): \(String(cString: strerror(code))) (errno \(code))" }
    }

    init(fd: Int32, timeout: Double = 10) {
        self.fd = fd
        setTimeout(timeout)
    }

    /// How long a receive or send may block before it fails.
    public func setTimeout(_ timeout: Double) {
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    /// Connects to 127.0.0.1:`port`.
    /// - Parameter host: an IPv4 address (a test network's, say); 127.0.0.1 by default.
    public static func connect(host: String = "127.0.0.1", port: Int, timeout: Double = 10) throws -> TestSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", code: errno) }
        let socket = TestSocket(fd: fd, timeout: timeout)
        var address = sockaddr_in.loopback(port: port, host: host)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw SocketError(operation: "connect", code: errno) }
        return socket
    }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError(operation: "send", code: errno)
            }
            offset += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Up to `max` bytes; empty at end of stream; throws on error or timeout.
    public func receive(max: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR { continue }
            throw SocketError(operation: "recv", code: errno)
        }
    }

    /// Everything until end of stream.
    public func receiveToEnd() throws -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = try receive()
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    /// Exactly `count` bytes, or fewer if the stream ends first.
    public func receive(exactly count: Int) throws -> [UInt8] {
        var all: [UInt8] = []
        while all.count < count {
            let chunk = try receive(max: min(65536, count - all.count))
            if chunk.isEmpty { break }
            all += chunk
        }
        return all
    }

    public func receiveString(exactly count: Int) throws -> String {
        String(decoding: try receive(exactly: count), as: UTF8.self)
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with a reset instead of a clean end of stream.
    public func reset() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    public func close() {
        closed.lock()
        defer { closed.unlock() }
        if !isClosed {
            isClosed = true
            Glibc.close(fd)
        }
    }
}

extension sockaddr_in {
    /// An IPv4 address: 127.0.0.1 unless `host` says another.
    static func loopback(port: Int, host: String = "127.0.0.1") -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }
}

extension TestSocket {
    /// Reads until the stream ends; returns how many bytes came and how it ended: "clean end",
    /// "reset" (ECONNRESET), or the error.
    public func receiveUntilEnd() -> (count: Int, ending: String) {
        var count = 0
        while true {
            do {
                let chunk = try receive()
                if chunk.isEmpty { return (count, "clean end") }
                count += chunk.count
            } catch let error as SocketError {
                return (count, error.code == ECONNRESET ? "reset" : "\(error)")
            } catch {
                return (count, "\(error)")
            }
        }
    }
}
