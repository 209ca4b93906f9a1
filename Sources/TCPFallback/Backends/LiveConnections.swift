/// The open relays of one backend, for an operator or the registry to close (`shutdown
/// sessions`, close-on-down, failback-close). The relays themselves live on the data loops;
/// closing asks every loop, through its mailbox, to close those of this backend.
public final class LiveConnections: Sendable {
    private let backendID: Int
    private let counters: BackendCounters
    private let closer: SessionCloser

    init(backendID: Int, counters: BackendCounters, closer: SessionCloser) {
        self.backendID = backendID
        self.counters = counters
        self.closer = closer
    }

    /// Relays open now.
    public var count: Int { counters.values.activeConnections }

    /// Asks the loops to close both sides of every open relay; returns how many were open.
    @discardableResult
    public func closeAll() -> Int {
        let open = count
        closer.closeAll(of: backendID)
        return open
    }
}
