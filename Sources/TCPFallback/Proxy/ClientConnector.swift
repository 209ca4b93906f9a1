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
    func handler() -> some ChannelInboundHandler & RemovableChannelHandler {
        ClientHold(connector: self)
    }

    /// The client's first handler until its relay starts. Auto-read is off, but when a client
    /// half-closes NIO reads everything it sent at once (EPOLLRDHUP) whatever the settings;
    /// this handler keeps those bytes and the end of stream, and hands them to the relay.
    final class ClientHold: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer

        private let connector: ClientConnector
        private var context: ChannelHandlerContext?
        private var held: [ByteBuffer] = []
        private var ended = false

        init(connector: ClientConnector) { self.connector = connector }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelActive(context: ChannelHandlerContext) {
            connector.start(client: context.channel, hold: self)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            held.append(unwrapInboundIn(data))
        }

        func channelReadComplete(context: ChannelHandlerContext) {}

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .inputClosed = event as? ChannelEvent {
                ended = true
            } else {
                context.fireUserInboundEventTriggered(event)
            }
        }

        /// Leaves the pipeline and replays what it held to the handlers behind it (the relay).
        func release() {
            guard let context else { return }
            self.context = nil
            let pipeline = context.pipeline
            pipeline.syncOperations.removeHandler(context: context, promise: nil)
            if !held.isEmpty {
                for buffer in held { pipeline.syncOperations.fireChannelRead(NIOAny(buffer)) }
                pipeline.syncOperations.fireChannelReadComplete()
                held = []
            }
            if ended { pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        }
    }

    func start(client: any Channel, hold: ClientHold) {
        let order = registry.snapshot.connectOrder
        let clientAddress = PeerAddress(client.remoteAddress)
        attempt(order[...], client: client, hold: hold, clientAddress: clientAddress, failures: [], queueDeadline: nil)
    }

    private func attempt(
        _ remaining: ArraySlice<Backend>, client: any Channel, hold: ClientHold, clientAddress: PeerAddress, failures: [String],
        queueDeadline: NIODeadline?
    ) {
        guard let backend = remaining.first else {
            if let deadline = queueDeadline ?? queueTimeout.map({ .now() + $0 }), NIODeadline.now() < deadline, client.isActive {
                if queueDeadline == nil {
                    logger.info(
                        "no backend available for \(clientAddress); it waits up to \(GoDuration.format(.nanoseconds(queueTimeout!.nanoseconds))) for one",
                        metadata: ["client": "\(clientAddress)", "event": "queued"])
                }
                waitForBackend(client: client, hold: hold, clientAddress: clientAddress, failures: failures, deadline: deadline)
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
                finish(result.map { ($0, []) }, backend: backend, remaining: remaining, client: client, hold: hold,
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
            finish(result, backend: backend, remaining: remaining, client: client, hold: hold,
                clientAddress: clientAddress, failures: failures, queueDeadline: queueDeadline)
        }
    }

    /// What a connection attempt came to: relay, or move on down the list.
    private func finish(
        _ result: Result<(any Channel, [UInt8]), any Error>, backend: Backend, remaining: ArraySlice<Backend>,
        client: any Channel, hold: ClientHold, clientAddress: PeerAddress, failures: [String], queueDeadline: NIODeadline?
    ) {
        switch result {
        case .success(let (channel, greeting)):
            registry.reportConnectSuccess(backend)
            relay(
                client: client, hold: hold, clientAddress: clientAddress, backendChannel: channel, backend: backend,
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
                remaining.dropFirst(), client: client, hold: hold, clientAddress: clientAddress, failures: failures + [reason],
                queueDeadline: queueDeadline)
        }
    }

    /// Looks again every 50ms until a backend in rotation is up or the deadline passes.
    private func waitForBackend(
        client: any Channel, hold: ClientHold, clientAddress: PeerAddress, failures: [String], deadline: NIODeadline
    ) {
        client.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
            guard client.isActive else { return }
            let up = registry.snapshot.backends.filter { $0.isUp && $0.isInRotation }.map(\.backend)
            attempt(up[...], client: client, hold: hold, clientAddress: clientAddress, failures: failures, queueDeadline: deadline)
        }
    }

    private func relay(
        client: any Channel, hold: ClientHold, clientAddress: PeerAddress, backendChannel: any Channel, backend: Backend,
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
        // What the client sent early goes to the backend, then both ends read; the handlers
        // request each further read themselves.
        hold.release()
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
