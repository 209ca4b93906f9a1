// nio-floor LISTEN-PORT BACKEND-PORT [THREADS]
//
// A TCP relay on 127.0.0.1 with nothing but what SwiftNIO needs to relay correctly: the
// glue handlers of swift-nio's examples (backpressure, half-close both ways), one
// SO_REUSEPORT listener per event loop, ClientBootstrap for the backend, no options, no
// failover, no counters, no logging. Its CPU per connection is the floor for any proxy
// whose data path is two SwiftNIO channels.
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// One of two handlers that relay between a pair of channels on one event loop.
final class Glue: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: Glue?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (Glue, Glue) {
        let first = Glue()
        let second = Glue()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerEnded() { context?.close(mode: .output, promise: nil) }
    private func partnerClosed() { context?.close(promise: nil) }
    private var partnerIsWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.partnerClosed() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { partner?.partnerEnded() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.partnerClosed()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerIsWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// Connects each client to the backend, then hands over to the glue. What the client sends
/// meanwhile (NIO reads it all when the client half-closes) is kept and replayed.
final class Connect: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let backend: SocketAddress
    private var held: [NIOAny] = []
    private var ended = false

    init(backend: SocketAddress) { self.backend = backend }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: backend)
            .assumeIsolated()
            .whenComplete { result in
                let context = bound.value
                guard case .success(let server) = result else {
                    client.close(promise: nil)
                    return
                }
                let (clientGlue, serverGlue) = Glue.pair()
                do {
                    try client.pipeline.syncOperations.addHandler(clientGlue)
                    try server.pipeline.syncOperations.addHandler(serverGlue)
                } catch {
                    client.close(promise: nil)
                    server.close(promise: nil)
                    return
                }
                let pipeline = context.pipeline.syncOperations
                pipeline.removeHandler(context: context, promise: nil)
                let (held, ended) = (self.held, self.ended)
                for data in held { pipeline.fireChannelRead(data) }
                if !held.isEmpty { pipeline.fireChannelReadComplete() }
                if ended { pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
                client.read()
            }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { held.append(data) }
    func channelReadComplete(context: ChannelHandlerContext) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            ended = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Auto-read is on, so hold the first read until the glue is in place.
    func read(context: ChannelHandlerContext) {}
}

extension Connect: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
}

let arguments = CommandLine.arguments
guard arguments.count >= 3, let listenPort = Int(arguments[1]), let backendPort = Int(arguments[2]) else {
    print("usage: nio-floor LISTEN-PORT BACKEND-PORT [THREADS]")
    exit(2)
}
let threads = arguments.count > 3 ? Int(arguments[3]) ?? 4 : 4
let backend = try SocketAddress(ipAddress: "127.0.0.1", port: backendPort)
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
var listeners: [any Channel] = []
for eventLoop in group.makeIterator() {
    let listener = try await ServerBootstrap(group: eventLoop)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(Connect(backend: backend))
            }
        }
        .bind(host: "127.0.0.1", port: listenPort)
        .get()
    listeners.append(listener)
}
try await listeners[0].closeFuture.get()
