import FoundationEssentials  // JSON coding; not Foundation, which would bring ICU into the binary

/// The group's decision, kept in one etcd key that only the elected member writes, in a
/// transaction that checks the epoch it read: which backend new clients go to, and which
/// backends the group's failback policy holds out.
public struct GroupDecision: Codable, Sendable, Equatable {
    /// Bumped by every change; a member follows the decision with the highest epoch.
    public var epoch: Int64
    /// "HOST:PORT" of the backend new clients go to; nil while none may be used.
    public var backend: String?
    /// Backends held out by `-failback manual` until `ctl failback` on any member.
    public var held: [String]
    /// Backends an operator disabled or set draining, on any member, for the whole group
    /// (absent from decisions written before these existed).
    public var disabled: [String]?
    public var draining: [String]?
    /// The member that wrote it, and why, for the log and `show backends`.
    public var by: String
    public var reason: String

    public init(epoch: Int64, backend: String?, held: [String] = [], disabled: [String]? = nil, draining: [String]? = nil, by: String, reason: String) {
        self.epoch = epoch
        self.backend = backend
        self.held = held
        self.disabled = disabled
        self.draining = draining
        self.by = by
        self.reason = reason
    }

    public static func decode(_ bytes: [UInt8]) -> GroupDecision? { try? JSONDecoder().decode(GroupDecision.self, from: Data(bytes)) }

    /// What an operator said of `backend` for the group: disabled, draining or enabled.
    public func administrativeState(of backend: String) -> AdministrativeState {
        if disabled?.contains(backend) == true { return .disabled }
        if draining?.contains(backend) == true { return .draining }
        return .enabled
    }

    /// The same decision with `backend` in `state` for the whole group.
    func setting(_ backend: String, to state: AdministrativeState) -> GroupDecision {
        var next = self
        next.disabled = (disabled ?? []).filter { $0 != backend } + (state == .disabled ? [backend] : [])
        next.draining = (draining ?? []).filter { $0 != backend } + (state == .draining ? [backend] : [])
        return next
    }

    public var encoded: [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }
}

/// What one member sees of the backends, published under its lease: the leader counts these.
public struct GroupMemberView: Codable, Sendable, Equatable {
    public var member: String
    /// "HOST:PORT" of the backends its checks see down.
    public var down: [String]
    /// "HOST:PORT" of the backends its checks see up.
    public var up: [String]

    public init(member: String, down: [String], up: [String]) {
        self.member = member
        self.down = down
        self.up = up
    }

    public static func decode(_ bytes: [UInt8]) -> GroupMemberView? { try? JSONDecoder().decode(GroupMemberView.self, from: Data(bytes)) }

    public var encoded: [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }
}
