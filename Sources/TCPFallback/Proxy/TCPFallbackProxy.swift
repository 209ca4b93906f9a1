import Logging
import NIOCore
import NIOPosix
import Synchronization

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
    private let tracker = ConnectionTracker()
    private let listener = Mutex<(any Channel)?>(nil)

    /// Why the listener could not be opened.
    public struct ListenError: Error, CustomStringConvertible {
        public let endpoint: Endpoint
        public let reason: String
        public var description: String { "cannot listen on \(endpoint): \(reason)" }
    }

    /// - Parameters:
    ///   - clock: drives probe delays; tests pass a manual one.
    ///   - healthCheck: what probes run; by default a TCP connect within the connect timeout.
    public init(
        configuration: ProxyConfiguration,
        logger: Logger,
        clock: any ProxyClock = SystemClock(),
        healthCheck: (any HealthCheck)? = nil
    ) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.registry = BackendRegistry(
            backends: configuration.backends,
            probeDelay: configuration.probeDelay,
            healthCheck: healthCheck ?? TCPConnectCheck(group: group, timeout: configuration.connectTimeout),
            clock: clock,
            logger: logger)
    }

    /// Opens the listener and starts accepting; returns the bound address (with the port the
    /// kernel chose when the configured port is 0). Backends start up, as in the original:
    /// nothing is probed before listening.
    public func start() async throws(ListenError) -> SocketAddress {
        let endpoint = configuration.listen
        // An empty host means every interface: dual-stack if the machine has IPv6.
        let hosts = endpoint.host.isEmpty ? ["::", "0.0.0.0"] : [endpoint.host]
        var lastError: any Error = ChannelError.unknownLocalAddress
        for host in hosts {
            do {
                let channel = try await makeBootstrap().bind(host: host, port: endpoint.port).get()
                listener.withLock { $0 = channel }
                return channel.localAddress!
            } catch {
                lastError = error
            }
        }
        throw ListenError(endpoint: endpoint, reason: Self.describeListenError(lastError))
    }

    /// The address the listener is bound to, once started.
    public var localAddress: SocketAddress? { listener.withLock { $0?.localAddress } }

    /// Stops accepting, lets open connections finish for up to `grace`, closes the rest, and
    /// releases the event loops.
    public func shutdown(grace: Duration) async {
        if let channel = listener.withLock({ $0.take() }) {
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
            let left = tracker.all
            if !left.isEmpty {
                logger.notice("closing \(left.count) connection(s) still open after the grace period", metadata: ["event": "shutdown"])
                for channel in left { channel.close(promise: nil) }
            }
        }
        await registry.shutdown()
        try? await group.shutdownGracefully()
    }

    private func makeBootstrap() -> ServerBootstrap {
        let connector = ClientConnector(
            registry: registry, dialer: BackendDialer(timeout: configuration.connectTimeout), logger: logger)
        let (counters, tracker, logger) = (self.counters, self.tracker, self.logger)
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Out of descriptors: pause accepting briefly instead of spinning.
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptBackoffHandler(backoffProvider: { _ in .milliseconds(100) }))
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(counters: counters, logger: logger))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.recvAllocator, value: RelayBuffers.receiveAllocator)
            .childChannelOption(.writeBufferWaterMark, value: RelayBuffers.writeWatermarks)
            .childChannelInitializer { channel in
                counters.acceptedConnections.add(1, ordering: .relaxed)
                counters.openClientConnections.add(1, ordering: .relaxed)
                tracker.add(channel)
                channel.closeFuture.whenComplete { _ in
                    tracker.remove(channel)
                    counters.openClientConnections.subtract(1, ordering: .relaxed)
                }
                return channel.eventLoop.makeCompletedFuture {
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
