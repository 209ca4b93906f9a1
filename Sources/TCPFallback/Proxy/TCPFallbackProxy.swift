import Etcd
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The proxy: listeners whose every client goes to the first healthy backend.
///
/// Data flows one way: listener → data loop (reads the registry's snapshot, connects, fails
/// over) → relay, all on the loop that accepted the client. Connect failures go back to the
/// `BackendRegistry`, which probes. SwiftNIO runs the health checks (and etcd's client) on one
/// thread of the proxy's own; the control socket and metrics are the process's, not a proxy's.
public final class TCPFallbackProxy: Sendable {
    public let configuration: ProxyConfiguration
    public let registry: BackendRegistry
    public let counters: ProxyCounters
    /// Where the list of backends comes from when etcd gives it (`-etcd`).
    public let backendSource: EtcdBackendSource?
    /// This proxy's part in a group (`-etcd-group`).
    public let groupMember: GroupMember?
    private let etcdClient: EtcdClient?
    private let sourceTask = Locked<Task<Void, Never>?>(nil)
    /// Data-path threads: one per CPU the process may use, capped by `-maxthreads`.
    public let dataLoopCount: Int
    private let group: MultiThreadedEventLoopGroup
    let logger: Logger
    private let running = Locked<Running?>(nil)

    /// The loops and what they serve, from `start()` to `shutdown`.
    private struct Running: Sendable {
        let loops: [DataLoop]
        let threads: [LoopThread]
        let address: SocketAddress
        /// Listening sockets of our own (the loops close them) or systemd's (closed here); empty
        /// once accepting stopped.
        var inherited: [Int32]
        /// Every listening socket, for a hand-over to a new process (an upgrade); empty once
        /// accepting stopped.
        var listening: [Int32]
    }

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
    ///   - keptList: the last list from etcd, as the state file keeps it.
    public init(
        configuration: ProxyConfiguration,
        logger: Logger,
        clock: any ProxyClock = SystemClock(),
        healthCheck: (any HealthCheck)? = nil,
        heldAtStart: Set<Endpoint> = [],
        keptList: [Endpoint] = []
    ) {
        let loops = DataLoopCount.loops(cap: configuration.eventLoopThreads)
        // Checks (and etcd) are light: one thread serves them.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.configuration = configuration
        self.dataLoopCount = loops
        self.counters = ProxyCounters(loops: loops)
        self.group = group
        self.logger = logger
        let defaultCheck: any HealthCheck =
            switch configuration.check {
            case .tcp: TCPConnectCheck(group: group, timeout: configuration.connectTimeout)
            case .mysql: MySQLCheck(group: group, timeout: configuration.connectTimeout, credentials: configuration.checkCredentials)
            }
        self.registry = BackendRegistry(
            backends: configuration.backends,
            probeDelay: configuration.probeDelay,
            activeChecks: configuration.activeChecks,
            closeSessionsOnDown: configuration.closeSessionsOnDown,
            failback: Self.localFailback(configuration),
            heldAtStart: heldAtStart,
            keptList: keptList,
            healthCheck: healthCheck ?? defaultCheck,
            clock: clock,
            logger: logger,
            dataLoops: loops,
            executor: group.next(),
            roles: configuration.roles)
        if let etcd = configuration.etcd {
            let client = EtcdClient(endpoints: etcd.endpoints, requestTimeout: etcd.requestTimeout, group: group)
            self.etcdClient = client
            self.backendSource = EtcdBackendSource(settings: etcd, client: client, clock: clock, logger: logger)
            let registry = self.registry
            self.groupMember = configuration.group.map {
                GroupMember(settings: $0, prefix: etcd.prefix, client: client, registry: registry, failback: configuration.failback, clock: clock, logger: logger)
            }
        } else {
            self.etcdClient = nil
            self.backendSource = nil
            self.groupMember = nil
        }
    }

    /// The failback settings of the registry: in a group, holds are the group's (its elected
    /// member applies the policy), so the member itself returns backends at once.
    private static func localFailback(_ configuration: ProxyConfiguration) -> FailbackSettings {
        var settings = configuration.failback
        if configuration.group != nil { settings.policy = .auto }
        return settings
    }

