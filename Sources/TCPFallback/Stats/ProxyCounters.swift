import Synchronization

/// Process-wide counters of the listener, updated from the event loops.
public final class ProxyCounters: Sendable {
    let acceptedConnections = Atomic<Int>(0)
    let openClientConnections = Atomic<Int>(0)
    let acceptErrors = Atomic<Int>(0)
    /// Connection attempts that failed and passed their client on to the next backend.
    let failovers = Atomic<Int>(0)

    public struct Values: Sendable, Equatable {
        public var acceptedConnections: Int
        /// Client connections not yet closed, including those still connecting to a backend.
        public var openClientConnections: Int
        public var acceptErrors: Int
        public var failovers: Int
    }

    public var values: Values {
        Values(
            acceptedConnections: acceptedConnections.load(ordering: .relaxed),
            openClientConnections: openClientConnections.load(ordering: .relaxed),
            acceptErrors: acceptErrors.load(ordering: .relaxed),
            failovers: failovers.load(ordering: .relaxed))
    }
}
