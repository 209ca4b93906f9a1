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

    /// Whether new clients may be sent to it at all.
    public var isInRotation: Bool { administrativeState == .enabled && !isHeld }
}

/// The registry's state as the accept path sees it: immutable, replaced whole on each change,
/// so picking a backend costs one locked read and no actor hop.
public struct RegistrySnapshot: Sendable {
    /// Every backend, in order of preference.
    public let backends: [BackendStatus]
    /// The order in which a new client tries backends: those in rotation that are up, by
    /// preference, then those in rotation that are down, as a last resort (one may have
    /// recovered before its next probe). Disabled and draining backends are never tried.
    public let connectOrder: [Backend]

    init(backends: [BackendStatus]) {
        self.backends = backends
        let candidates = backends.filter(\.isInRotation)
        self.connectOrder = candidates.filter(\.isUp).map(\.backend) + candidates.filter { !$0.isUp }.map(\.backend)
    }

    public func isUp(_ backend: Backend) -> Bool { backends[backend.index].isUp }

    /// The backend new clients go to first, if any.
    public var current: Backend? { backends.first { $0.isUp && $0.isInRotation }?.backend }
}

/// Holds the current snapshot; the registry writes it, any thread reads it.
final class SnapshotPublisher: Sendable {
    private let current: Mutex<RegistrySnapshot>

    init(_ initial: RegistrySnapshot) { current = Mutex(initial) }

    var snapshot: RegistrySnapshot { current.withLock { $0 } }

    func publish(_ snapshot: RegistrySnapshot) { current.withLock { $0 = snapshot } }
}
