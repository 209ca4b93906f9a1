/// How the registry and operators reach the relays of a backend, which live on the data
/// loops: the data path installs one closure when its loops run, for every backend of the
/// registry, present and future (backends added by etcd or a reload share it).
public final class SessionCloser: Sendable {
    private let close = Locked<(@Sendable (Int) -> Void)?>(nil)

    init() {}

    /// Set by the data path once its loops run (and to a no-op once they stop).
    func install(_ close: @escaping @Sendable (_ backendID: Int) -> Void) {
        self.close.withLock { $0 = close }
    }

    /// Asks the loops to close every relay of the backend with this id.
    func closeAll(of backendID: Int) {
        if let close = close.withLock({ $0 }) { close(backendID) }
    }
}