    /// Opens the listeners and starts the data loops; returns the bound address (with the
    /// port the kernel chose when the configured port is 0). Backends start up, as in the
    /// original: nothing is probed before listening.
    public func start() async throws(ListenError) -> SocketAddress {
        // A group member refuses clients until it knows the group's decision (and checks at once).
        if let member = groupMember {
            await registry.followGroup(GroupFollowing(decided: nil, epoch: 0, refusing: "no decision of group \(member.settings.name) yet"))
        }
        await registry.startChecks()
        if let backendSource {
            let registry = registry
            let member = groupMember
            sourceTask.withLock {
                $0 = Task {
                    await withDiscardingTaskGroup { tasks in
                        tasks.addTask { await backendSource.run(into: registry) }
                        if let member { tasks.addTask { await member.run() } }
                    }
                }
            }
        }
        let endpoint = configuration.listen
        let listeners: [[(fd: Int32, shared: Bool)]]
        let inherited = configuration.inheritedListeners
        if !inherited.isEmpty {
            // One socket cannot be split between loops as our own are (SO_REUSEPORT needs
            // it before bind): every loop waits on all of them, and the kernel wakes one
            // loop per connection (EPOLLEXCLUSIVE).
            for fd in inherited {
                let error = SocketCalls.setNonBlocking(fd)
                guard error == 0 else {
                    throw ListenError(endpoint: endpoint, reason: "inherited socket: \(ConnectFailure.errnoText(error))")
                }
                SocketCalls.prepareListener(fd, keepalive: configuration.keepalive)
            }
            listeners = Array(repeating: inherited.map { ($0, true) }, count: dataLoopCount)
        } else {
            listeners = try bindListeners(endpoint).map { [($0, false)] }
        }
        let address = Self.boundAddress(listeners[0][0].fd, fallback: endpoint)
        do {
            try startLoops(listeners, address: address, inherited: inherited)
        } catch {
            if inherited.isEmpty { for loop in listeners { for listener in loop { SocketCalls.close(listener.fd) } } }
            throw ListenError(endpoint: endpoint, reason: ConnectFailure.errnoText(error.errno))
        }
        return address
    }

    /// One listening socket per loop, sharing the port through SO_REUSEPORT: the kernel
    /// spreads new connections over the loops and each connection is served by the loop that
    /// accepted it, with no hand-over between threads. An empty host means every interface:
    /// dual-stack if the machine has IPv6.
    private func bindListeners(_ endpoint: Endpoint) throws(ListenError) -> [Int32] {
        let hosts = endpoint.host.isEmpty ? ["::", "0.0.0.0"] : [endpoint.host]
        var lastReason = "no address"
        for host in hosts {
            do {
                // SO_REUSEPORT would let a second copy of the proxy share the port without a
                // word; a plain bind first makes a port already in use an error, as
                // operators expect.
                if endpoint.port != 0 { try PortProbe.ensureFree(host: host, port: endpoint.port) }
                var address = try SocketAddress.makeAddressResolvingHost(host, port: endpoint.port)
                var fds: [Int32] = []
                for _ in 0..<dataLoopCount {
                    switch SocketCalls.listen(on: address, reusePort: true, keepalive: configuration.keepalive, backlog: 4096) {
                    case .success(let fd):
                        fds.append(fd)
                        if address.port == 0 {
                            // The others share the port the kernel chose for the first.
                            address = try SocketAddress.makeAddressResolvingHost(host, port: Int(SocketCalls.localAddress(fd).port))
                        }
                    case .failure(let error):
                        for fd in fds { SocketCalls.close(fd) }
                        throw error
                    }
                }
                return fds
            } catch {
                lastReason = Self.describeListenError(error)
            }
        }
        throw ListenError(endpoint: endpoint, reason: lastReason)
    }

    private func startLoops(_ listeners: [[(fd: Int32, shared: Bool)]], address: SocketAddress, inherited: [Int32]) throws(SocketError) {
        let context = DataLoopContext(
            registry: registry, counters: counters, settings: configuration.dataPathSettings,
            limit: configuration.maxConnections.map { ConnectionLimit(maximum: $0) }, logger: logger)
        var loops: [DataLoop] = []
        for (index, ownListeners) in listeners.enumerated() {
            loops.append(try DataLoop(index: index, listeners: ownListeners, context: context))
        }
        var threads: [LoopThread] = []
        for loop in loops {
            do {
                threads.append(try LoopThread(name: "tf-loop-\(loop.index)") { loop.run() })
            } catch {
                for (started, thread) in zip(loops, threads) {
                    started.mailbox.post(.stop(done: {}))
                    thread.join()
                }
                throw error
            }
        }
        let started = loops
        registry.sessionCloser.install { id in
            for loop in started { loop.mailbox.post(.closeSessions(backendID: id)) }
        }
        var listening: [Int32] = []
        for fd in listeners.joined().map(\.fd) where !listening.contains(fd) { listening.append(fd) }
        running.withLock { $0 = Running(loops: loops, threads: threads, address: address, inherited: inherited, listening: listening) }
    }

