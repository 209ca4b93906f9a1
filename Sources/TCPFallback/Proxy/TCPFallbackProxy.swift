import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The proxy: a listener whose every client goes to the first healthy backend.
///
/// Data flows one way: listener → `ClientConnector` (reads the registry's snapshot) →
/// `GlueHandler` pair. Connect failures go back to the `BackendRegistry`, which probes.
public final class TCPFallbackProxy: Sendable {
    public let configuration: ProxyConfiguration
    public let registry: BackendRegistry
    public let counters = ProxyCounters()
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let listeners = Mutex<[any Channel]>([])

    /// Why the listener could not be opened.
    public struct ListenError: Error, CustomStringConvertible {
        public let endpoint: Endpoint
        public let reason: String
        public var description: String { "cannot listen on \(endpoint): \(reason)" }
    }

    /// - Parameters:
    ///   - clock: drives probe delays; tests pass a manual one.
    ///   - healthCheck: what probes run; by default a TCP connect within the connect timeout.
    ///   - heldAtStart: backends the `manual` failback policy held when the proxy last ran.
    public init(
        configuration: ProxyConfiguration,
        logger: Logger,
        clock: any ProxyClock = SystemClock(),
        healthCheck: (any HealthCheck)? = nil,
        heldAtStart: Set<Endpoint> = []
    ) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let defaultCheck: any HealthCheck =
            switch configuration.check {
            case .tcp: TCPConnectCheck(group: group, timeout: configuration.connectTimeout)
            case .mysql: MySQLCheck(group: group, timeout: configuration.connectTimeout)
            }
        self.registry = BackendRegistry(
            backends: configuration.backends,
            probeDelay: configuration.probeDelay,
            activeChecks: configuration.activeChecks,
            closeSessionsOnDown: configuration.closeSessionsOnDown,
            failback: configuration.failback,
            heldAtStart: heldAtStart,
            healthCheck: healthCheck ?? defaultCheck,
            clock: clock,
            logger: logger)
    }

    /// Opens the listener and starts accepting; returns the bound address (with the port the
    /// kernel chose when the configured port is 0). Backends start up, as in the original:
    /// nothing is probed before listening.
    public func start() async throws(ListenError) -> SocketAddress {
        await registry.startChecks()
        let endpoint = configuration.listen
        if !configuration.inheritedListeners.isEmpty {
            do {
                let channels = try await adoptListeners(configuration.inheritedListeners)
                listeners.withLock { $0 = channels }
                return channels[0].localAddress!
            } catch {
                throw ListenError(endpoint: endpoint, reason: "inherited socket: \(Self.describeListenError(error))")
            }
        }
        // An empty host means every interface: dual-stack if the machine has IPv6.
        let hosts = endpoint.host.isEmpty ? ["::", "0.0.0.0"] : [endpoint.host]
        var lastError: any Error = ChannelError.unknownLocalAddress
        for host in hosts {
            do {
                let channels = try await bindListeners(host: host, port: endpoint.port)
                listeners.withLock { $0 = channels }
                return channels[0].localAddress!
            } catch {
                lastError = error
            }
        }
        throw ListenError(endpoint: endpoint, reason: Self.describeListenError(lastError))
    }

    /// One listening socket per event loop, sharing the port through SO_REUSEPORT: the kernel
    /// spreads new connections over the loops and each connection is served by the loop that
    /// accepted it, with no hand-over between threads.
    private func bindListeners(host: String, port: Int) async throws -> [any Channel] {
        // SO_REUSEPORT would let a second copy of the proxy share the port without a word;
        // a plain bind first makes a port already in use an error, as operators expect.
        if port != 0 { try PortProbe.ensureFree(host: host, port: port) }
        var channels: [any Channel] = []
        var port = port
        do {
            for eventLoop in group.makeIterator() {
                let channel = try await makeBootstrap(on: eventLoop).bind(host: host, port: port).get()
                channels.append(channel)
                port = channel.localAddress?.port ?? port
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return channels
    }

    /// Serves sockets systemd passed. One socket cannot be spread over the loops as our own
    /// are (SO_REUSEPORT needs it before bind), so one loop accepts and hands each connection
    /// to the next loop in turn.
    private func adoptListeners(_ descriptors: [Int32]) async throws -> [any Channel] {
        var channels: [any Channel] = []
        do {
            for descriptor in descriptors {
                let bootstrap = makeBootstrap(on: group.next(), childGroup: group)
                channels.append(try await bootstrap.withBoundSocket(descriptor).get())
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return channels
    }

    /// The event loops, for work that must run on them (the systemd watchdog's check-ins).
    public var eventLoopGroup: any EventLoopGroup { group }

    /// The address the listener is bound to, once started.
    public var localAddress: SocketAddress? { listeners.withLock { $0.first?.localAddress } }

    /// Stops accepting, lets open connections finish for up to `grace`, closes the rest, and
    /// releases the event loops.
    public func shutdown(grace: Duration) async {
        for channel in listeners.withLock({ channels in defer { channels = [] }; return channels }) {
            try? await channel.close()
        }
        let open = counters.values.openClientConnections
        if open > 0 {
            logger.notice(
                "stopped accepting; waiting up to \(GoDuration.format(grace)) for \(open) open connection(s)",
                metadata: ["event": "shutdown"])
            let deadline = ContinuousClock.now + grace
            while counters.values.openClientConnections > 0 && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            let left = counters.values.openClientConnections
            if left > 0 {
                // Shutting the event loops down below closes every channel still open.
                logger.notice("closing \(left) connection(s) still open after the grace period", metadata: ["event": "shutdown"])
            }
        }
        await registry.shutdown()
        try? await group.shutdownGracefully()
    }

    private func makeBootstrap(on eventLoop: any EventLoop, childGroup: (any EventLoopGroup)? = nil) -> ServerBootstrap {
        let connector = ClientConnector(
            registry: registry, dialer: BackendDialer(timeout: configuration.connectTimeout), counters: counters,
            greetingGate: configuration.greetingTimeout.map { GreetingGate(timeout: $0, mysql: configuration.check == .mysql) },
            queueTimeout: configuration.queueTimeout.map { TimeAmount($0) },
            logger: logger)
        let (counters, logger) = (self.counters, self.logger)
        // TCP_NODELAY: ServerBootstrap sets it on the listener and accepted sockets inherit it.
        var bootstrap = ServerBootstrap(group: eventLoop, childGroup: childGroup ?? eventLoop)
            .serverChannelOption(.backlog, value: 4096)
        if childGroup == nil {
            // Our own sockets, one per loop, share the port.
            bootstrap = bootstrap
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
        }
        return bootstrap
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Out of descriptors: pause accepting briefly instead of spinning.
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptBackoffHandler(backoffProvider: { _ in .milliseconds(100) }))
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(counters: counters, logger: logger))
                }
            }
            .childChannelInitializer { channel in
                counters.acceptedConnections.add(1, ordering: .relaxed)
                counters.openClientConnections.add(1, ordering: .relaxed)
                channel.closeFuture.whenComplete { _ in
                    counters.openClientConnections.subtract(1, ordering: .relaxed)
                }
                return channel.eventLoop.makeCompletedFuture {
                    try RelayBuffers.configure(channel)
                    try channel.pipeline.syncOperations.addHandler(connector.handler())
                }
            }
    }

    private static func describeListenError(_ error: any Error) -> String {
        if let error = error as? IOError { return ConnectFailure.errnoText(error.errnoCode) }
        if let error = error as? SocketAddressError {
            switch error {
            case .unknown(let host, _): return "cannot resolve host \"\(host)\""
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
