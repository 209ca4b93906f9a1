import Synchronization

/// The open relays of one backend, for an operator or the registry to close (`shutdown
/// sessions`, close-on-down, failback-close). The relays themselves live on the data loops;
/// closing asks every loop, through its mailbox, to close those of this backend.
public final class LiveConnections: Sendable {
    private let backendIndex: Int
    private let counters: BackendCounters
    private let closer = Locked<(@Sendable (Int) -> Void)?>(nil)

    init(backendIndex: Int, counters: BackendCounters) {
        self.backendIndex = backendIndex
        self.counters = counters
    }

    /// Set by the data path once its loops run.
    func install(closer: @escaping @Sendable (Int) -> Void) {
        self.closer.withLock { $0 = closer }
    }

    /// Relays open now.
    public var count: Int { counters.values.activeConnections }

    /// Asks the loops to close both sides of every open relay; returns how many were open.
    @discardableResult
    public func closeAll() -> Int {
        let open = count
        if let close = closer.withLock({ $0 }) { close(backendIndex) }
        return open
    }
}
