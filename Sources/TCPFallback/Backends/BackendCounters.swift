import Synchronization

/// Per-backend traffic counters: one slot per data loop, written only by that loop (no
/// read-modify-write and no shared cache line on the data path), summed when read.
public final class BackendCounters: Sendable {
    /// Indexed by data loop.
    let slots: [Slot]
    /// Failed connection attempts; counted off the steady path, so a shared atomic.
    let connectErrors = Atomic<Int>(0)

    final class Slot: Sendable {
        let connectionsTotal = Atomic<Int>(0)
        let activeConnections = Atomic<Int>(0)
        /// Clients this loop has given the backend: connecting or relaying. Least-connections
        /// balancing reads it, so that a burst of clients, all still connecting, is spread too.
        let assignedConnections = Atomic<Int>(0)
        let bytesFromClient = Atomic<Int>(0)
        let bytesToClient = Atomic<Int>(0)
    }

    init(loops: Int) {
        slots = (0..<max(loops, 1)).map { _ in Slot() }
    }

    /// A consistent-enough copy for reporting.
    public struct Values: Sendable, Equatable {
        public var connectionsTotal: Int
        public var activeConnections: Int
        public var bytesFromClient: Int
        public var bytesToClient: Int
        public var connectErrors: Int
    }

    /// Clients given the backend on all loops, connecting or relaying (least-connections
    /// balancing reads it per client).
    var assignedConnections: Int { slots.reduce(0) { $0 + $1.assignedConnections.load(ordering: .relaxed) } }

    public var values: Values {
        var values = Values(connectionsTotal: 0, activeConnections: 0, bytesFromClient: 0, bytesToClient: 0,
            connectErrors: connectErrors.load(ordering: .relaxed))
        for slot in slots {
            values.connectionsTotal += slot.connectionsTotal.load(ordering: .relaxed)
            values.activeConnections += slot.activeConnections.load(ordering: .relaxed)
            values.bytesFromClient += slot.bytesFromClient.load(ordering: .relaxed)
            values.bytesToClient += slot.bytesToClient.load(ordering: .relaxed)
        }
        return values
    }
}
