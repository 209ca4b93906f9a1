import NIOCore

/// Keeps what a peer sends before anyone is ready for it, and hands it on when released.
///
/// Auto-read is off on both sides of a relay until it is in place, but when a peer closes its
/// side NIO reads everything it sent at once (EPOLLRDHUP), whatever the settings. A client that
/// sends a request and half-closes before its backend is connected, or a server that greets
/// and hangs up at once, would lose those bytes to the end of the pipeline. This handler is
/// the first in every relay channel: it holds the bytes and the end of stream until
/// `release()`, which replays them to the handlers behind it (the relay, or a greeting reader).
final class InputHold: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var context: ChannelHandlerContext?
    private var held: [ByteBuffer] = []
    private var ended = false
    /// Runs once the channel is active (the client side starts its connector here).
    private let onActive: ((ChannelHandlerContext) -> Void)?

    init(onActive: ((ChannelHandlerContext) -> Void)? = nil) {
        self.onActive = onActive
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        onActive?(context)
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

    /// Leaves the pipeline and replays what it held to the handlers behind it.
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

    /// The hold of `channel`, if it has not been released yet. Call on the channel's loop.
    static func of(_ channel: any Channel) -> InputHold? {
        try? channel.pipeline.syncOperations.handler(type: InputHold.self)
    }
}
