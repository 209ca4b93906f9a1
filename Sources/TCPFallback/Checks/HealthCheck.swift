import NIOCore

/// Tells whether a backend answers. Probes of down backends run one; tests supply their own.
public protocol HealthCheck: Sendable {
    /// Returns what the check saw when the backend is healthy; throws the reason otherwise.
    func check(_ backend: Backend) async throws -> CheckObservation
}

/// What a passed check learned beyond "it answers".
public struct CheckObservation: Sendable, Equatable {
    /// A MySQL server's role, from a check that logged in (`-check-user`); nil otherwise.
    public var mysql: MySQLServerState?

    public init(mysql: MySQLServerState? = nil) {
        self.mysql = mysql
    }
}

/// The original's probe: a plain TCP connect within the connect timeout, closed at once.
public struct TCPConnectCheck: HealthCheck {
    let dialer: BackendDialer
    let group: any EventLoopGroup

    public init(group: any EventLoopGroup, timeout: Duration) {
        self.dialer = BackendDialer(timeout: timeout)
        self.group = group
    }

    public func check(_ backend: Backend) async throws -> CheckObservation {
        let channel = try await dialer.connect(to: backend, on: group.next()).get()
        try? await channel.close()
        return CheckObservation()
    }
}
