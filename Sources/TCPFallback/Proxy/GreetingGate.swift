/// For servers that speak first (MySQL): the client is committed to a backend only once the
/// backend's first bytes have arrived, within a timeout, and for MySQL are not an error
/// packet. A hung server (the kernel still completes handshakes for a stopped process) or
/// one that answers "Too many connections" is then failed over like a refused connect, and
/// the client only ever sees a good greeting, which is forwarded unchanged.
///
/// This type judges bytes; the data loop reads them (`DataLoop+Connect`).
struct GreetingGate: Sendable {
    let timeout: Duration
    /// Judge the bytes as a MySQL greeting (error packets and garbage fail).
    let mysql: Bool

    /// Why a backend's greeting was not accepted.
    struct Failure: Error, CustomStringConvertible {
        let reason: String
        var description: String { "greeting: \(reason)" }
    }

    /// Whether enough has arrived to judge.
    func isComplete(_ bytes: [UInt8]) -> Bool {
        mysql ? MySQLProtocol.parseGreeting(bytes) != .incomplete : !bytes.isEmpty
    }

    /// Throws the reason complete `bytes` are not an acceptable greeting.
    func judge(_ bytes: [UInt8]) throws {
        if mysql { try MySQLCheck.judge(MySQLProtocol.parseGreeting(bytes)) }
    }
}
