import Etcd
import Logging

/// One proxy's part in a group (`-etcd-group`): it publishes what its checks see under its
/// lease, takes part in the election of the member that decides, decides when elected, and
/// follows the decision.
///
/// Keys, under `PREFIX.groups/NAME/` (beside the backends' prefix, not in it):
/// - `members/MEMBER`: a `GroupMemberView`, under the member's lease;
/// - `leader`: the elected member's name, under its lease (created only if absent);
/// - `decision`: the `GroupDecision`, written only by the leader, in a transaction that checks
///   both that it still is the leader and the revision of the decision it read.
///
/// Contract: a member sends new clients only where the decision it last saw says; a member
/// that cannot keep its lease (etcd lost) serves that decision (`keep`) or no one (`refuse`).
public actor GroupMember {
    /// What the member knows now (`show backends`, STATUS, metrics).
    public struct Status: Sendable {
        public var leader: String?
        public var isLeader = false
        public var decision: GroupDecision?
        public var liveMembers = 0
        /// Set while etcd is lost (the lease could not be kept).
        public var lost: String?
    }

    public nonisolated let settings: GroupSettings
    private let prefix: String
    private let client: EtcdClient
    private let registry: BackendRegistry
    private let policy: GroupLeaderPolicy
    private let clock: any ProxyClock
    private let logger: Logger
    private nonisolated let published = Locked(Status())

    private var lease: Int64 = 0
    private var lastKeepAlive: Duration
    private var views: [String: GroupMemberView] = [:]
    private var decision: GroupDecision?
    private var decisionRevision: Int64 = 0
    private var leader: String?
    private var upSince: [String: Duration] = [:]
    /// The revision the member's picture of the group is from (the read, then each watch batch).
    private var seenRevision: Int64 = 0
    /// The last check of the watch found it behind (one check alone may just have crossed a
    /// change on its way: two in a row restart it).
    private var watchBehind = false
    private var lostSince: Duration?

    public init(settings: GroupSettings, prefix: String, client: EtcdClient, registry: BackendRegistry, failback: FailbackSettings, clock: any ProxyClock = SystemClock(), logger: Logger) {
        self.settings = settings
        self.prefix = prefix
        self.client = client
        self.registry = registry
        self.policy = GroupLeaderPolicy(quorum: settings.quorum, failback: failback.policy, holdDelay: failback.delay)
        self.clock = clock
        self.logger = logger
        self.lastKeepAlive = clock.now
    }

    public nonisolated var status: Status { published.withLock { $0 } }

    private var ttlSeconds: Int64 { max(1, Int64((settings.leaseTTL.components.seconds)) + (settings.leaseTTL.components.attoseconds > 0 ? 1 : 0)) }
    private func key(_ suffix: String) -> String { settings.key(suffix, prefix: prefix) }
    private var groupPrefix: String { key("") }

    // MARK: Running

    /// Takes part in the group until cancelled.
    public func run() async {
        await registry.followGroup(GroupFollowing(decided: nil, epoch: 0, refusing: "no decision of group \(settings.name) yet"))
        var backoff = ReconnectBackoff(initial: .milliseconds(100), maximum: .seconds(2))
        while !Task.isCancelled {
            let started = clock.now
            do {
                try await session()
            } catch {
                if Task.isCancelled { break }
                logger.debug("group \(settings.name): \(error)", metadata: ["event": "group_session"])
                await checkLost(error)
            }
            if clock.now - started > settings.leaseTTL { backoff.reset() }
            try? await clock.sleep(for: backoff.delay())
        }
        // Cancelled: the revoke runs in a task of its own, or it would not be sent at all.
        if lease != 0 {
            let (client, lease) = (client, lease)
            await Task.detached { try? await client.revoke(lease) }.value
        }
    }

    /// One lease's worth: register, campaign, read, then keep alive, watch and publish until
    /// something fails.
    private func session() async throws {
        // A lease that is still alive is kept (a broken watch does not cost the member its
        // place, nor the group its leader); otherwise a new one.
        if lease != 0, (try? await client.keepAlive(lease)) != nil {
            lastKeepAlive = clock.now
        } else {
            lease = try await client.grantLease(ttl: ttlSeconds)
            lastKeepAlive = clock.now
            views[settings.member] = nil
        }
        try await publishView()
        try await campaign()
        let read = try await client.range(prefix: groupPrefix)
        views = [:]
        leader = nil
        // The last decision is kept if its key is gone: it is written again, not forgotten.
        decisionRevision = 0
        for keyValue in read.keyValues { absorb(keyValue, deleted: false) }
        seenRevision = read.revision
        await regained()
        await follow()
        try await evaluate()
        let events = await registry.events()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.keepAliveLoop() }
            group.addTask { try await self.watchLoop(from: read.revision + 1) }
            group.addTask {
                for await _ in events { try await self.publishView(); try await self.evaluate() }
                throw CancellationError()  // the registry shut down
            }
            // On time alone: every member reads the group's keys, in case its watch went quiet
            // without ending (a member of etcd that stopped answering but kept the connection
            // open), and the leader decides (a -failback hold that has lasted).
            group.addTask {
                while true {
                    try await self.clock.sleep(for: self.settings.leaseTTL / 3)
                    try await self.verifyWatch()
                    try await self.evaluate()
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Keeps the lease alive every third of its TTL, retrying a failed keepalive until the
    /// lease must have expired: then the member has lost etcd, at once, not after the calls
    /// that follow have failed on every endpoint.
    private func keepAliveLoop() async throws {
        while true {
            try await clock.sleep(for: settings.leaseTTL / 3)
            // Timed from the request: the lease runs from when etcd renewed it, at the latest.
            let sent = clock.now
            do {
                _ = try await client.keepAlive(lease)
                lastKeepAlive = sent
            } catch let error as EtcdError {
                if case .leaseExpired = error { throw error }
                if clock.now - lastKeepAlive >= settings.leaseTTL { throw error }
            }
        }
    }

    private func watchLoop(from revision: Int64) async throws {
        for try await batch in client.watch(prefix: groupPrefix, fromRevision: revision) {
            var leaderGone = false
            var decisionChanged = false
            for event in batch.events {
                let change = absorb(event.keyValue, deleted: event.kind == .delete)
                leaderGone = leaderGone || change == .leaderGone
                decisionChanged = decisionChanged || change == .decision
            }
            seenRevision = max(seenRevision, batch.revision)
            if decisionChanged { await follow() }
            // Our own view deleted (by hand, with a prefix): published again.
            if views[settings.member] == nil { try await publishView() }
            if leaderGone { try await campaign() }
            try await evaluate()
        }
        throw EtcdError.badResponse("the watch of group \(settings.name) ended")
    }

    private enum Change { case none, leaderGone, decision }

    /// Takes one key of the group into the member's picture of it.
    @discardableResult
    private func absorb(_ keyValue: EtcdKeyValue, deleted: Bool) -> Change {
        let name = String(keyValue.key.dropFirst(groupPrefix.count))
        if name.hasPrefix("members/") {
            let member = String(name.dropFirst("members/".count))
            views[member] = deleted ? nil : GroupMemberView.decode(keyValue.value)
        } else if name == "leader" {
            leader = deleted ? nil : keyValue.valueText
            publish()
            if deleted { return .leaderGone }
        } else if name == "decision" {
            decisionRevision = deleted ? 0 : keyValue.modRevision
            // A deleted decision is not "no decision": members keep following the last one,
            // and the leader writes it again.
            guard !deleted, let decoded = GroupDecision.decode(keyValue.value) else { return .none }
            decision = decoded
            return .decision
        }
        publish()
        return .none
    }

    // MARK: Election and decision

    /// Becomes the leader if there is none (the key is created only if absent, under our lease).
    private func campaign() async throws {
        let leaderKey = key("leader")
        let result = try await client.txn(
            compare: [.createRevision(key: leaderKey, equals: 0)],
            success: [.put(key: leaderKey, value: Array(settings.member.utf8), lease: lease)],
            failure: [.get(key: leaderKey)])
        let was = leader
        leader = result.succeeded ? settings.member : result.gets.first?.first?.valueText
        if result.succeeded && was != settings.member {
            logger.notice("group \(settings.name): this member (\(settings.member)) is elected to decide", metadata: ["event": "group_leader"])
        }
        publish()
    }

    /// When elected: writes the next decision, if the views call for one.
    private func evaluate() async throws {
        guard leader == settings.member, lease != 0 else { return }
        let order = registry.backends.map(\.endpoint.description)
        let live = Array(views.values)
        let now = clock.now
        let needed = settings.quorum.needed(live: max(live.count, 1))
        for backend in order {
            let up = live.filter { $0.up.contains(backend) }.count >= needed
            if up && upSince[backend] == nil { upSince[backend] = now } else if !up { upSince[backend] = nil }
        }
        let rewrite = decisionRevision == 0 ? decision.map { last in
            GroupDecision(epoch: last.epoch + 1, backend: last.backend, held: last.held, by: settings.member, reason: "the decision's key was deleted; written again")
        } : nil
        guard let next = policy.decide(order: order, views: live, current: decision, leader: settings.member, now: now, upSince: upSince) ?? rewrite else { return }
        let decisionKey = key("decision")
        let readRevision = decisionRevision
        let result = try await client.txn(
            compare: [.value(key: key("leader"), equals: Array(settings.member.utf8)), .modRevision(key: decisionKey, equals: readRevision)],
            success: [.put(key: decisionKey, value: next.encoded)],
            failure: [.get(key: decisionKey)])
        guard result.succeeded else {
            // Someone wrote it first (an operator's release): take theirs, decide again later.
            if let current = result.gets.first?.first, current.modRevision > decisionRevision, let decoded = GroupDecision.decode(current.value) {
                decision = decoded
                decisionRevision = current.modRevision
                await follow()
            }
            return
        }
        // The watch may have brought a newer decision while this one was in flight.
        if result.revision > decisionRevision {
            logger.notice(
                "group \(settings.name): decided \(next.backend ?? "no backend") (epoch \(next.epoch)): \(next.reason)",
                metadata: ["event": "group_decision"])
            // The watch brings it back too; following now saves a round trip.
            decision = next
            decisionRevision = result.revision
            await follow()
        }
    }

    /// `ctl failback BACKEND` on any member: takes it out of the group's held, disabled and
    /// draining backends. Returns whether it was any of them.
    public func release(_ endpoint: Endpoint, by operatorNote: String) async throws -> Bool {
        let name = endpoint.description
        return try await amendDecision(reason: "\(operatorNote) allowed \(name) back") { decision in
            guard decision.held.contains(name) || decision.administrativeState(of: name) != .enabled else { return nil }
            var next = decision.setting(name, to: .enabled)
            next.held.removeAll { $0 == name }
            return next
        }
    }

    /// `ctl disable`, `drain` or `enable` on any member: for the whole group. Returns whether
    /// the state changed.
    public func setAdministrativeState(_ endpoint: Endpoint, _ state: AdministrativeState, by operatorNote: String) async throws -> Bool {
        let name = endpoint.description
        return try await amendDecision(reason: "\(operatorNote) set \(name) \(state.rawValue)") { decision in
            decision.administrativeState(of: name) == state ? nil : decision.setting(name, to: state)
        }
    }

    /// Rewrites the decision as `change` says (nil: nothing to change), in a transaction on
    /// the revision read; the leader then decides from it. Retried a few times if another
    /// write came first.
    private func amendDecision(reason: String, _ change: (GroupDecision) -> GroupDecision?) async throws -> Bool {
        for _ in 0..<5 {
            let read = try await client.get(key("decision"))
            guard let keyValue = read.keyValues.first, let decision = GroupDecision.decode(keyValue.value) else {
                throw EtcdError.badResponse("group \(settings.name) has no decision yet")
            }
            guard var next = change(decision) else { return false }
            next.epoch = decision.epoch + 1
            next.by = settings.member
            next.reason = reason
            let result = try await client.txn(
                compare: [.modRevision(key: key("decision"), equals: keyValue.modRevision)],
                success: [.put(key: key("decision"), value: next.encoded)])
            if result.succeeded { return true }
        }
        throw EtcdError.badResponse("the decision of group \(settings.name) kept changing; try again")
    }

    /// Reads the group's keys; a key newer than what the watch brought, or a member's key
    /// gone, means the watch went quiet: the member follows what it read and the session
    /// starts again, with a new watch (the leader decides again there).
    private func verifyWatch() async throws {
        let read = try await client.range(prefix: groupPrefix)
        let members = Set(read.keyValues.map { String($0.key.dropFirst(groupPrefix.count)) }.filter { $0.hasPrefix("members/") }.map { String($0.dropFirst("members/".count)) })
        let behind = read.keyValues.contains(where: { $0.modRevision > seenRevision }) || members != Set(views.keys)
        defer { watchBehind = behind && !watchBehind }
        guard behind && watchBehind else { return }
        views = [:]
        for keyValue in read.keyValues { absorb(keyValue, deleted: false) }
        seenRevision = read.revision
        await follow()
        logger.warning(
            "group \(settings.name): the watch missed changes (decision epoch \(decision?.epoch ?? 0), \(views.count) live member(s)); following them and watching again",
            metadata: ["event": "group_watch_stale"])
        throw EtcdError.badResponse("the watch of group \(settings.name) went quiet")
    }

    // MARK: Following

    private func follow() async {
        guard let decision else {
            await registry.followGroup(GroupFollowing(decided: nil, epoch: 0, refusing: "no decision of group \(settings.name) yet"))
            publish()
            return
        }
        let decided = decision.backend.flatMap { try? Endpoint(parsing: $0, role: .backend) }
        let refusing = decided == nil ? "group \(settings.name) decided no backend (\(decision.reason))" : nil
        if lostSince != nil && settings.lost == .refuse { return publish() }
        // The group's operator states, on this member's list.
        for backend in registry.backends {
            await registry.setAdministrativeState(backend, decision.administrativeState(of: backend.endpoint.description))
        }
        await registry.followGroup(GroupFollowing(decided: decided, epoch: decision.epoch, refusing: refusing))
        publish()
    }

    /// Publishes what this member's checks see, under its lease.
    private func publishView() async throws {
        guard lease != 0 else { return }
        var down: [String] = []
        var up: [String] = []
        // A backend not checked yet is in neither list: a member that just started must not
        // vote a dead primary up.
        for status in registry.snapshot.backends where status.isChecked {
            if status.isUp { up.append(status.backend.endpoint.description) } else { down.append(status.backend.endpoint.description) }
        }
        let view = GroupMemberView(member: settings.member, down: down, up: up)
        guard views[settings.member] != view else { return }
        try await client.put(key("members/\(settings.member)"), value: view.encoded, lease: lease)
        views[settings.member] = view
    }

    // MARK: Losing etcd

    /// After a failed session: once the lease can no longer be alive, the member has lost etcd.
    private func checkLost(_ error: any Error) async {
        let now = clock.now
        let expired: Bool
        if case EtcdError.leaseExpired = error { expired = true } else { expired = now - lastKeepAlive >= settings.leaseTTL }
        guard lostSince == nil, expired else { return }
        lostSince = now
        let reason = "etcd lost (\(error)); its lease expired"
        published.withLock { $0.lost = reason }
        switch settings.lost {
        case .keep:
            logger.error(
                "group \(settings.name): \(reason); serving the last decision (\(decision?.backend ?? "none")) until etcd is back (-etcd-lost keep)",
                metadata: ["event": "group_lost"])
        case .refuse:
            logger.error("group \(settings.name): \(reason); refusing new clients until etcd is back (-etcd-lost refuse)", metadata: ["event": "group_lost"])
            await registry.followGroup(GroupFollowing(decided: nil, epoch: decision?.epoch ?? 0, refusing: "group \(settings.name): etcd lost"))
        }
    }

    private func regained() async {
        guard let since = lostSince else { return }
        lostSince = nil
        published.withLock { $0.lost = nil }
        logger.notice(
            "group \(settings.name): etcd is back after \(GoDuration.formatApproximately(clock.now - since)); following the group's decision again",
            metadata: ["event": "group_regained"])
    }

    private func publish() {
        let status = Status(leader: leader, isLeader: leader == settings.member, decision: decision, liveMembers: views.count, lost: lostSince == nil ? nil : published.withLock { $0.lost })
        published.withLock { $0 = status }
    }
}
