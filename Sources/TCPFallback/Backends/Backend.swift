import NIOCore

/// One backend of the ordered list. Its identity is its place in the list; its mutable state
/// lives in `BackendRegistry`, its traffic counters in `counters`.
public final class Backend: Sendable, CustomStringConvertible {
    /// Position in the list: 0 is the most preferred.
    public let index: Int
    public let endpoint: Endpoint
    /// Set when the host is an IP literal, so connecting skips the resolver.
    let numericAddress: SocketAddress?
    /// Traffic counters, one slot per data loop.
    public let counters: BackendCounters
    /// The relays open on this backend.
    public let connections: LiveConnections

    init(index: Int, endpoint: Endpoint, loops: Int = 1) {
        self.index = index
        self.endpoint = endpoint
        self.numericAddress =
            endpoint.isNumeric ? try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) : nil
        let counters = BackendCounters(loops: loops)
        self.counters = counters
        self.connections = LiveConnections(backendIndex: index, counters: counters)
    }

    public var description: String { endpoint.description }
}
