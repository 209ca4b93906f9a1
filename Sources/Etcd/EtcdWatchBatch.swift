/// The events of one watch response, in revision order.
public struct EtcdWatchBatch: Sendable {
    /// header.revision of the response: the store's revision when it was sent.
    public let revision: Int64
    public let events: [EtcdWatchEvent]

    public init(revision: Int64, events: [EtcdWatchEvent]) {
        self.revision = revision
        self.events = events
    }
}
