import Synchronization

/// Per-backend traffic counters. They are atomics rather than actor state because the data
/// path updates them on every read batch, and a hop to an actor there would cost more than
/// the forwarding itself.
public final class BackendCounters: Sendable {
    let connectionsTotal = Atomic<Int>(0)
    let activeConnections = Atomic<Int>(0)
    let bytesFromClient = Atomic<Int>(0)
    let bytesToClient = Atomic<Int>(0)
    let connectErrors = Atomic<Int>(0)

    /// A consistent-enough copy for reporting.
    public struct Values: Sendable, Equatable {
        public var connectionsTotal: Int
        public var activeConnections: Int
        public var bytesFromClient: Int
        public var bytesToClient: Int
        public var connectErrors: Int
    }

    public var values: Values {
        Values(
            connectionsTotal: connectionsTotal.load(ordering: .relaxed),
            activeConnections: activeConnections.load(ordering: .relaxed),
            bytesFromClient: bytesFromClient.load(ordering: .relaxed),
            bytesToClient: bytesToClient.load(ordering: .relaxed),
            connectErrors: connectErrors.load(ordering: .relaxed)
        )
    }

    func connectionOpened() {
        connectionsTotal.add(1, ordering: .relaxed)
        activeConnections.add(1, ordering: .relaxed)
    }

    func connectionClosed() {
        activeConnections.subtract(1, ordering: .relaxed)
    }
}
