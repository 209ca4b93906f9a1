import NIOCore

/// A MySQL/MariaDB health check: the server must send its handshake within the timeout; an
/// error packet ("Too many connections", "Host is blocked"), a malformed greeting or none at
/// all is a failure.
///
/// Without credentials the check then finishes the handshake as a client would (an unknown
/// user, no password) and says goodbye, instead of dropping the connection mid-handshake:
/// servers count dropped handshakes against the proxy's host and block it after
/// `max_connect_errors` of them. With credentials it logs in, reads the server's role in one
/// query (`MySQLServerState`) and says goodbye; a refused login, a missing grant or a method
/// it does not speak fails the check with that cause.
public struct MySQLCheck: HealthCheck {
    let dialer: BackendDialer
    let group: any EventLoopGroup
    let timeout: TimeAmount
    let credentials: MySQLCredentials?

    public init(group: any EventLoopGroup, timeout: Duration, credentials: MySQLCredentials? = nil) {
        self.dialer = BackendDialer(timeout: timeout)
        self.group = group
        self.timeout = TimeAmount(timeout)
        self.credentials = credentials
    }

    public func check(_ backend: Backend) async throws -> CheckObservation {
        let timeout = self.timeout
        let conversation = MySQLCheckConversation(credentials: credentials)
        // The conversation goes in from the connect callback itself (see FirstBytes.collect).
        let channel = try await dialer.connect(to: backend, on: group.next()).get()
        defer { channel.close(promise: nil) }
        let state = try await channel.eventLoop.flatSubmit {
            MySQLConversationHandler.start(conversation, on: channel, timeout: timeout)
        }.get()
        return CheckObservation(mysql: state)
    }

    /// Throws the reason a greeting is not a healthy server's (the greeting gate's judgement).
    static func judge(_ greeting: MySQLProtocol.Greeting) throws {
        switch greeting {
        case .handshake:
            return
        case .error(let code, let message):
            throw FirstBytes.Failure(description: "server error \(code): \(message)")
        case .malformed(let reason):
            throw FirstBytes.Failure(description: "not a MySQL greeting: \(reason)")
        case .incomplete:
            throw FirstBytes.Failure(description: "greeting cut short")
        }
    }
}
