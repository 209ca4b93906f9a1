import Synchronization

/// What an operator has said about a backend, apart from its health.
public enum AdministrativeState: String, Sendable {
    /// In rotation (the default).
    case enabled
    /// Out of rotation: no new connections, whatever its health (`disable`).
    case disabled
    /// Out of rotation while its open connections finish (`drain`).
    case draining
}

/// One backend as the accept path sees it.
public struct BackendStatus: Sendable {
    public let backend: Backend
    /// Health: false once a connection or probe failed, until a probe succeeds.
    public let isUp: Bool
    public let administrativeState: AdministrativeState
    /// Held out of rotation by the failback policy although it answers (hold-down or manual).
    public let isHeld: Bool
    /// What the last check that logged in saw of the server (`-check-user`); nil if none did.
    public let server: MySQLServerState?
    /// Added while running (etcd, a reload) and not checked yet: no client goes to it.
    public let isNew: Bool
    /// A check, a probe or a client has said something about it since the start.
    public let isChecked: Bool

    init(backend: Backend, isUp: Bool, administrativeState: AdministrativeState, isHeld: Bool, server: MySQLServerState? = nil, isNew: Bool = false, isChecked: Bool = false) {
        self.backend = backend
        self.isNew = isNew
        self.isChecked = isChecked
        self.isUp = isUp
        self.administrativeState = administrativeState
        self.isHeld = isHeld
        self.server = server
    }

    /// Whether new clients may be sent to it at all.
    public var isInRotation: Bool { administrativeState == .enabled && !isHeld && !isNew }
}

/// The registry's state as the accept path sees it: immutable, replaced whole on each change,
/// so picking a backend costs one locked read and no actor hop.
public struct RegistrySnapshot: Sendable {
    /// Every backend, in order of preference.
    public let backends: [BackendStatus]
    /// The order in which a new client tries backends, as the role chooses (`BackendSelection`).
    /// With `-role any`: those in rotation that are up, by preference, then those in rotation
    /// that are down, as a last resort (one may have recovered before its next probe).
    /// Disabled and draining backends are never tried.
    public let connectOrder: [Backend]
    /// How many of the first of `connectOrder` `-balance` spreads clients over.
    let spread: Int
    /// The backend new clients go to first, if any.
    public let current: Backend?
    /// Why no backend may be used by decision (split brain, no writer, no replica); nil otherwise.
    let refusal: BackendSelection.Refusal?

    /// In a group (`-etcd-group`): what the member follows; nil otherwise.
    public let group: GroupFollowing?

    init(backends: [BackendStatus], selection: BackendSelection = BackendSelection(settings: RoleSettings()), group: GroupFollowing? = nil) {
        self.backends = backends
        self.group = group
        let choice = selection.choose(backends, group: group)
        self.connectOrder = choice.connectOrder
        self.spread = min(choice.spread, choice.connectOrder.count)
        self.current = choice.current
        self.refusal = choice.refusal
    }

    /// The backend's state, if it is in the list (a backend removed since has none).
    public func status(of backend: Backend) -> BackendStatus? { backends.first { $0.backend === backend } }

    /// Whether the backend is in the list and up.
    public func isUp(_ backend: Backend) -> Bool { status(of: backend)?.isUp ?? false }

    /// The backends that are writable at once when that is why writers are refused.
    public var splitBrain: [Backend]? {
        if case .splitBrain(let writable) = refusal { return writable }
        return nil
    }

    /// Why new clients are refused, in words (nil when they are not, or only because every
    /// backend is down).
    public var refusalReason: String? {
        switch refusal {
        case .splitBrain(let writable): "split brain: \(writable.map { "\($0)" }.joined(separator: " and ")) are all writable"
        case .noWriter: "no writable backend"
        case .noReader: "no replica qualifies and no writer to fall back to"
        case .group(let reason): reason
        case nil: nil
        }
    }

    /// The order for one new client under `balance`: `turn` counts the clients so far (round
    /// robin); least-connections reads the clients each backend has, connecting or relaying.
    func connectOrder(balance: BalanceMode, turn: Int) -> ArraySlice<Backend> {
        guard spread > 1 else { return connectOrder[...] }
        switch balance {
        case .first:
            return connectOrder[...]
        case .roundrobin:
            let start = turn % spread
            return (connectOrder[start..<spread] + connectOrder[0..<start] + connectOrder[spread...])[...]
        case .leastconn:
            let spreadPart = connectOrder[0..<spread].enumerated().min { a, b in
                let (ca, cb) = (a.element.counters.assignedConnections, b.element.counters.assignedConnections)
                return ca != cb ? ca < cb : a.offset < b.offset
            }!.offset
            var order = connectOrder
            order.swapAt(0, spreadPart)
            return order[...]
        }
    }
}

/// How clients are spread over equally good backends (`-balance`).
public enum BalanceMode: String, Sendable, CaseIterable {
    /// The first in order (today's ordered fallback).
    case first
    /// Each in turn.
    case roundrobin
    /// The one with the fewest open connections.
    case leastconn
}

/// Holds the current snapshot; the registry writes it, any thread reads it.
final class SnapshotPublisher: Sendable {
    private let current: Locked<RegistrySnapshot>

    init(_ initial: RegistrySnapshot) { current = Locked(initial) }

    var snapshot: RegistrySnapshot { current.withLock { $0 } }

    func publish(_ snapshot: RegistrySnapshot) { current.withLock { $0 = snapshot } }
}
