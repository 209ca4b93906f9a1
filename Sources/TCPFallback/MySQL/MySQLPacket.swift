/// One packet of the MySQL client/server protocol: a 3-byte little-endian payload length, a
/// sequence number, then the payload.
struct MySQLPacket: Equatable {
    var sequence: UInt8
    var payload: [UInt8]

    /// The payload's first byte says what kind of packet an answer is.
    var isOK: Bool { payload.first == 0x00 }
    var isError: Bool { payload.first == 0xFF }
    /// An EOF packet (0xFE and shorter than 9 bytes; longer 0xFE packets are rows or requests).
    var isEOF: Bool { payload.first == 0xFE && payload.count < 9 }

    /// The bytes on the wire.
    var encoded: [UInt8] {
        [UInt8(payload.count & 0xFF), UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count >> 16 & 0xFF), sequence] + payload
    }

    /// An error packet's code and message (the SQL state, if any, left out).
    var error: (code: Int, message: String)? {
        guard isError, payload.count >= 3 else { return nil }
        var message = payload[3...]
        if message.first == UInt8(ascii: "#") { message = message.dropFirst(6) }
        return (Int(payload[1]) | Int(payload[2]) << 8, String(decoding: message, as: UTF8.self))
    }
}

/// Cuts a byte stream into packets.
///
/// Contract: `append` takes bytes as they arrive; `next()` returns each complete packet once,
/// in order, and nil until the next one is complete. A packet longer than `maximumPayload`
/// throws instead of being buffered: a check reads a few small result sets, so a large one
/// means a peer that is not the server we think.
struct MySQLPacketReader {
    static let defaultMaximumPayload = 1 << 20
    private var buffer: [UInt8] = []
    private var start = 0
    let maximumPayload: Int

    init(maximumPayload: Int = Self.defaultMaximumPayload) {
        self.maximumPayload = maximumPayload
    }

    mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    mutating func next() throws(MySQLProtocolError) -> MySQLPacket? {
        guard buffer.count - start >= 4 else { return nil }
        let length = Int(buffer[start]) | Int(buffer[start + 1]) << 8 | Int(buffer[start + 2]) << 16
        guard length <= maximumPayload else { throw MySQLProtocolError("a packet of \(length) bytes (at most \(maximumPayload) expected)") }
        guard buffer.count - start >= 4 + length else { return nil }
        let packet = MySQLPacket(sequence: buffer[start + 3], payload: Array(buffer[(start + 4)..<(start + 4 + length)]))
        start += 4 + length
        return packet
    }
}

/// Bytes from a server that do not follow the protocol.
struct MySQLProtocolError: Error, CustomStringConvertible, Equatable {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
