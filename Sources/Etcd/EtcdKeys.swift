import FoundationEssentials  // Data's base64; not Foundation, whose module would bring ICU's data into the binary

/// How keys and values travel through the JSON gateway: etcd's keys and values are bytes,
/// which protobuf's JSON mapping writes as base64; a prefix is a key range [key, range_end).
enum EtcdKeys {
    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func base64(_ text: String) -> String { base64(Array(text.utf8)) }

    /// Decodes base64 text; an absent field (protobuf leaves out empty bytes) is empty.
    static func bytes(base64 text: String?) throws -> [UInt8] {
        guard let text, !text.isEmpty else { return [] }
        guard let data = Data(base64Encoded: text) else { throw EtcdError.badResponse("\"\(text.prefix(40))\" is not base64") }
        return Array(data)
    }

    /// The end of the range of keys that start with `prefix`: the prefix with its last byte
    /// that is not 0xff incremented, the bytes after it dropped (every key with the prefix
    /// sorts below that). A prefix of only 0xff bytes, or none, has no such bound: etcd's
    /// "\0" then means "to the end of the key space".
    static func rangeEnd(forPrefix prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    /// The key and range_end that select every key starting with `prefix`; the empty prefix
    /// selects every key ("\0" to "\0", etcd's spelling of "all keys").
    static func prefixRange(_ prefix: String) -> (key: [UInt8], rangeEnd: [UInt8]) {
        let bytes = Array(prefix.utf8)
        if bytes.isEmpty { return ([0], [0]) }
        return (bytes, rangeEnd(forPrefix: bytes))
    }
}
