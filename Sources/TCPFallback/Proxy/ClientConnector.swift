import Logging
import NIOCore

/// Takes one accepted client to the first backend that connects: backends that are up by
/// preference, then those marked down as a last resort. A failed attempt marks its backend
/// down and moves on within the same client connection, so the client does not notice.
///
/// It is the first handler of every client channel and starts once the channel is active
/// (a connect begun earlier could finish before the client is registered). The client has
/// auto-read off until the relay is in place: no client byte is read for a backend that
/// never comes.
struct ClientConnector {
    let registry: BackendRegistry
    let dialer: BackendDialer
    let counters: ProxyCounters
    let logger: Logger

    /// Starts connecting when `channel` becomes active; the handler leaves once it has.
    func handler() -> some ChannelInboundHandler & RemovableChannelHandler {
        ActivationHandler(connector: self)
    }

    private final class ActivationHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let connector: ClientConnector

        init(connector: ClientConnector) { self.connector = connector }

        func channelActive(context: ChannelHandlerContext) {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            connector.start(client: context.channel)
            context.fireChannelActive()
        }
    }

    func start(client: any Channel) {
        let order = registry.snapshot.connectOrder
        let clientAddress = PeerAddress(client.remoteAddress)
        attempt(order[...], client: client, clientAddress: clientAddress, failures: [])
    }

    private func attempt(
        _ remaining: ArraySlice<Backend>, client: any Channel, clientAddress: PeerAddress, failures: [String]
    ) {
        guard let backend = remaining.first else {
            logger.error(
                "no backend available for \(clientAddress), closing it: \(failures.joined(separator: "; "))",
                metadata: ["client": "\(clientAddress)", "event": "no_backend"])
            client.close(promise: nil)
            return
        }
        dialer.connect(to: backend, on: client.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                registry.reportConnectSuccess(backend)
                relay(client: client, clientAddress: clientAddress, backendChannel: channel, backend: backend)
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
                attempt(remaining.dropFirst(), client: client, clientAddress: clientAddress, failures: failures + [reason])
            }
        }
    }

    private func relay(client: any Channel, clientAddress: PeerAddress, backendChannel: any Channel, backend: Backend) {
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
        // Both ends read from here on; the handlers request each further read themselves.
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
