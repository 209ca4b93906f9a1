import Logging
import NIOCore

/// The shared record of one proxied connection: which backend, bytes each way, how it ended.
/// Both glue handlers of the connection use it on their common event loop.
final class RelaySession {
    enum Side: String {
        case client, backend
    }

    let backend: Backend
    let clientAddress: PeerAddress
    private let started = NIODeadline.now()
    private let logger: Logger
    private var bytesFromClient = 0
    private var bytesToClient = 0
    /// Bytes counted since the backend's shared counters were last updated.
    private var unreportedFromClient = 0
    private var unreportedToClient = 0
    private var openSides = 2
    /// The first error on either side; once set, the other side is reset rather than ended.
    private(set) var failure: (side: Side, reason: String)?

    init(backend: Backend, clientAddress: PeerAddress, client: any Channel, backendChannel: any Channel, logger: Logger) {
        self.backend = backend
        self.clientAddress = clientAddress
        self.logger = logger
        backend.counters.connectionOpened()
        backend.connections.insert(ObjectIdentifier(self), client: client, backend: backendChannel)
    }

    func received(_ count: Int, on side: Side) {
        switch side {
        case .client: unreportedFromClient += count
        case .backend: unreportedToClient += count
        }
    }

    /// Moves the bytes of the last read batch into the backend's counters.
    func reportBytes() {
        if unreportedFromClient > 0 {
            backend.counters.bytesFromClient.add(unreportedFromClient, ordering: .relaxed)
            bytesFromClient += unreportedFromClient
            unreportedFromClient = 0
        }
        if unreportedToClient > 0 {
            backend.counters.bytesToClient.add(unreportedToClient, ordering: .relaxed)
            bytesToClient += unreportedToClient
            unreportedToClient = 0
        }
    }

    func failed(on side: Side, error: any Error) {
        if failure == nil { failure = (side, ConnectFailure.describe(error)) }
    }

    /// The relay could not be set up: undo what `init` counted.
    func abandon() {
        backend.counters.connectionClosed()
        backend.connections.remove(ObjectIdentifier(self))
    }

    /// One side's channel closed; when both have, the connection is over.
    func sideClosed() {
        openSides -= 1
        guard openSides == 0 else { return }
        reportBytes()
        backend.counters.connectionClosed()
        backend.connections.remove(ObjectIdentifier(self))
        let ending = failure.map { "\($0.side) error: \($0.reason)" } ?? "closed"
        let elapsed = Duration.nanoseconds((NIODeadline.now() - started).nanoseconds)
        logger.debug(
            "connection \(clientAddress) via \(backend) ended after \(GoDuration.formatApproximately(elapsed)): \(bytesFromClient) bytes from client, \(bytesToClient) bytes to client, \(ending)",
            metadata: ["client": "\(clientAddress)", "backend": "\(backend)", "event": "connection_closed"])
    }
}
