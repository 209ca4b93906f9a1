/// The outcome of a transaction: which branch ran and what its reads found.
public struct EtcdTxnResult: Sendable {
    /// True when every compare held (the success branch ran).
    public let succeeded: Bool
    /// header.revision after the transaction.
    public let revision: Int64
    /// One entry per `.get` of the branch taken, in order; an absent key gives [].
    public let gets: [[EtcdKeyValue]]

    public init(succeeded: Bool, revision: Int64, gets: [[EtcdKeyValue]]) {
        self.succeeded = succeeded
        self.revision = revision
        self.gets = gets
    }
}
