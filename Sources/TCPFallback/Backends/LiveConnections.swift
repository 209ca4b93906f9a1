import NIOCore
import Synchronization

/// The relays open on one backend, so that an operator can close them (`shutdown sessions`).
public final class LiveConnections: Sendable {
    private let relays = Mutex<[ObjectIdentifier: (client: any Channel, backend: any Channel)]>([:])

    func insert(_ id: ObjectIdentifier, client: any Channel, backend: any Channel) {
        relays.withLock { $0[id] = (client, backend) }
    }

    func remove(_ id: ObjectIdentifier) {
        _ = relays.withLock { $0.removeValue(forKey: id) }
    }

    public var count: Int { relays.withLock { $0.count } }

    /// Closes both sides of every open relay; returns how many there were.
    @discardableResult
    public func closeAll() -> Int {
        let open = relays.withLock { Array($0.values) }
        for relay in open {
            relay.client.close(promise: nil)
            relay.backend.close(promise: nil)
        }
        return open.count
    }
}
