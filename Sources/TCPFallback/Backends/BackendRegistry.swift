import Logging
import NIOCore
import NIOPosix

/// Owns the health state of every backend and is its only writer: it marks backends down
/// when a connection fails, probes each down backend in the background until it answers,
/// and publishes an immutable snapshot that the accept path reads without an actor hop.
public actor BackendRegistry {
    /// Every backend, in order of preference.
    public nonisolated let backends: [Backend]

    private struct State {
        var isUp = true
        /// When the backend last changed state, in `clock` time.
        var lastChange: Duration?
        /// Time spent down before the current spell.
        var pastDowntime: Duration = .zero
        var lastError: String?
        var administrativeState = AdministrativeState.enabled
        /// Wall-clock time of the last change, in seconds since 1970, for metrics.
        var lastChangeWallTime: Double?
        /// Consecutive active-check results of one kind; reset by the other kind and by a change.
        var streak = CheckStreak()
        /// What the failback policy remembers of it (held, hold-down time, last return).
        var failback: FailbackPolicy.Record
        /// What the last check that logged in saw (`-check-user`).
        var server: MySQLServerState?
        /// The cause of the last failed check or probe, until one passes: a cause is logged
        /// when it changes, not at every interval.
        var checkFailure: String?
    }

    private var states: [State]
    private var probes: [Int: Task<Void, Never>] = [:]
    private var subscribers: [Int: AsyncStream<BackendEvent>.Continuation] = [:]
    private var nextSubscriber = 0
    private var isShutDown = false
    private var probeObserver: (@Sendable (Backend, Duration, Bool) -> Void)?
    private let probeDelay: Duration?
    private let activeChecks: ActiveChecks?
    private let closeSessionsOnDown: Bool
    private var checkLoops: [Task<Void, Never>] = []
    private let failback: FailbackSettings
    private let failbackPolicy: FailbackPolicy
    private var holdReleases: [Int: Task<Void, Never>] = [:]
    private let healthCheck: any HealthCheck
    private let selection: BackendSelection
    private let clock: any ProxyClock
    private let logger: Logger
    private nonisolated let publisher: SnapshotPublisher
    /// The thread the registry runs on. Reports from the data loops run here directly, with
    /// no task to start: the registry keeps working even while Swift's cooperative pool
    /// (as many threads as CPUs) is busy or blocked.
    private nonisolated let loop: any EventLoop

    /// Runs the registry's own tasks (probes, checks, hold-downs), including the checks'
    /// nonisolated code, on the same loop.
    private nonisolated let taskExecutor: EventLoopTaskExecutor

    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    /// - Parameters:
    ///   - probeDelay: delay between probes of a down backend; `nil` never probes.
    ///   - activeChecks: check every backend all the time instead (after `startChecks()`).
    ///   - closeSessionsOnDown: close a backend's open connections when it goes down.
    ///   - healthCheck: what a probe or check runs.
    ///   - dataLoops: how many data loops count traffic (each backend has a counter slot per loop).
    ///   - executor: the event loop the registry runs on; by default one of NIO's shared group.
    ///   - roles: which backends new clients may go to, by what the servers are.
    public init(
        backends endpoints: [Endpoint],
        probeDelay: Duration?,
        activeChecks: ActiveChecks? = nil,
        closeSessionsOnDown: Bool = false,
        failback: FailbackSettings = FailbackSettings(),
        heldAtStart: Set<Endpoint> = [],
        healthCheck: any HealthCheck,
        clock: any ProxyClock = SystemClock(),
        logger: Logger,
        dataLoops: Int = 1,
        executor: (any EventLoop)? = nil,
        roles: RoleSettings = RoleSettings()
    ) {
        self.loop = executor ?? MultiThreadedEventLoopGroup.singleton.next()
        self.taskExecutor = EventLoopTaskExecutor(loop: loop)
        let backends = endpoints.enumerated().map { Backend(index: $0.offset, endpoint: $0.element, loops: dataLoops) }
        self.backends = backends
        let policy = FailbackPolicy(settings: failback)
        self.states = backends.map { State(failback: policy.record(heldAtStart: heldAtStart.contains($0.endpoint))) }
        self.failback = failback
        self.failbackPolicy = policy
        self.probeDelay = probeDelay
        self.activeChecks = activeChecks
        self.closeSessionsOnDown = closeSessionsOnDown
        self.healthCheck = healthCheck
        self.selection = BackendSelection(settings: roles)
        self.clock = clock
        self.logger = logger
        self.publisher = SnapshotPublisher(
            RegistrySnapshot(
                backends: backends.map {
                        BackendStatus(backend: $0, isUp: true, administrativeState: .enabled, isHeld: heldAtStart.contains($0.endpoint))
                },
                selection: selection))
    }

    /// The latest published state; cheap enough to read for every connection.
    public nonisolated var snapshot: RegistrySnapshot { publisher.snapshot }

    // MARK: Reports from the data path (they do not wait for the actor)

    /// A client's connection attempt to `backend` failed: mark it down.
    public nonisolated func reportConnectFailure(_ backend: Backend, error: any Error) {
        backend.counters.connectErrors.add(1, ordering: .relaxed)
        let reason = ConnectFailure.describe(error)
        loop.execute { self.assumeIsolated { $0.markDown(backend, reason: reason) } }
    }

    /// A client connected to `backend`; if it was down, it is back.
    public nonisolated func reportConnectSuccess(_ backend: Backend) {
        guard !snapshot.isUp(backend) else { return }
        loop.execute { self.assumeIsolated { $0.markUp(backend, evidence: "a client connected to it") } }
    }

    // MARK: State changes

    /// Marks `backend` down and starts probing it. Does nothing if it is down already.
    public func markDown(_ backend: Backend, reason: String) {
        guard !isShutDown else { return }
        states[backend.index].lastError = reason
        guard states[backend.index].isUp else { return }
        let now = clock.now
        states[backend.index].isUp = false
        // What it was is unknown until a check sees it again (a primary that crashed may
        // come back writable or not).
        states[backend.index].server = nil
        states[backend.index].lastChange = now
        states[backend.index].lastChangeWallTime = WallClock.now
        states[backend.index].streak.stateChanged()
        noteFailureForFailback(backend, now: now)
        publish()
        logger.warning("backend \(backend) is down: \(reason)", metadata: ["backend": "\(backend)", "event": "backend_down"])
        emit(.down(backend, reason: reason))
        if closeSessionsOnDown {
            let closed = backend.connections.closeAll()
            if closed > 0 {
                logger.notice(
                    "closed \(closed) connection(s) to \(backend), which is down, so their clients reconnect elsewhere",
                    metadata: ["backend": "\(backend)", "event": "sessions_closed"])
            }
        }
        startProbing(backend)
    }

    /// Marks `backend` up again and stops probing it.
    public func markUp(_ backend: Backend, evidence: String? = nil) {
        guard !isShutDown, !states[backend.index].isUp else { return }
        let now = clock.now
        let spell = states[backend.index].lastChange.map { now - $0 } ?? .zero
        states[backend.index].isUp = true
        states[backend.index].pastDowntime += spell
        states[backend.index].lastChange = now
        states[backend.index].lastChangeWallTime = WallClock.now
        states[backend.index].streak.stateChanged()
        probes.removeValue(forKey: backend.index)?.cancel()
        let hold = holdOnReturn(backend)
        publish()
        let how = evidence.map { " (\($0))" } ?? ""
        logger.notice(
            "backend \(backend) is back after \(GoDuration.formatApproximately(spell))\(how)\(hold)",
            metadata: ["backend": "\(backend)", "event": "backend_up"])
        emit(.up(backend, downtime: spell))
    }

    // MARK: Failback (the decisions are `FailbackPolicy`'s)

    /// On a failure: the policy may hold the backend (saved) or lengthen its hold-down; a
    /// pending return is cancelled.
    private func noteFailureForFailback(_ backend: Backend, now: Duration) {
        holdReleases.removeValue(forKey: backend.index)?.cancel()
        let alternative = zip(backends, states).contains { other, state in
            other !== backend && state.isUp && !state.failback.held && state.administrativeState == .enabled
        }
        let wasCurrent = publisher.snapshot.current === backend
        if failbackPolicy.failed(&states[backend.index].failback, now: now, wasCurrent: wasCurrent, alternativeAvailable: alternative) {
            saveHeld()
        }
    }

    /// On a return: ` (held ...)` for the log line, after arranging the hold.
    private func holdOnReturn(_ backend: Backend) -> String {
        switch failbackPolicy.returned(&states[backend.index].failback, now: clock.now) {
        case .inRotation:
            return ""
        case .heldUntilOperator:
            return "; held out of rotation until an operator allows it back (tcp-fallback ctl failback \(backend))"
        case .heldFor(let delay):
            holdReleases[backend.index] = Task(executorPreference: taskExecutor) { await self.holdDown(backend, for: delay) }
            return "; held out of rotation for \(GoDuration.formatApproximately(delay)) (hold-down)"
        }
    }

    private func holdDown(_ backend: Backend, for delay: Duration) async {
        do { try await clock.sleep(for: delay) } catch { return }
        releaseHold(backend, by: "its hold-down time of \(GoDuration.formatApproximately(delay)) passed")
    }

    /// Puts a held backend back into rotation. Returns whether it was held.
    @discardableResult
    public func releaseHold(_ backend: Backend, by reason: String = "an operator allowed it back") -> Bool {
        holdReleases.removeValue(forKey: backend.index)?.cancel()
        guard failbackPolicy.released(&states[backend.index].failback, now: clock.now) else { return false }
        if failback.policy == .manual { saveHeld() }
        publish()
        logger.notice("backend \(backend) is back in rotation: \(reason)", metadata: ["backend": "\(backend)", "event": "failback"])
        return true
    }

    /// Keeps the held backends in the state file, so a restart does not undo a `manual` hold.
    private func saveHeld() {
        guard let path = failback.stateFile else { return }
        do {
            try FailbackStateFile.save(zip(backends, states).filter { $1.failback.held }.map(\.0.endpoint), to: path)
        } catch {
            logger.error("\(error)", metadata: ["event": "state_file"])
        }
    }

    /// Takes `backend` out of rotation or puts it back, as an operator asks (control socket).
    /// Its health is still tracked, and probes go on while it is down.
    public func setAdministrativeState(_ backend: Backend, _ state: AdministrativeState) {
        guard states[backend.index].administrativeState != state else { return }
        states[backend.index].administrativeState = state
        publish()
        logger.notice("backend \(backend) is now \(state.rawValue) by an operator", metadata: ["backend": "\(backend)", "event": "backend_\(state.rawValue)"])
        emit(.administrativeStateChanged(backend, state))
    }

    /// Stops every probe and ends every event stream; later reports change nothing.
    public func shutdown() {
        isShutDown = true
        for probe in probes.values { probe.cancel() }
        probes.removeAll()
        for loop in checkLoops { loop.cancel() }
        checkLoops.removeAll()
        for release in holdReleases.values { release.cancel() }
        holdReleases.removeAll()
        for subscriber in subscribers.values { subscriber.finish() }
        subscribers.removeAll()
    }

    // MARK: Events

    /// A change of a backend's state, for whoever follows them (status, metrics).
    public enum BackendEvent: Sendable {
        case down(Backend, reason: String)
        case up(Backend, downtime: Duration)
        case administrativeStateChanged(Backend, AdministrativeState)
    }

    /// The state changes from now on, until shutdown or until the stream is dropped.
    public func events() -> AsyncStream<BackendEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: BackendEvent.self, bufferingPolicy: .bufferingNewest(64))
        if isShutDown {
            continuation.finish()
            return stream
        }
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(id) } }
        return stream
    }

    private func unsubscribe(_ id: Int) {
        subscribers[id] = nil
    }

    private func emit(_ event: BackendEvent) {
        for subscriber in subscribers.values { subscriber.yield(event) }
    }

    // MARK: Probes

    private func startProbing(_ backend: Backend) {
        // Active checks cover down backends too.
        guard activeChecks == nil, let delay = probeDelay, probes[backend.index] == nil else { return }
        // The task runs on the registry's loop: it leaves the actor only to sleep and to check.
        probes[backend.index] = Task(executorPreference: taskExecutor) { await self.probe(backend, every: delay) }
    }

    private func probe(_ backend: Backend, every delay: Duration) async {
        while !Task.isCancelled {
            do { try await clock.sleep(for: delay) } catch { return }
            let started = clock.now
            do {
                let observation = try await healthCheck.check(backend)
                probeObserver?(backend, clock.now - started, true)
                observe(backend, observation)
                probeSucceeded(backend)
                return
            } catch {
                if Task.isCancelled { return }
                probeObserver?(backend, clock.now - started, false)
                let reason = ConnectFailure.describe(error)
                logger.debug("probe of backend \(backend) failed: \(reason)", metadata: ["backend": "\(backend)"])
                probeFailed(backend, reason: reason)
            }
        }
    }

    private func probeSucceeded(_ backend: Backend) {
        probes[backend.index] = nil
        states[backend.index].checkFailure = nil
        markUp(backend)
    }

    private func probeFailed(_ backend: Backend, reason: String) {
        noteCheckFailure(backend, reason: reason)
        states[backend.index].lastError = reason
    }

    /// A failed check of a backend that is down already: its cause is logged as a warning
    /// when it changes (a wrong password, a missing grant, a server that stopped answering),
    /// at debug level while it stays the same: one line per change, not one per interval.
    private func noteCheckFailure(_ backend: Backend, reason: String) {
        defer { states[backend.index].checkFailure = reason }
        if states[backend.index].checkFailure != reason && !states[backend.index].isUp {
            logger.warning("check of backend \(backend) failed: \(reason)", metadata: ["backend": "\(backend)", "event": "check_failed"])
        } else {
            logger.debug("check of backend \(backend) failed: \(reason)", metadata: ["backend": "\(backend)"])
        }
    }

    /// Records what a passed check saw of the server; a change of role is logged and published,
    /// and a writer that stops being writable loses its sessions (like a backend marked down).
    private func observe(_ backend: Backend, _ observation: CheckObservation) {
        guard let server = observation.mysql, !isShutDown else { return }
        let previous = states[backend.index].server
        guard previous != server else { return }
        states[backend.index].server = server
        let roleChanged = previous?.isWritable != server.isWritable || previous?.replica?.isReplicating != server.replica?.isReplicating
        if roleChanged {
            logger.notice("backend \(backend) is \(server)", metadata: ["backend": "\(backend)", "event": "backend_role"])
        } else if selection.settings.role == .reader, server.replica?.isReplicating == true, let limit = selection.settings.maxLag,
            selection.qualifiesAsReader(previous) != selection.qualifiesAsReader(server)
        {
            // Still replicating, but its lag crossed -max-lag one way or the other.
            let behind = server.replica?.secondsBehind.map { "\($0)s behind" } ?? "lag unknown"
            if selection.qualifiesAsReader(server) {
                logger.notice("backend \(backend) caught up (\(behind)): it gets readers again", metadata: ["backend": "\(backend)", "event": "replica_caught_up"])
            } else {
                logger.warning(
                    "backend \(backend) is over -max-lag (\(behind), limit \(GoDuration.formatApproximately(limit))): no new readers until it catches up",
                    metadata: ["backend": "\(backend)", "event": "replica_lagging"])
            }
        }
        publish()
        if selection.settings.role == .writer && closeSessionsOnDown && previous?.isWritable == true && !server.isWritable {
            let closed = backend.connections.closeAll()
            if closed > 0 {
                logger.notice(
                    "closed \(closed) connection(s) to \(backend), which is no longer writable, so their clients reconnect to the writer",
                    metadata: ["backend": "\(backend)", "event": "sessions_closed"])
            }
        }
    }

    /// Logs a split brain (an error: writes are refused) when it starts or changes, and its end.
    private func announceRefusalChange(from before: BackendSelection.Refusal?) {
        let snapshot = publisher.snapshot
        guard snapshot.refusal != before else { return }
        if let writable = snapshot.splitBrain {
            logger.error(
                "split brain: \(writable.map { "\($0)" }.joined(separator: " and ")) are all writable; refusing new writer connections until only one is (-split-brain refuse)",
                metadata: ["event": "split_brain"])
        } else if case .splitBrain = before {
            let now = snapshot.current.map { "; writers go to \($0)" } ?? ""
            logger.notice("split brain over\(now)", metadata: ["event": "split_brain_over"])
        }
    }

    // MARK: Active checks

    /// Starts checking every backend, up or down, if active checks are configured.
    public func startChecks() {
        guard let settings = activeChecks, checkLoops.isEmpty, !isShutDown else { return }
        for backend in backends {
            checkLoops.append(Task(executorPreference: taskExecutor) { await self.check(backend, settings) })
        }
    }

    private func check(_ backend: Backend, _ settings: ActiveChecks) async {
        // With roles, nobody may be sent anywhere before the first check: run it at once.
        var first = selection.settings.role != .any
        while !Task.isCancelled {
            let delay = states[backend.index].streak.nextDelay(isUp: states[backend.index].isUp, settings)
            if !first {
                do { try await clock.sleep(for: delay) } catch { return }
            }
            first = false
            let started = clock.now
            do {
                let observation = try await healthCheck.check(backend)
                observe(backend, observation)
                checkSucceeded(backend, latency: clock.now - started, settings: settings)
            } catch {
                if Task.isCancelled { return }
                checkFailed(backend, reason: ConnectFailure.describe(error), latency: clock.now - started, settings: settings)
            }
        }
    }

    private func checkSucceeded(_ backend: Backend, latency: Duration, settings: ActiveChecks) {
        probeObserver?(backend, latency, true)
        states[backend.index].checkFailure = nil
        let isUp = states[backend.index].isUp
        if states[backend.index].streak.passed(isUp: isUp, settings) {
            let successes = states[backend.index].streak.successes
            markUp(backend, evidence: "\(successes) checks passed, the last in \(GoDuration.formatApproximately(latency))")
        }
    }

    private func checkFailed(_ backend: Backend, reason: String, latency: Duration, settings: ActiveChecks) {
        probeObserver?(backend, latency, false)
        let isUp = states[backend.index].isUp
        if states[backend.index].streak.failed(isUp: isUp, settings) {
            let failures = states[backend.index].streak.failures
            // The line that says it is down names the cause.
            states[backend.index].checkFailure = reason
            markDown(backend, reason: "\(reason) (\(failures) checks failed, the last after \(GoDuration.formatApproximately(latency)))")
        } else {
            noteCheckFailure(backend, reason: reason)
            states[backend.index].lastError = reason
        }
    }

    /// Calls `observer` after every probe with its duration and whether it succeeded (metrics).
    public func observeProbes(_ observer: @escaping @Sendable (Backend, Duration, Bool) -> Void) {
        probeObserver = observer
    }

    /// Whether a probe task is scheduled for `backend` (for tests and reports).
    public func isProbing(_ backend: Backend) -> Bool { probes[backend.index] != nil }

    private func publish() {
        let previous = publisher.snapshot.current
        let refusalBefore = publisher.snapshot.refusal
        defer { announceRefusalChange(from: refusalBefore) }
        let snapshot = RegistrySnapshot(
            backends: zip(backends, states).map {
                BackendStatus(backend: $0, isUp: $1.isUp, administrativeState: $1.administrativeState, isHeld: $1.failback.held, server: $1.server)
            },
            selection: selection)
        publisher.publish(snapshot)
        // Traffic goes back up the list: optionally end what still runs on the lower backends.
        if failback.closeLowerConnections, let current = snapshot.current, let previous, current.index < previous.index {
            let closed = backends.dropFirst(current.index + 1).reduce(0) { $0 + $1.connections.closeAll() }
            if closed > 0 {
                logger.notice(
                    "closed \(closed) connection(s) on backends after \(current), now that new clients go to it again",
                    metadata: ["backend": "\(current)", "event": "failback_close"])
            }
        }
    }

    // MARK: Reports

    /// Everything known about one backend at one moment, for stats lines and later metrics.
    public struct Report: Sendable {
        public let backend: Backend
        public let isUp: Bool
        public let administrativeState: AdministrativeState
        /// Held out of rotation by the failback policy.
        public let isHeld: Bool
        /// Total time spent down, including the current spell.
        public let downtime: Duration
        /// How long ago the state last changed; `nil` if it never did.
        public let sinceLastChange: Duration?
        public let lastError: String?
        /// Wall-clock time of the last change, in seconds since 1970; `nil` if it never changed.
        public let lastChangeWallTime: Double?
        public let counters: BackendCounters.Values
        /// What the last check that logged in saw of the server; nil if none did (or since
        /// it went down).
        public let server: MySQLServerState?
    }

    public func reports() -> [Report] {
        let now = clock.now
        return zip(backends, states).map { backend, state in
            let current = state.isUp ? .zero : (state.lastChange.map { now - $0 } ?? .zero)
            return Report(
                backend: backend, isUp: state.isUp, administrativeState: state.administrativeState, isHeld: state.failback.held, downtime: state.pastDowntime + current,
                sinceLastChange: state.lastChange.map { now - $0 }, lastError: state.lastError,
                lastChangeWallTime: state.lastChangeWallTime,
                counters: backend.counters.values,
                server: state.server)
        }
    }
}
