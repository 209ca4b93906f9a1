import Logging
import NIOCore
import NIOPosix

/// Owns the health state of every backend and is its only writer: it marks backends down
/// when a connection fails, probes each down backend in the background until it answers,
/// and publishes an immutable snapshot that the accept path reads without an actor hop.
public actor BackendRegistry {
    /// The current list, in order of preference. It changes with `replaceBackends` (etcd, a
    /// reload); a removed backend's open connections go on without it.
    public nonisolated var backends: [Backend] { publisher.snapshot.backends.map(\.backend) }
    /// Reaches the data loops to close a backend's relays: the data path installs it once for
    /// every backend, present and future.
    public nonisolated let sessionCloser = SessionCloser()

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
        /// Added while the proxy runs: out of rotation until a first check passes.
        var isNew = false
        /// A check, a probe or a client has said something about it since the start.
        var isChecked = false
    }

    /// The current list, in order; `states` has an entry for each, by `Backend.id`.
    private var list: [Backend]
    private var states: [Int: State]
    private var nextID: Int
    private let dataLoops: Int
    private let heldAtStart: Set<Endpoint>
    /// The last list from etcd, kept in the state file with the held backends.
    private var keptList: [Endpoint]
    /// In a group (`-etcd-group`): the decision this member follows.
    private var group: GroupFollowing?
    private var probes: [Int: Task<Void, Never>] = [:]
    private var subscribers: [Int: AsyncStream<BackendEvent>.Continuation] = [:]
    private var nextSubscriber = 0
    private var isShutDown = false
    private var probeObserver: (@Sendable (Backend, Duration, Bool) -> Void)?
    private let probeDelay: Duration?
    private let activeChecks: ActiveChecks?
    private let closeSessionsOnDown: Bool
    private var checkLoops: [Int: Task<Void, Never>] = [:]
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
        keptList: [Endpoint] = [],
        healthCheck: any HealthCheck,
        clock: any ProxyClock = SystemClock(),
        logger: Logger,
        dataLoops: Int = 1,
        executor: (any EventLoop)? = nil,
        roles: RoleSettings = RoleSettings()
    ) {
        self.loop = executor ?? MultiThreadedEventLoopGroup.singleton.next()
        self.taskExecutor = EventLoopTaskExecutor(loop: loop)
        let first = BackendListChange(from: [], to: endpoints).list
        let closer = sessionCloser
        let backends = first.enumerated().map { Backend(id: $0.offset, endpoint: $0.element, loops: dataLoops, closer: closer) }
        self.list = backends
        self.nextID = backends.count
        self.dataLoops = dataLoops
        self.heldAtStart = heldAtStart
        self.keptList = keptList
        let policy = FailbackPolicy(settings: failback)
        self.states = Dictionary(uniqueKeysWithValues: backends.map { ($0.id, State(failback: policy.record(heldAtStart: heldAtStart.contains($0.endpoint)))) })
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
        guard snapshot.status(of: backend)?.isUp == false else { return }
        loop.execute { self.assumeIsolated { $0.markUp(backend, evidence: "a client connected to it") } }
    }

    // MARK: State changes

    /// Marks `backend` down and starts probing it. Does nothing if it is down already.
    public func markDown(_ backend: Backend, reason: String) {
        guard !isShutDown, states[backend.id] != nil else { return }
        states[backend.id]!.lastError = reason
        guard states[backend.id]!.isUp else { return }
        let now = clock.now
        states[backend.id]!.isChecked = true
        states[backend.id]!.isUp = false
        // What it was is unknown until a check sees it again (a primary that crashed may
        // come back writable or not).
        states[backend.id]!.server = nil
        states[backend.id]!.lastChange = now
        states[backend.id]!.lastChangeWallTime = WallClock.now
        states[backend.id]!.streak.stateChanged()
        noteFailureForFailback(backend, now: now)
        publish()
        logger.warning("backend \(backend) is down: \(reason)", metadata: ["backend": "\(backend)", "event": "backend_down"])
        if group != nil && publisher.snapshot.current === backend {
            logger.warning(
                "this member sees \(backend) down, but it is the group's decision: new clients still go to it until a quorum sees it down",
                metadata: ["backend": "\(backend)", "event": "group_disagrees"])
        }
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
        guard !isShutDown, let state = states[backend.id], !state.isUp else { return }
        if state.isNew { return admitNew(backend, evidence: evidence) }
        let now = clock.now
        let spell = states[backend.id]!.lastChange.map { now - $0 } ?? .zero
        states[backend.id]!.isChecked = true
        states[backend.id]!.isUp = true
        states[backend.id]!.pastDowntime += spell
        states[backend.id]!.lastChange = now
        states[backend.id]!.lastChangeWallTime = WallClock.now
        states[backend.id]!.streak.stateChanged()
        probes.removeValue(forKey: backend.id)?.cancel()
        let hold = holdOnReturn(backend)
        publish()
        let how = evidence.map { " (\($0))" } ?? ""
        logger.notice(
            "backend \(backend) is back after \(GoDuration.formatApproximately(spell))\(how)\(hold)",
            metadata: ["backend": "\(backend)", "event": "backend_up"])
        emit(.up(backend, downtime: spell))
    }

    // MARK: The list (etcd, a reload)

    /// Replaces the list of backends and returns what changed; `source` names where the new
    /// list comes from, for the log. Backends that stay keep their state and connections and
    /// take their new place; a new one gets no client until a first check passes; a removed
    /// one gets no new client and its open connections go on. An empty list changes nothing
    /// (it is refused by the caller, logged there): a proxy never drops every backend.
    @discardableResult
    ///   - keep: keep the list in the state file (`-state-file`), for a start while etcd is down.
    public func replaceBackends(_ endpoints: [Endpoint], source: String, keep: Bool = false) -> BackendListChange {
        let change = BackendListChange(from: list.map(\.endpoint), to: endpoints)
        guard !isShutDown, !change.list.isEmpty else { return change }
        if keep && change.list != keptList {
            keptList = change.list
            saveState()
        }
        guard !change.isEmpty else { return change }
        let byEndpoint = Dictionary(uniqueKeysWithValues: list.map { ($0.endpoint, $0) })
        var added: [Backend] = []
        let now = clock.now
        list = change.list.map { endpoint in
            if let kept = byEndpoint[endpoint] { return kept }
            let backend = Backend(id: nextID, endpoint: endpoint, loops: dataLoops, closer: sessionCloser)
            nextID += 1
            var state = State(failback: failbackPolicy.record(heldAtStart: heldAtStart.contains(endpoint)))
            state.isUp = false
            state.isNew = true
            state.lastError = "not checked yet"
            state.lastChange = now
            state.lastChangeWallTime = WallClock.now
            states[backend.id] = state
            added.append(backend)
            return backend
        }
        let removed = change.removed.compactMap { byEndpoint[$0] }
        for backend in removed { forget(backend) }
        publish()
        logger.notice("backends from \(source): \(change.summary)", metadata: ["event": "backends_changed"])
        for backend in removed {
            logger.notice(
                "backend \(backend) removed: no new clients; its \(backend.connections.count) open connection(s) go on",
                metadata: ["backend": "\(backend)", "event": "backend_removed"])
        }
        for backend in added {
            logger.notice("backend \(backend) added: it gets clients once a first check passes", metadata: ["backend": "\(backend)", "event": "backend_added"])
            if let settings = activeChecks {
                startCheckLoop(backend, settings, firstAtOnce: true)
            } else {
                // Probed until it answers, the first time at once.
                let delay = probeDelay ?? .seconds(30)
                probes[backend.id] = Task(executorPreference: taskExecutor) { await self.probe(backend, every: delay, firstAtOnce: true) }
            }
        }
        emit(.listChanged(change))
        return change
    }

    /// Drops a removed backend's state and tasks; its open relays go on.
    private func forget(_ backend: Backend) {
        states[backend.id] = nil
        probes.removeValue(forKey: backend.id)?.cancel()
        checkLoops.removeValue(forKey: backend.id)?.cancel()
        holdReleases.removeValue(forKey: backend.id)?.cancel()
    }

    /// A backend added while running passed its first check: into rotation (no downtime is
    /// counted and no failback hold applies: it was never in use).
    private func admitNew(_ backend: Backend, evidence: String?) {
        probes[backend.id] = nil
        states[backend.id]!.isNew = false
        states[backend.id]!.isChecked = true
        states[backend.id]!.isUp = true
        states[backend.id]!.lastError = nil
        states[backend.id]!.checkFailure = nil
        states[backend.id]!.lastChange = clock.now
        states[backend.id]!.lastChangeWallTime = WallClock.now
        states[backend.id]!.streak.stateChanged()
        publish()
        let how = evidence.map { " (\($0))" } ?? ""
        logger.notice("backend \(backend) is up and in rotation\(how)", metadata: ["backend": "\(backend)", "event": "backend_up"])
        emit(.up(backend, downtime: .zero))
    }

    /// The current list with each backend's state.
    private var entries: [(Backend, State)] { list.map { ($0, states[$0.id]!) } }

    // MARK: Groups

    /// In a group: new clients go where the group decided (or nowhere, with the reason).
    /// Leaving a backend closes its sessions under `-close-on-down`; a decided backend that
    /// this member sees down is followed anyway, and said so.
    public func followGroup(_ following: GroupFollowing) {
        guard !isShutDown, following != group else { return }
        let before = publisher.snapshot.current
        group = following
        publish()
        let now = publisher.snapshot
        guard now.current !== before || following.refusing != nil else { return }
        if let current = now.current {
            let seenDown = now.status(of: current)?.isUp == false ? " (this member sees it down; the group's quorum does not, so it is followed)" : ""
            logger.notice(
                "following the group's decision: new clients go to \(current) (epoch \(following.epoch))\(seenDown)",
                metadata: ["backend": "\(current)", "event": "group_follow"])
        } else if let reason = now.refusalReason {
            logger.warning("refusing new clients: \(reason)", metadata: ["event": "group_refuse"])
        }
        // Sessions are closed only when the group moved down the list, off a backend a quorum
        // saw down; not when this member refuses (etcd lost) nor on a failback (that is
        // -failback-close's, in publish).
        if closeSessionsOnDown, let before, let current = now.current, current !== before,
            let from = list.firstIndex(where: { $0 === before }), let to = list.firstIndex(where: { $0 === current }), from < to
        {
            let closed = before.connections.closeAll()
            if closed > 0 {
                logger.notice(
                    "closed \(closed) connection(s) to \(before), which the group left, so their clients reconnect to the group's backend",
                    metadata: ["backend": "\(before)", "event": "sessions_closed"])
            }
        }
    }

    // MARK: Failback (the decisions are `FailbackPolicy`'s)

    /// On a failure: the policy may hold the backend (saved) or lengthen its hold-down; a
    /// pending return is cancelled.
    private func noteFailureForFailback(_ backend: Backend, now: Duration) {
        holdReleases.removeValue(forKey: backend.id)?.cancel()
        let alternative = entries.contains { other, state in
            other !== backend && state.isUp && !state.failback.held && state.administrativeState == .enabled
        }
        let wasCurrent = publisher.snapshot.current === backend
        if failbackPolicy.failed(&states[backend.id]!.failback, now: now, wasCurrent: wasCurrent, alternativeAvailable: alternative) {
            saveState()
        }
    }

    /// On a return: ` (held ...)` for the log line, after arranging the hold.
    private func holdOnReturn(_ backend: Backend) -> String {
        switch failbackPolicy.returned(&states[backend.id]!.failback, now: clock.now) {
        case .inRotation:
            return ""
        case .heldUntilOperator:
            return "; held out of rotation until an operator allows it back (tcp-fallback ctl failback \(backend))"
        case .heldFor(let delay):
            holdReleases[backend.id] = Task(executorPreference: taskExecutor) { await self.holdDown(backend, for: delay) }
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
        holdReleases.removeValue(forKey: backend.id)?.cancel()
        guard states[backend.id] != nil, failbackPolicy.released(&states[backend.id]!.failback, now: clock.now) else { return false }
        if failback.policy == .manual { saveState() }
        publish()
        logger.notice("backend \(backend) is back in rotation: \(reason)", metadata: ["backend": "\(backend)", "event": "failback"])
        return true
    }

    /// Keeps the held backends in the state file, so a restart does not undo a `manual` hold,
    /// and the last list from etcd, so a start while etcd is down has it.
    private func saveState() {
        guard let path = failback.stateFile else { return }
        do {
            // Only manual holds outlast a restart; a hold-down's is over by then or soon after.
            let held = failback.policy == .manual ? Set(entries.filter { $1.failback.held }.map(\.0.endpoint)) : []
            try StateFile.save(StateFile.Contents(held: held, backends: keptList), to: path)
        } catch {
            logger.error("\(error)", metadata: ["event": "state_file"])
        }
    }

    /// Takes `backend` out of rotation or puts it back, as an operator asks (control socket).
    /// Its health is still tracked, and probes go on while it is down.
    public func setAdministrativeState(_ backend: Backend, _ state: AdministrativeState) {
        guard let current = states[backend.id], current.administrativeState != state else { return }
        states[backend.id]!.administrativeState = state
        publish()
        logger.notice("backend \(backend) is now \(state.rawValue) by an operator", metadata: ["backend": "\(backend)", "event": "backend_\(state.rawValue)"])
        emit(.administrativeStateChanged(backend, state))
    }

    /// Stops every probe and ends every event stream; later reports change nothing.
    public func shutdown() {
        isShutDown = true
        for probe in probes.values { probe.cancel() }
        probes.removeAll()
        for loop in checkLoops.values { loop.cancel() }
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
        /// The list changed (etcd, a reload).
        case listChanged(BackendListChange)
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
        guard activeChecks == nil, let delay = probeDelay, probes[backend.id] == nil else { return }
        // The task runs on the registry's loop: it leaves the actor only to sleep and to check.
        probes[backend.id] = Task(executorPreference: taskExecutor) { await self.probe(backend, every: delay) }
    }

    private func probe(_ backend: Backend, every delay: Duration, firstAtOnce: Bool = false) async {
        var first = firstAtOnce
        while !Task.isCancelled {
            if !first {
                do { try await clock.sleep(for: delay) } catch { return }
            }
            first = false
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
        probes[backend.id] = nil
        guard states[backend.id] != nil else { return }
        states[backend.id]!.checkFailure = nil
        markUp(backend)
    }

    private func probeFailed(_ backend: Backend, reason: String) {
        guard states[backend.id] != nil else { return }
        noteCheckFailure(backend, reason: reason)
        states[backend.id]!.lastError = reason
    }

    /// A failed check of a backend that is down already: its cause is logged as a warning
    /// when it changes (a wrong password, a missing grant, a server that stopped answering),
    /// at debug level while it stays the same: one line per change, not one per interval.
    private func noteCheckFailure(_ backend: Backend, reason: String) {
        defer { states[backend.id]!.checkFailure = reason }
        if states[backend.id]!.checkFailure != reason && !states[backend.id]!.isUp {
            logger.warning("check of backend \(backend) failed: \(reason)", metadata: ["backend": "\(backend)", "event": "check_failed"])
        } else {
            logger.debug("check of backend \(backend) failed: \(reason)", metadata: ["backend": "\(backend)"])
        }
    }

    /// Records what a passed check saw of the server; a change of role is logged and published,
    /// and a writer that stops being writable loses its sessions (like a backend marked down).
    private func observe(_ backend: Backend, _ observation: CheckObservation) {
        guard let server = observation.mysql, !isShutDown, states[backend.id] != nil else { return }
        let previous = states[backend.id]!.server
        guard previous != server else { return }
        states[backend.id]!.server = server
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
        for backend in list {
            // With roles, nobody may be sent anywhere before the first check, and in a group a
            // member votes only on what it checked: run it at once.
            startCheckLoop(backend, settings, firstAtOnce: selection.settings.role != .any || group != nil)
        }
    }

    /// The first word on a backend since the start (its first check): published, since a
    /// group member votes only on checked backends.
    private func noteChecked(_ backend: Backend) {
        states[backend.id]!.isChecked = true
        publish()
    }

    private func startCheckLoop(_ backend: Backend, _ settings: ActiveChecks, firstAtOnce: Bool) {
        checkLoops[backend.id] = Task(executorPreference: taskExecutor) { await self.check(backend, settings, firstAtOnce: firstAtOnce) }
    }

    private func check(_ backend: Backend, _ settings: ActiveChecks, firstAtOnce: Bool) async {
        var first = firstAtOnce
        while !Task.isCancelled, let state = states[backend.id] {
            let delay = state.streak.nextDelay(isUp: state.isUp, settings)
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
        guard let state = states[backend.id] else { return }
        if !state.isChecked { noteChecked(backend) }
        if state.isNew { return admitNew(backend, evidence: "its first check passed in \(GoDuration.formatApproximately(latency))") }
        states[backend.id]!.checkFailure = nil
        let isUp = states[backend.id]!.isUp
        if states[backend.id]!.streak.passed(isUp: isUp, settings) {
            let successes = states[backend.id]!.streak.successes
            markUp(backend, evidence: "\(successes) checks passed, the last in \(GoDuration.formatApproximately(latency))")
        }
    }

    private func checkFailed(_ backend: Backend, reason: String, latency: Duration, settings: ActiveChecks) {
        probeObserver?(backend, latency, false)
        guard let state = states[backend.id] else { return }
        if !state.isChecked { noteChecked(backend) }
        let isUp = states[backend.id]!.isUp
        if states[backend.id]!.streak.failed(isUp: isUp, settings) {
            let failures = states[backend.id]!.streak.failures
            // The line that says it is down names the cause.
            states[backend.id]!.checkFailure = reason
            markDown(backend, reason: "\(reason) (\(failures) checks failed, the last after \(GoDuration.formatApproximately(latency)))")
        } else {
            noteCheckFailure(backend, reason: reason)
            states[backend.id]!.lastError = reason
        }
    }

    /// Calls `observer` after every probe with its duration and whether it succeeded (metrics).
    public func observeProbes(_ observer: @escaping @Sendable (Backend, Duration, Bool) -> Void) {
        probeObserver = observer
    }

    /// Whether a probe task is scheduled for `backend` (for tests and reports).
    public func isProbing(_ backend: Backend) -> Bool { probes[backend.id] != nil }

    private func publish() {
        let previous = publisher.snapshot.current
        let refusalBefore = publisher.snapshot.refusal
        defer { announceRefusalChange(from: refusalBefore) }
        let snapshot = RegistrySnapshot(
            backends: entries.map {
                BackendStatus(
                    backend: $0, isUp: $1.isUp, administrativeState: $1.administrativeState, isHeld: $1.failback.held, server: $1.server,
                    isNew: $1.isNew, isChecked: $1.isChecked)
            },
            selection: selection, group: group)
        publisher.publish(snapshot)
        // Traffic goes back up the list: optionally end what still runs on the lower backends.
        if failback.closeLowerConnections, let current = snapshot.current, let previous,
            let now = list.firstIndex(where: { $0 === current }), let before = list.firstIndex(where: { $0 === previous }), now < before
        {
            let closed = list.dropFirst(now + 1).reduce(0) { $0 + $1.connections.closeAll() }
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
        /// Its place in the current list: 0 is the most preferred.
        public let position: Int
        /// Added while running and not checked yet.
        public let isNew: Bool
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
        return entries.enumerated().map { position, entry in
            let (backend, state) = entry
            let current = state.isUp ? .zero : (state.lastChange.map { now - $0 } ?? .zero)
            return Report(
                backend: backend, position: position, isNew: state.isNew, isUp: state.isUp, administrativeState: state.administrativeState, isHeld: state.failback.held, downtime: state.pastDowntime + current,
                sinceLastChange: state.lastChange.map { now - $0 }, lastError: state.lastError,
                lastChangeWallTime: state.lastChangeWallTime,
                counters: backend.counters.values,
                server: state.server)
        }
    }
}
