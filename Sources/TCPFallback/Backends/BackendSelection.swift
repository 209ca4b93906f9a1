/// Chooses, from the backends' states, the order in which a new client tries them: the
/// policy half of the registry (the registry keeps state; this decides).
///
/// Contract: `choose` is a pure function of its input; the registry calls it on every change
/// and publishes the result in its snapshot.
struct BackendSelection: Sendable {
    let settings: RoleSettings

    /// What new clients get.
    struct Choice: Sendable {
        /// The backends a new client tries, in order (failover within a connection goes down it).
        var connectOrder: [Backend]
        /// How many of the first backends of `connectOrder` are equally good: `-balance`
        /// spreads clients over them (the rest are fallbacks).
        var spread = 1
        /// The backend new clients go to first; nil when none may be used.
        var current: Backend?
        /// Why no backend may be used, when that is a decision and not just every backend down.
        var refusal: Refusal?
    }

    enum Refusal: Sendable, Equatable {
        /// Several backends are writable at once and `-split-brain refuse` is set.
        case splitBrain([Backend])
        /// No backend that is up is writable.
        case noWriter
        /// No replica qualifies and `-reader-fallback none` is set (or there is no writer either).
        case noReader
        /// A member of a group (`-etcd-group`) that may not follow the group's decision: none
        /// yet, etcd lost under `-etcd-lost refuse`, or the decided backend unusable here.
        case group(String)

        static func == (lhs: Refusal, rhs: Refusal) -> Bool {
            switch (lhs, rhs) {
            case (.splitBrain(let a), .splitBrain(let b)): a.map(\.id) == b.map(\.id)
            case (.noWriter, .noWriter), (.noReader, .noReader): true
            case (.group(let a), .group(let b)): a == b
            default: false
            }
        }
    }

    /// - Parameter group: in a group, its decision replaces the member's own choice: new
    ///   clients go to the decided backend even if this member sees it down (the quorum does
    ///   not), and never elsewhere (no failover within a connection: that would split the group).
    func choose(_ backends: [BackendStatus], group: GroupFollowing? = nil) -> Choice {
        if let group { return follow(group, backends) }
        let usable = backends.filter { $0.isInRotation && $0.isUp }
        switch settings.role {
        case .any:
            // Those up by preference, then those down as a last resort (one may have
            // recovered before its next probe).
            let candidates = backends.filter(\.isInRotation)
            let order = candidates.filter(\.isUp).map(\.backend) + candidates.filter { !$0.isUp }.map(\.backend)
            return Choice(connectOrder: order, spread: max(usable.count, 1), current: usable.first?.backend)
        case .writer:
            return chooseWriter(usable)
        case .reader:
            let replicas = usable.filter { qualifiesAsReader($0.server) }.map(\.backend)
            if !replicas.isEmpty { return Choice(connectOrder: replicas, spread: replicas.count, current: replicas.first) }
            guard settings.readerFallback == .writer else { return Choice(connectOrder: [], current: nil, refusal: .noReader) }
            let writer = chooseWriter(usable)
            return writer.current == nil ? Choice(connectOrder: [], current: nil, refusal: .noReader) : writer
        }
    }

    /// Writers: never a backend down or read-only, not even as a last resort (a write there
    /// fails or, worse, splits the data).
    private func chooseWriter(_ usable: [BackendStatus]) -> Choice {
        let writable = usable.filter { $0.server?.isWritable == true }.map(\.backend)
        if writable.count > 1 && settings.splitBrain == .refuse {
            return Choice(connectOrder: [], current: nil, refusal: .splitBrain(writable))
        }
        guard let first = writable.first else { return Choice(connectOrder: [], current: nil, refusal: .noWriter) }
        return Choice(connectOrder: [first], current: first)
    }

    private func follow(_ group: GroupFollowing, _ backends: [BackendStatus]) -> Choice {
        if let refusing = group.refusing { return Choice(connectOrder: [], current: nil, refusal: .group(refusing)) }
        guard let decided = group.decided else { return Choice(connectOrder: [], current: nil, refusal: .group("the group decided no backend")) }
        guard let status = backends.first(where: { $0.backend.endpoint == decided }) else {
            return Choice(connectOrder: [], current: nil, refusal: .group("the group's backend \(decided) is not in this member's list"))
        }
        guard status.administrativeState == .enabled else {
            return Choice(connectOrder: [], current: nil, refusal: .group("the group's backend \(decided) is \(status.administrativeState.rawValue) here"))
        }
        return Choice(connectOrder: [status.backend], current: status.backend)
    }

    /// Read-only, replicating with both threads, and within `-max-lag`.
    func qualifiesAsReader(_ server: MySQLServerState?) -> Bool {
        guard let server, !server.isWritable, let replica = server.replica, replica.isReplicating else { return false }
        guard let maxLag = settings.maxLag else { return true }
        guard let behind = replica.secondsBehind else { return false }
        return Duration.seconds(behind) <= maxLag
    }
}
