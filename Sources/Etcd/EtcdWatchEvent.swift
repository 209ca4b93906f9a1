/// One change seen by a watch.
public struct EtcdWatchEvent: Sendable, Equatable {
    public enum Kind: Sendable {
        case put, delete
    }

    public let kind: Kind
    /// For a put, the key as written; for a delete, only the key and the deletion's
    /// modRevision are set (etcd sends nothing else for a tombstone).
    public let keyValue: EtcdKeyValue

    public init(kind: Kind, keyValue: EtcdKeyValue) {
        self.kind = kind
        self.keyValue = keyValue
    }
}
