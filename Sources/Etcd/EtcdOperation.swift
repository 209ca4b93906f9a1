/// One operation of a transaction's branch.
public enum EtcdOperation: Sendable {
    case put(key: String, value: [UInt8], lease: Int64 = 0)
    case delete(key: String)
    case deletePrefix(String)
    /// Reads exactly this key; its result lands in `EtcdTxnResult.gets`.
    case get(key: String)
}
