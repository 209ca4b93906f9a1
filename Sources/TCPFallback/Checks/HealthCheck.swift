import NIOCore

/// Tells whether a backend answers. Probes of down backends run one; tests supply their own.
public protocol HealthCheck: Sendable {
    /// Returns when the backend is healthy; throws the reason otherwise.
    func check(_ backend: Backend) async throws
}

/// The original's probe: a plain TCP connect within the connect timeout, closed at once.
public struct TCPConnectCheck: HealthCheck {
    let dialer: BackendDialer
    let group: any EventLoopGroup

    public init(group: any EventLoopGroup, timeout: Duration) {
        self.dialer = BackendDialer(timeout: timeout)
        self.group = group
    }

    public func check(_ backend: Backend) async throws {
        let channel = try await dialer.connect(to: backend, on: group.next()).get()
        try? await channel.close()
    }
}
