/// The few pieces of the MySQL/MariaDB client protocol the health check and the greeting gate
/// need: reading the server's first packet, and a polite handshake and goodbye.
enum MySQLProtocol {
    /// What a server's first packet says.
    enum Greeting: Equatable {
        /// A protocol-10 handshake: the server accepts clients. `version` as it announces it.
        case handshake(version: String)
        /// An error packet instead of a handshake ("Too many connections", "Host is blocked").
        case error(code: Int, message: String)
        /// Not a MySQL greeting.
        case malformed(String)
        /// Not enough bytes yet.
        case incomplete
    }

    /// Reads the first packet from `bytes` (header: 3-byte length, 1-byte sequence).
    static func parseGreeting(_ bytes: [UInt8]) -> Greeting {
        guard bytes.count >= 5 else { return .incomplete }
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        guard length > 0, length < 1 << 16 else { return .malformed("packet length \(length)") }
        let kind = bytes[4]
        if kind == 0xFF {
            // Error packets can be judged from their first bytes; the message may follow.
            let payload = bytes.dropFirst(4).prefix(length)
            guard payload.count >= 3 else { return .incomplete }
            let code = Int(payload[payload.startIndex + 1]) | Int(payload[payload.startIndex + 2]) << 8
            var message = payload.dropFirst(3)
            if message.first == UInt8(ascii: "#") { message = message.dropFirst(6) }  // SQL state
            return .error(code: code, message: String(decoding: message, as: UTF8.self))
        }
        guard bytes.count >= 4 + length else { return .incomplete }
        guard kind == 10 else { return .malformed("protocol version \(kind)") }
        let payload = bytes[5..<(4 + length)]
        guard let end = payload.firstIndex(of: 0) else { return .malformed("no server version") }
        return .handshake(version: String(decoding: payload[payload.startIndex..<end], as: UTF8.self))
    }

    /// A HandshakeResponse41 for `user` with an empty password and no database: the server
    /// ends the handshake properly (with an error for an unknown user), so the connection
    /// does not count as an interrupted handshake towards `max_connect_errors`.
    static func handshakeResponse(user: String) -> [UInt8] {
        let capabilities: UInt32 = 0x0000_0200 | 0x0000_8000 | 0x0000_0001  // PROTOCOL_41, SECURE_CONNECTION, LONG_PASSWORD
        var payload: [UInt8] = []
        payload += littleEndian(capabilities)
        payload += littleEndian(UInt32(1 << 24))  // max packet size
        payload.append(33)  // utf8_general_ci
        payload += [UInt8](repeating: 0, count: 23)
        payload += Array(user.utf8) + [0]
        payload.append(0)  // empty auth response
        return packet(payload, sequence: 1)
    }

    /// COM_QUIT: the client says goodbye.
    static let quit = packet([0x01], sequence: 0)

    static func packet(_ payload: [UInt8], sequence: UInt8) -> [UInt8] {
        [UInt8(payload.count & 0xFF), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count >> 16 & 0xFF), sequence] + payload
    }

    private static func littleEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
    }
}
