/// One condition of a transaction, always an equality (what compare-and-set needs).
/// `.version(key:equals: 0)` holds when the key is absent: create-if-absent.
public enum EtcdCompare: Sendable {
    case version(key: String, equals: Int64)
    case value(key: String, equals: [UInt8])
    case modRevision(key: String, equals: Int64)
    case createRevision(key: String, equals: Int64)
}
