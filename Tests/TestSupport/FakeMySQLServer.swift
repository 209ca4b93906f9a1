import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for a MySQL/MariaDB server, for the greeting gate and the mysql check: it
/// greets, refuses with an error packet, or says nothing, as the test sets it, and counts the
/// logins and goodbyes it is sent.
public final class FakeMySQLServer: @unchecked Sendable {
    public enum Mode: Sendable {
        /// A protocol-10 handshake whose server version names this server; then it echoes.
        case greet
        /// An error packet, then close: "Too many connections".
        case tooManyConnections
        /// Accepts and never speaks, like a stopped server whose kernel still answers SYNs.
        case silent
    }

    public let name: String
    private let lock = NSLock()
    private var currentMode: Mode
    private var logins = 0
    private var quits = 0
    private var server: TestServer!

    public var port: Int { server.port }

    public init(name: String, mode: Mode = .greet) throws {
        self.name = name
        self.currentMode = mode
        server = try TestServer { [unowned self] connection in try self.serve(connection) }
    }

    public var mode: Mode {
        get { lock.withLock { currentMode } }
        set { lock.withLock { currentMode = newValue } }
    }

    /// Handshake responses received (logins attempted) and COM_QUITs.
    public var handshakes: (logins: Int, quits: Int) { lock.withLock { (logins, quits) } }

    public func stop() { server.stop() }

    /// The greeting a client of this server sees.
    public var greeting: [UInt8] {
        var payload: [UInt8] = [10] + Array("10.11.0-\(name)".utf8) + [0]
        payload += [1, 0, 0, 0] + Array("abcdefgh".utf8) + [0]  // thread id, scramble part 1
        payload += [0xFF, 0xF7, 33, 2, 0, 0xFF, 0x81, 21] + [UInt8](repeating: 0, count: 10)
        payload += Array("ijklmnopqrst".utf8) + [0] + Array("mysql_native_password".utf8) + [0]
        return Self.packet(payload, sequence: 0)
    }

    public static func packet(_ payload: [UInt8], sequence: UInt8) -> [UInt8] {
        [UInt8(payload.count & 0xFF), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count >> 16), sequence] + payload
    }

    private func serve(_ connection: TestSocket) throws {
        switch mode {
        case .silent:
            _ = try? connection.receiveToEnd()
            return
        case .tooManyConnections:
            try connection.send(Self.packet([0xFF, 0x10, 0x04] + Array("#08004Too many connections".utf8), sequence: 0))
            connection.close()
            return
        case .greet:
            try connection.send(greeting)
        }
        // A health check logs in (sequence 1) and says goodbye (COM_QUIT); a client through the
        // proxy gets everything else echoed.
        while true {
            let header = try connection.receive(exactly: 4)
            guard header.count == 4 else { return }
            let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16
            let payload = try connection.receive(exactly: length)
            if header[3] == 1 {
                lock.withLock { logins += 1 }
                try connection.send(Self.packet([0xFF, 0x15, 0x04] + Array("#28000Access denied".utf8), sequence: 2))
            } else if payload == [0x01] {
                lock.withLock { quits += 1 }
                connection.close()
                return
            } else {
                try connection.send(header + payload)
            }
        }
    }
}
