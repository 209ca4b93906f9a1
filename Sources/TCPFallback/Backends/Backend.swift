import NIOCore

/// One backend: an address with its traffic counters and open relays. Its mutable state lives
/// in `BackendRegistry`, its place in the list in the registry's snapshot: the list can change
/// while the proxy runs (etcd, reload), and a backend keeps its identity, counters and open
/// connections across a reorder and after it is removed.
public final class Backend: Sendable, CustomStringConvertible {
    /// Unique within the registry and never reused: the first list gets 0, 1, 2... in order,
    /// backends added later the next numbers.
    public let id: Int
    public let endpoint: Endpoint
    /// Set when the host is an IP literal, so connecting skips the resolver.
    let numericAddress: SocketAddress?
    /// Traffic counters, one slot per data loop.
    public let counters: BackendCounters
    /// The relays open on this backend.
    public let connections: LiveConnections

    init(id: Int, endpoint: Endpoint, loops: Int = 1, closer: SessionCloser = SessionCloser()) {
        self.id = id
        self.endpoint = endpoint
        self.numericAddress =
            endpoint.isNumeric ? try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) : nil
        let counters = BackendCounters(loops: loops)
        self.counters = counters
        self.connections = LiveConnections(backendID: id, counters: counters, closer: closer)
    }

    public var description: String { endpoint.description }
}
