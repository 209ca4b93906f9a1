import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket the test binds and reads: a fake systemd notify socket, journal
/// socket or /dev/log. Every datagram received is kept, as text, with its arrival time.
public final class DatagramListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(time: Date, text: String)] = []
    private var closed = false

    public init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let bound = withUnixAddress(path) { bind(fd, $0, $1) }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestSocket.SocketError(operation: "bind \(path)", code: code)
        }
        chmod(path, 0o666)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in receiveLoop() }.start()
    }

    deinit { close() }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while lock.withLock({ !closed }) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                lock.withLock { received.append((Date(), text)) }
            }
        }
    }

    /// Every datagram so far.
    public var messages: [String] { lock.withLock { received.map(\.text) } }

    /// Datagrams with their arrival times.
    public var timedMessages: [(time: Date, text: String)] { lock.withLock { received } }

    /// Waits until a datagram satisfies `predicate`; returns it.
    public func waitFor(timeout: Double = 10, _ predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let found = messages.first(where: predicate) { return found }
            usleep(10_000)
        } while Date() < deadline
        return nil
    }

    public func close() {
        let first = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        usleep(250_000)  // let the receive loop see the flag before the descriptor goes
        Glibc.close(fd)
        unlink(path)
    }
}

/// A fresh directory under /tmp, removed with everything in it by `remove()`.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init() throws {
        var template = Array("/tmp/tcp-fallback-test.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestSocket.SocketError(operation: "mkdtemp", code: errno) }
        path = String(cString: made)
        chmod(path, 0o755)
    }

    deinit { remove() }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    public func file(_ name: String) -> String { path + "/" + name }
}

/// Whether this process may make a private mount namespace (`unshare -m`, needs root): the
/// journal and syslog tests put their own sockets in place of the system's there.
public let canUseMountNamespaces: Bool = {
    guard getuid() == 0 else { return false }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    process.arguments = ["-m", "true"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

/// The arguments that run the proxy binary in a private mount namespace after bind-mounting
/// each `(source, target)` pair; for `ProxyProcess(_:executable:)` with `/usr/bin/unshare`.
public func inMountNamespace(binding mounts: [(String, String)], _ arguments: [String]) -> [String] {
    let script = mounts.map { "mount --bind '\($0.0)' '\($0.1)'" }.joined(separator: " && ") + " && exec \"$@\""
    return ["-m", "sh", "-c", script, "sh", ProxyProcess.binary.path] + arguments
}

/// Calls `body` with a `sockaddr_un` for `path` and its length.
public func withUnixAddress<Result>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}
