import Synchronization

/// Process-wide counters of the listeners: one slot per data loop, written only by that loop,
/// summed when read (stats, metrics, status, control socket).
public final class ProxyCounters: Sendable {
    /// Indexed by data loop.
    let slots: [Slot]

    final class Slot: Sendable {
        let acceptedConnections = Atomic<Int>(0)
        let openClientConnections = Atomic<Int>(0)
        let acceptErrors = Atomic<Int>(0)
        /// Connection attempts that failed and passed their client on to the next backend.
        let failovers = Atomic<Int>(0)
        /// Times this loop stopped accepting because `-maxconn` connections were open.
        let maxConnectionsReached = Atomic<Int>(0)
        /// Bytes relayed with splice(2), both ways (also counted in the backends' bytes).
        let splicedBytes = Atomic<Int>(0)
    }

    init(loops: Int) {
        slots = (0..<max(loops, 1)).map { _ in Slot() }
    }

    public struct Values: Sendable, Equatable {
        public var acceptedConnections: Int
        /// Client connections not yet closed, including those still connecting to a backend.
        public var openClientConnections: Int
        public var acceptErrors: Int
        public var failovers: Int
        /// Times accepting paused because the connection limit (`-maxconn`) was reached.
        public var maxConnectionsReached: Int
        /// Bytes relayed with splice(2) (`-splice`), both ways.
        public var splicedBytes: Int
    }

    public var values: Values {
        var values = Values(acceptedConnections: 0, openClientConnections: 0, acceptErrors: 0, failovers: 0, maxConnectionsReached: 0, splicedBytes: 0)
        for slot in slots {
            values.acceptedConnections += slot.acceptedConnections.load(ordering: .relaxed)
            values.openClientConnections += slot.openClientConnections.load(ordering: .relaxed)
            values.acceptErrors += slot.acceptErrors.load(ordering: .relaxed)
            values.failovers += slot.failovers.load(ordering: .relaxed)
            values.maxConnectionsReached += slot.maxConnectionsReached.load(ordering: .relaxed)
            values.splicedBytes += slot.splicedBytes.load(ordering: .relaxed)
        }
        return values
    }
}
