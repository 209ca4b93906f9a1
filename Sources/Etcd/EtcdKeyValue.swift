/// A key and its value as etcd stores it, with the revisions that tell when it was written.
/// Keys are text here (etcd's keys are bytes; this client writes only UTF-8 keys); values
/// stay bytes because callers may store anything.
public struct EtcdKeyValue: Sendable, Equatable {
    public let key: String
    public let value: [UInt8]
    /// The revision of the put that created the key (since its last deletion).
    public let createRevision: Int64
    /// The revision of the last change to the key.
    public let modRevision: Int64
    /// How many puts since the key was created; 0 means absent (used by compares).
    public let version: Int64
    /// The lease the key is attached to, 0 for none.
    public let lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    /// The value as UTF-8 text, or nil if it is not valid UTF-8.
    public var valueText: String? { String(validating: value, as: UTF8.self) }
}