    private static func boundAddress(_ fd: Int32, fallback: Endpoint) -> SocketAddress {
        let local = SocketCalls.localAddress(fd)
        return (try? SocketAddress(ipAddress: local.host, port: Int(local.port)))
            ?? (try? SocketAddress(ipAddress: "0.0.0.0", port: fallback.port))
            ?? (try! SocketAddress(ipAddress: "127.0.0.1", port: 0))
    }

    /// Every thread the systemd watchdog should hear from: the data loops and NIO's.
    public var watchedLoops: [any WatchedLoop] {
        let loops: [any WatchedLoop] = running.withLock { $0?.loops ?? [] }
        return loops + group.makeIterator().map { NIOWatchedLoop(loop: $0) }
    }

    /// Every listening socket, while the proxy accepts: what an upgrade hands to the new
    /// process (which gets its own descriptors for the same sockets).
    public var listeningDescriptors: [Int32] { running.withLock { $0?.listening ?? [] } }

    /// The address the listener is bound to, once started.
    public var localAddress: SocketAddress? { running.withLock { $0?.address } }

    /// Stops accepting and closes the listening sockets; open connections go on. A reload
    /// that removes the listener calls it first, so that another may bind the port at once.
    public func stopAccepting() async {
        let stopping = running.withLock { running -> (loops: [DataLoop], inherited: [Int32])? in
            guard let current = running, !current.listening.isEmpty else { return nil }
            running?.inherited = []
            running?.listening = []
            return (current.loops, current.inherited)
        }
        guard let stopping else { return }
        await Self.everyLoop(stopping.loops) { loop, done in loop.mailbox.post(.stopAccepting(done: done)) }
        for fd in stopping.inherited { SocketCalls.close(fd) }
    }

    /// Stops accepting, lets open connections finish for up to `grace`, closes the rest, and
    /// stops the loops.
    public func shutdown(grace: Duration) async {
        if let task = sourceTask.withLock({ task in defer { task = nil }; return task }) {
            task.cancel()
            await task.value
        }
        await etcdClient?.shutdown()
        await stopAccepting()
        if let running = running.withLock({ running in defer { running = nil }; return running }) {
            await waitForConnections(grace: grace)
            // Stopping a loop closes every connection still open on it.
            await Self.everyLoop(running.loops) { loop, done in loop.mailbox.post(.stop(done: done)) }
            for thread in running.threads { thread.join() }
            registry.sessionCloser.install { _ in }
        }
        await registry.shutdown()
        try? await group.shutdownGracefully()
    }

    private func waitForConnections(grace: Duration) async {
        let open = counters.values.openClientConnections
        guard open > 0 else { return }
        logger.notice(
            "stopped accepting; waiting up to \(GoDuration.format(grace)) for \(open) open connection(s)",
            metadata: ["event": "shutdown"])
        let deadline = ContinuousClock.now + grace
        while counters.values.openClientConnections > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = counters.values.openClientConnections
        if left > 0 {
            logger.notice("closing \(left) connection(s) still open after the grace period", metadata: ["event": "shutdown"])
        }
    }

    /// Posts a command to every loop and waits until each has called `done`.
    private static func everyLoop(_ loops: [DataLoop], _ post: (DataLoop, @escaping @Sendable () -> Void) -> Void) async {
        for loop in loops {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                post(loop) { continuation.resume() }
            }
        }
    }

    private static func describeListenError(_ error: any Error) -> String {
        if let error = error as? IOError { return ConnectFailure.errnoText(error.errnoCode) }
        if let error = error as? SocketError { return ConnectFailure.errnoText(error.errno) }
        if let error = error as? SocketAddressError {
            switch error {
            case .unknown(let host, _): return "cannot resolve host \"\(host)\""
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
