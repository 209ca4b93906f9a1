import Synchronization

/// `-maxconn`: open client connections over every loop, counted exactly (a reservation is
/// taken before each accept), so the limit holds however the kernel spreads clients.
/// One atomic per connection, none per byte.
final class ConnectionLimit: Sendable {
    let maximum: Int
    private let open = Atomic<Int>(0)

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// Takes a place for one more connection; false at the limit.
    func reserve() -> Bool {
        if open.add(1, ordering: .relaxed).oldValue < maximum { return true }
        open.subtract(1, ordering: .relaxed)
        return false
    }

    /// Gives a place back (the connection closed, or the accept found nobody).
    func release() {
        open.subtract(1, ordering: .relaxed)
    }

    var hasRoom: Bool { open.load(ordering: .relaxed) < maximum }
}
