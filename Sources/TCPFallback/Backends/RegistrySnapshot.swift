import Synchronization

/// The registry's state as the accept path sees it: immutable, replaced whole on each change,
/// so picking a backend costs one locked read and no actor hop.
public struct RegistrySnapshot: Sendable {
    /// Every backend, in order of preference, with whether it is up.
    public let backends: [(backend: Backend, isUp: Bool)]
    /// The order in which a new client tries backends: those that are up, by preference, then
    /// those that are down, as a last resort (one may have recovered before its next probe).
    public let connectOrder: [Backend]

    init(backends: [(backend: Backend, isUp: Bool)]) {
        self.backends = backends
        self.connectOrder = backends.filter(\.isUp).map(\.backend) + backends.filter { !$0.isUp }.map(\.backend)
    }

    public func isUp(_ backend: Backend) -> Bool { backends[backend.index].isUp }
}

/// Holds the current snapshot; the registry writes it, any thread reads it.
final class SnapshotPublisher: Sendable {
    private let current: Mutex<RegistrySnapshot>

    init(_ initial: RegistrySnapshot) { current = Mutex(initial) }

    var snapshot: RegistrySnapshot { current.withLock { $0 } }

    func publish(_ snapshot: RegistrySnapshot) { current.withLock { $0 = snapshot } }
}
