import NIOCore

/// A MySQL/MariaDB health check: the server must send its handshake within the timeout; an
/// error packet ("Too many connections", "Host is blocked"), a malformed greeting or none at
/// all is a failure.
///
/// The check then finishes the handshake as a client would (an unknown user, no password)
/// and says goodbye, instead of dropping the connection mid-handshake: servers count dropped
/// handshakes against the proxy's host and block it after `max_connect_errors` of them.
public struct MySQLCheck: HealthCheck {
    let dialer: BackendDialer
    let group: any EventLoopGroup
    let timeout: TimeAmount
    /// The user name the check logs in as; it need not exist.
    let user: String

    public init(group: any EventLoopGroup, timeout: Duration, user: String = "tcp-fallback-check") {
        self.dialer = BackendDialer(timeout: timeout)
        self.group = group
        self.timeout = TimeAmount(timeout)
        self.user = user
    }

    public func check(_ backend: Backend) async throws {
        let timeout = self.timeout
        // The reader goes in from the connect callback itself (see FirstBytes.collect).
        let (channel, greeting) = try await dialer.connect(to: backend, on: group.next()).flatMap { channel in
            FirstBytes.collect(from: channel, timeout: timeout) { MySQLProtocol.parseGreeting($0) != .incomplete }
                .map { (channel, $0) }
                .flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
        }.get()
        defer { channel.close(promise: nil) }
        try Self.judge(MySQLProtocol.parseGreeting(greeting))
        // The polite end: a login the server answers (OK or error), then COM_QUIT. The reader
        // for the answer goes in before the login is sent: the server may answer and hang up
        // at once, and NIO then reads everything whether anyone asked or not.
        let login = ByteBuffer(bytes: MySQLProtocol.handshakeResponse(user: user))
        _ = try? await channel.eventLoop.flatSubmit {
            let answer = FirstBytes.collect(from: channel, timeout: timeout) { bytes in
                bytes.count >= 4 && bytes.count >= 4 + (Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16)
            }
            channel.writeAndFlush(login, promise: nil)
            return answer
        }.get()
        try? await channel.writeAndFlush(ByteBuffer(bytes: MySQLProtocol.quit)).get()
    }

    /// Throws the reason a greeting is not a healthy server's.
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
