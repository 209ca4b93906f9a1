import Logging
import NIOCore

/// Takes one accepted client to the first backend that connects: backends that are up by
/// preference, then those marked down as a last resort. A failed attempt marks its backend
/// down and moves on within the same client connection, so the client does not notice.
///
/// It is the first handler of every client channel and starts once the channel is active
/// (a connect begun earlier could finish before the client is registered). The client has
/// auto-read off until the relay is in place: no client byte is asked for before a backend
/// is there to take it.
struct ClientConnector {
    let registry: BackendRegistry
    let dialer: BackendDialer
    let counters: ProxyCounters
    /// Wait for each backend's first bytes before committing a client to it.
    let greetingGate: GreetingGate?
    /// How long a client may wait for a backend to come back when none connects.
    let queueTimeout: TimeAmount?
    let logger: Logger

    /// Starts connecting when `channel` becomes active, and holds what the client sends until
    /// the relay takes over.
    func handler() -> InputHold {
        InputHold { context in start(client: context.channel) }
    }

    func start(client: any Channel) {
        let order = registry.snapshot.connectOrder
        let clientAddress = PeerAddress(client.remoteAddress)
        attempt(order[...], client: client, clientAddress: clientAddress, failures: [], queueDeadline: nil)
    }

    private func attempt(
        _ remaining: ArraySlice<Backend>, client: any Channel, clientAddress: PeerAddress, failures: [String],
        queueDeadline: NIODeadline?
    ) {
        guard let backend = remaining.first else {
            if let deadline = queueDeadline ?? queueTimeout.map({ .now() + $0 }), NIODeadline.now() < deadline, client.isActive {
                if queueDeadline == nil {
                    logger.info(
                        "no backend available for \(clientAddress); it waits up to \(GoDuration.format(.nanoseconds(queueTimeout!.nanoseconds))) for one",
                        metadata: ["client": "\(clientAddress)", "event": "queued"])
                }
                waitForBackend(client: client, clientAddress: clientAddress, failures: failures, deadline: deadline)
                return
            }
            logger.error(
                "no backend available for \(clientAddress), closing it: \(failures.joined(separator: "; "))",
                metadata: ["client": "\(clientAddress)", "event": "no_backend"])
            client.close(promise: nil)
            return
        }
        let connected = dialer.connect(to: backend, on: client.eventLoop)
        guard let greetingGate else {
            // The common case, without the extra future the gate needs.
            connected.assumeIsolated().whenComplete { result in
                finish(result.map { ($0, []) }, backend: backend, remaining: remaining, client: client,
                    clientAddress: clientAddress, failures: failures, queueDeadline: queueDeadline)
            }
            return
        }
        let ready = connected.flatMap { channel in
            greetingGate.await(channel).map { (channel, $0) }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
        ready.assumeIsolated().whenComplete { result in
            finish(result, backend: backend, remaining: remaining, client: client,
                clientAddress: clientAddress, failures: failures, queueDeadline: queueDeadline)
        }
    }

    /// What a connection attempt came to: relay, or move on down the list.
    private func finish(
        _ result: Result<(any Channel, [UInt8]), any Error>, backend: Backend, remaining: ArraySlice<Backend>,
        client: any Channel, clientAddress: PeerAddress, failures: [String], queueDeadline: NIODeadline?
    ) {
        switch result {
        case .success(let (channel, greeting)):
            registry.reportConnectSuccess(backend)
            relay(
                client: client, clientAddress: clientAddress, backendChannel: channel, backend: backend,
                greeting: greeting)
        case .failure(let error) where ConnectFailure.isLocalResourceError(error):
            // Out of descriptors or memory here: no backend is at fault, none is marked down.
            logger.error(
                "cannot connect \(clientAddress) to \(backend): \(ConnectFailure.describe(error)) (local resource limit)",
                metadata: ["client": "\(clientAddress)", "backend": "\(backend)"])
            client.close(promise: nil)
        case .failure(let error):
            registry.reportConnectFailure(backend, error: error)
            let reason = "\(backend): \(ConnectFailure.describe(error))"
            if remaining.count > 1 {
                counters.failovers.add(1, ordering: .relaxed)
                logger.info(
                    "failing over \(clientAddress) from \(reason)",
                    metadata: ["client": "\(clientAddress)", "backend": "\(backend)", "event": "failover"])
            }
            attempt(
                remaining.dropFirst(), client: client, clientAddress: clientAddress, failures: failures + [reason],
                queueDeadline: queueDeadline)
        }
    }

    /// Looks again every 50ms until a backend in rotation is up or the deadline passes.
    private func waitForBackend(
        client: any Channel, clientAddress: PeerAddress, failures: [String], deadline: NIODeadline
    ) {
        client.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
            guard client.isActive else { return }
            let up = registry.snapshot.backends.filter { $0.isUp && $0.isInRotation }.map(\.backend)
            attempt(up[...], client: client, clientAddress: clientAddress, failures: failures, queueDeadline: deadline)
        }
    }

    private func relay(
        client: any Channel, clientAddress: PeerAddress, backendChannel: any Channel, backend: Backend,
        greeting: [UInt8]
    ) {
        guard client.isActive else {
            backendChannel.close(promise: nil)
            return
        }
        let session = RelaySession(
            backend: backend, clientAddress: clientAddress, client: client, backendChannel: backendChannel, logger: logger)
        let handlers = GlueHandler.matchedPair(session: session)
        do {
            try client.pipeline.syncOperations.addHandler(handlers.client)
            try backendChannel.pipeline.syncOperations.addHandler(handlers.backend)
        } catch {
            session.abandon()
            client.close(promise: nil)
            backendChannel.close(promise: nil)
            return
        }
        if !greeting.isEmpty {
            // What the gate held back goes first, and counts as relayed.
            session.received(greeting.count, on: .backend)
            session.reportBytes()
            client.writeAndFlush(ByteBuffer(bytes: greeting), promise: nil)
        }
        // What either side sent early goes across, then both ends read; the handlers request
        // each further read themselves.
        InputHold.of(client)?.release()
        InputHold.of(backendChannel)?.release()
        client.read()
        backendChannel.read()
        logger.debug(
            "connection \(clientAddress) via \(backend)",
            metadata: ["client": "\(clientAddress)", "backend": "\(backend)", "event": "connection_open"])
    }

}

/// A peer's address, formatted only when a log line needs it: most connections log nothing.
struct PeerAddress: CustomStringConvertible {
    let address: SocketAddress?

    init(_ address: SocketAddress?) { self.address = address }

    var description: String {
        guard let address else { return "unknown client" }
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
