/// Everything the engine needs to run one proxy; the command line builds it from flags.
public struct ProxyConfiguration: Sendable {
    /// Where clients connect.
    public var listen: Endpoint
    /// Listening sockets passed by systemd; when not empty they are served instead of
    /// binding `listen` (see `SocketActivation` for which ones are chosen).
    public var inheritedListeners: [Int32] = []
    /// Backends in order of preference: each client goes to the first one that is up. With
    /// `etcd`, the list to start with (etcd's answer replaces it).
    public var backends: [Endpoint]
    /// Take the list of backends from etcd and follow its changes (`-etcd`).
    public var etcd: EtcdSettings?
    /// Share the decision of where new clients go with the other proxies of a group, through
    /// etcd (`-etcd-group`).
    public var group: GroupSettings?
    /// Limit for each connection attempt to a backend, by clients and by probes.
    public var connectTimeout: Duration
    /// Delay between probes of a backend that is down; `nil` turns probing off, so a down
    /// backend returns only when a client connection to it succeeds (tried when all are down).
    public var probeDelay: Duration?
    /// Interval of the periodic stats lines; `nil` turns them off.
    public var statsInterval: Duration?
    /// The most data loops (threads) to run (`-maxthreads`); fewer run when the process may
    /// use fewer CPUs.
    public var eventLoopThreads: Int
    /// How long open connections may go on after a shutdown request before they are closed.
    public var shutdownGrace: Duration
    /// What a probe or active check runs.
    public var check: HealthCheckKind = .tcp
    /// The MySQL check's login (`-check-user`); nil: the anonymous greeting check.
    public var checkCredentials: MySQLCredentials?
    /// Which backends clients may go to by what the servers are (`-role` and companions).
    public var roles = RoleSettings()
    /// How clients are spread over equally good backends (`-balance`).
    public var balance: BalanceMode = .first
    /// Active checks of every backend, up or down; `nil` keeps the original's passive mode
    /// (marked down on a failed connect, probed every `probeDelay` while down).
    public var activeChecks: ActiveChecks?
    /// How long to wait for a backend's first bytes before committing a client to it; `nil`
    /// commits at once. With `check == .mysql` an error packet also fails the backend.
    public var greetingTimeout: Duration?
    /// Close the open connections of a backend when it is marked down, so clients reconnect
    /// to the next one instead of hanging on a dead server.
    public var closeSessionsOnDown = true
    /// When a backend that came back is used again.
    public var failback = FailbackSettings()
    /// When no backend connects, how long a new client may wait for one to come back; `nil`
    /// closes it at once (as the original).
    public var queueTimeout: Duration?
    /// Above this many open client connections, stop accepting (the listen backlog holds
    /// the rest); `nil`: no limit.
    public var maxConnections: Int?
    /// Close a connection idle in both directions for this long; `nil`: never.
    public var idleTimeout: Duration?
    /// TCP keepalive on both sides of every connection; `nil` turns it off.
    public var keepalive: TCPKeepalive? = .default
    /// Keepalive is set on a backend socket once its relay has run this long (short
    /// connections spare the system calls); tests shorten it.
    public var keepaliveArmingDelay: Duration = .seconds(5)
    /// Send a PROXY protocol header to backends, so they see the client's address.
    public var sendProxy: ProxyProtocolVersion?
    /// Move the bytes of bulk transfers with splice(2), without copying them to user space.
    public var splice = true

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

extension ProxyConfiguration {
    /// What the data loops need of it.
    var dataPathSettings: DataPathSettings {
        DataPathSettings(
            connectTimeout: connectTimeout,
            greetingGate: greetingTimeout.map { GreetingGate(timeout: $0, mysql: check == .mysql) },
            queueTimeout: queueTimeout,
            idleTimeout: idleTimeout,
            keepalive: keepalive,
            keepaliveArmingDelay: keepaliveArmingDelay,
            sendProxy: sendProxy,
            splice: splice,
            balance: balance)
    }
}

/// The kinds of health check.
public enum HealthCheckKind: String, Sendable, CaseIterable {
    /// A TCP connect within the timeout.
    case tcp
    /// A MySQL/MariaDB handshake within the timeout; error packets fail.
    case mysql
}

/// Settings of active health checks.
public struct ActiveChecks: Sendable, Equatable {
    /// Time between checks of a backend whose state is settled.
    public var interval: Duration
    /// Consecutive successes that bring a down backend back.
    public var rise: Int
    /// Consecutive failures that mark an up backend down.
    public var fall: Int

    public init(interval: Duration, rise: Int = 2, fall: Int = 2) {
        self.interval = interval
        self.rise = rise
        self.fall = fall
    }

    /// While a backend is between states (some successes or failures, not enough yet), checks
    /// come faster, so a change is confirmed sooner.
    var transitionInterval: Duration { max(interval / 4, .milliseconds(100)) }
}

/// When a backend that failed and came back is used again, and what happens then.
public struct FailbackSettings: Sendable, Equatable {
    public enum Policy: String, Sendable, CaseIterable {
        /// At once, as the original.
        case auto
        /// After it has stayed up for a hold-down time, which doubles each time it flaps.
        case hold
        /// Only when an operator allows it (`tcp-fallback ctl failback BACKEND`); the decision
        /// is kept in the state file across restarts.
        case manual
    }

    public var policy: Policy = .auto
    /// The first hold-down time of `hold`.
    public var delay: Duration = .seconds(30)
    /// Where `manual` keeps the backends it holds; none: held until the process ends.
    public var stateFile: String?
    /// When new clients go back to a higher-priority backend, close the connections still on
    /// lower ones, so writes do not go to two servers at once.
    public var closeLowerConnections = false

    public init() {}

    /// The longest hold-down time `hold` grows to.
    static let maximumDelay: Duration = .seconds(3600)
}
