/// Everything the engine needs to run one proxy; the command line builds it from flags.
public struct ProxyConfiguration: Sendable {
    /// Where clients connect.
    public var listen: Endpoint
    /// Listening sockets passed by systemd; when not empty they are served instead of
    /// binding `listen` (see `SocketActivation` for which ones are chosen).
    public var inheritedListeners: [Int32] = []
    /// Backends in order of preference: each client goes to the first one that is up.
    public var backends: [Endpoint]
    /// Limit for each connection attempt to a backend, by clients and by probes.
    public var connectTimeout: Duration
    /// Delay between probes of a backend that is down; `nil` turns probing off, so a down
    /// backend returns only when a client connection to it succeeds (tried when all are down).
    public var probeDelay: Duration?
    /// Interval of the periodic stats lines; `nil` turns them off.
    public var statsInterval: Duration?
    /// Number of event-loop threads.
    public var eventLoopThreads: Int
    /// How long open connections may go on after a shutdown request before they are closed.
    public var shutdownGrace: Duration

    public init(
        listen: Endpoint,
        backends: [Endpoint],
        connectTimeout: Duration = .seconds(5),
        probeDelay: Duration? = .seconds(30),
        statsInterval: Duration? = .seconds(15 * 60),
        eventLoopThreads: Int = 4,
        shutdownGrace: Duration = .seconds(10)
    ) {
        self.listen = listen
        self.backends = backends
        self.connectTimeout = connectTimeout
        self.probeDelay = probeDelay
        self.statsInterval = statsInterval
        self.eventLoopThreads = eventLoopThreads
        self.shutdownGrace = shutdownGrace
    }
}
