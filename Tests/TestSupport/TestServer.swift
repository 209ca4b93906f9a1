import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A backend for tests: listens on 127.0.0.1 (port 0 unless given) and runs `handler` on its
/// own thread for each connection. `stop()` closes the listener and every connection.
public final class TestServer: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var connections: [TestSocket] = []
    private var stopped = false
    private var acceptedCount = 0

    /// - Parameter backlog: the listen backlog; 0 with `accepting: false` makes a server
    ///   whose queue fills at once, so further connection attempts hang (a hung backend).
    /// - Parameter address: the IPv4 address to bind; "0.0.0.0" serves test networks too.
    public init(
        port: Int = 0, address host: String = "127.0.0.1", backlog: Int32 = 128, accepting: Bool = true,
        handler: @escaping @Sendable (TestSocket) throws -> Void = { _ in }
    ) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in.loopback(port: port, host: host)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, backlog) == 0 else {
            let code = errno
            Glibc.close(listener)
            throw TestSocket.SocketError(operation: "bind/listen", code: code)
        }
        self.port = localPort(of: listener)
        guard accepting else { return }
        let thread = Thread { [self] in acceptLoop(handler) }
        thread.start()
    }

    deinit { stop() }

    /// Connections accepted so far.
    public var accepted: Int { lock.withLock { acceptedCount } }

    private func acceptLoop(_ handler: @escaping @Sendable (TestSocket) throws -> Void) {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let connection = TestSocket(fd: fd)
            let keep = lock.withLock { () -> Bool in
                if stopped { return false }
                connections.append(connection)
                acceptedCount += 1
                return true
            }
            guard keep else {
                connection.close()
                return
            }
            Thread.detachNewThread {
                try? handler(connection)
                connection.close()  // a handler that returns is done with its connection
            }
        }
    }

    /// Closes the listener and every connection; later calls do nothing (closing a
    /// descriptor twice could close one that another test has since been given).
    public func stop() {
        let toClose = lock.withLock { () -> [TestSocket]? in
            if stopped { return nil }
            stopped = true
            defer { connections = [] }
            return connections
        }
        guard let toClose else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for connection in toClose { connection.close() }
    }

    /// Answers every connection with `name` and closes it: tells which backend a client got.
    public static func naming(_ name: String, port: Int = 0, address: String = "127.0.0.1") throws -> TestServer {
        try TestServer(port: port, address: address) { connection in
            try connection.send(name)
            connection.shutdownWrite()
            _ = try? connection.receiveToEnd()
            connection.close()
        }
    }

    /// Echoes every byte back and ends its stream when the client ends its own.
    /// - Parameter idleLimit: how long a connection may stay silent before the server gives up
    ///   on it (its receive times out and it closes).
    public static func echo(idleLimit: Double = 10) throws -> TestServer {
        try TestServer { connection in
            connection.setTimeout(idleLimit)
            while true {
                let chunk = try connection.receive()
                if chunk.isEmpty { break }
                try connection.send(chunk)
            }
            connection.shutdownWrite()
            connection.close()
        }
    }
}

public func localPort(of fd: Int32) -> Int {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A port on 127.0.0.1 where nothing listens, so connecting is refused; tests may bind it
/// later. It is taken from below the kernel's ephemeral range, so that no connection made
/// meanwhile (by this test or another) is given it as its local port.
public func refusingPort() throws -> Int {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
        .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
    let upper = min((range?.first ?? 32768) - 1, 32767)
    for _ in 0..<100 {
        let port = Int.random(in: 10000...upper)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if bound == 0 { return port }
    }
    throw TestSocket.SocketError(operation: "find a free port", code: EADDRINUSE)
}

/// A listener that never accepts and whose accept queue is full: connecting to it hangs,
/// like a server that is up but stuck. Keep it alive as long as the test needs the hang.
public final class HungServer: @unchecked Sendable {
    public let port: Int
    private let server: TestServer
    private var fillers: [Int32] = []

    public init() throws {
        server = try TestServer(backlog: 0, accepting: false)
        port = server.port
        // Fill the queue: connections complete until it is full, then they stay pending.
        for _ in 0..<8 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var address = sockaddr_in.loopback(port: port)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(fd)
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&poller, 1, 200) == 0 { break }  // this one hangs: the queue is full
        }
    }

    deinit {
        for fd in fillers { close(fd) }
        server.stop()
    }
}
