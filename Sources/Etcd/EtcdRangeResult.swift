/// The answer to a read: the keys found and the store's revision at the time of the read
/// (the revision to watch from, plus one, to miss nothing after it).
public struct EtcdRangeResult: Sendable {
    public let keyValues: [EtcdKeyValue]
    /// header.revision: the store's revision when the read was served.
    public let revision: Int64

    public init(keyValues: [EtcdKeyValue], revision: Int64) {
        self.keyValues = keyValues
        self.revision = revision
    }
}
