import NIOCore

/// For servers that speak first (MySQL): the client is committed to a backend only once the
/// backend's first bytes have arrived, within a timeout, and for MySQL are not an error
/// packet. A hung server (the kernel still completes handshakes for a stopped process) or
/// one that answers "Too many connections" is then failed over like a refused connect, and
/// the client only ever sees a good greeting, which is forwarded unchanged.
struct GreetingGate: Sendable {
    let timeout: TimeAmount
    /// Judge the bytes as a MySQL greeting (error packets and garbage fail).
    let mysql: Bool

    init(timeout: Duration, mysql: Bool) {
        self.timeout = TimeAmount(timeout)
        self.mysql = mysql
    }

    /// The backend's greeting, or the reason it is not acceptable.
    func await(_ channel: any Channel) -> EventLoopFuture<[UInt8]> {
        let mysql = self.mysql
        return FirstBytes.collect(from: channel, timeout: timeout) { bytes in
            mysql ? MySQLProtocol.parseGreeting(bytes) != .incomplete : !bytes.isEmpty
        }.flatMapThrowing { bytes in
            if mysql { try MySQLCheck.judge(MySQLProtocol.parseGreeting(bytes)) }
            return bytes
        }.flatMapErrorThrowing { error in
            throw FirstBytes.Failure(description: "greeting: \(error)")
        }
    }
}
