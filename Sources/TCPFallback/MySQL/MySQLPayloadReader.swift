/// Reads the fields of one packet's payload in order. Every read checks the bounds and throws
/// `MySQLProtocolError` naming the field when the payload is too short: payloads come from the
/// network.
struct MySQLPayloadReader {
    private let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte(_ field: String) throws(MySQLProtocolError) -> UInt8 {
        guard offset < bytes.count else { throw MySQLProtocolError("\(field) is missing") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A little-endian unsigned integer of `size` bytes (1 to 8).
    mutating func integer(_ size: Int, _ field: String) throws(MySQLProtocolError) -> UInt64 {
        guard remaining >= size else { throw MySQLProtocolError("\(field) is cut short") }
        var value: UInt64 = 0
        for index in 0..<size { value |= UInt64(bytes[offset + index]) << (8 * index) }
        offset += size
        return value
    }

    mutating func fixed(_ count: Int, _ field: String) throws(MySQLProtocolError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw MySQLProtocolError("\(field) is cut short") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// A NUL-terminated string; without the NUL, the rest of the payload.
    mutating func nulTerminated(_ field: String) -> [UInt8] {
        let end = bytes[offset...].firstIndex(of: 0) ?? bytes.count
        defer { offset = min(end + 1, bytes.count) }
        return Array(bytes[offset..<end])
    }

    mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return offset < bytes.count ? Array(bytes[offset...]) : []
    }

    /// A length-encoded integer; nil for 0xFB (NULL in a row).
    mutating func lengthEncoded(_ field: String) throws(MySQLProtocolError) -> UInt64? {
        let first = try byte(field)
        switch first {
        case 0xFB: return nil
        case 0xFC: return try integer(2, field)
        case 0xFD: return try integer(3, field)
        case 0xFE: return try integer(8, field)
        case 0xFF: throw MySQLProtocolError("\(field) starts with 0xFF")
        default: return UInt64(first)
        }
    }

    /// A length-encoded string; nil for NULL.
    mutating func lengthEncodedString(_ field: String) throws(MySQLProtocolError) -> String? {
        guard let length = try lengthEncoded(field) else { return nil }
        guard length <= UInt64(remaining) else { throw MySQLProtocolError("\(field) is cut short") }
        return String(decoding: try fixed(Int(length), field), as: UTF8.self)
    }
}
